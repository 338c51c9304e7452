"""jitgrad.autograd: PyTorch's autograd API on jitgrad tensors."""
import warnings

from .engine import backward, grad, set_detect_anomaly, detect_anomaly, is_anomaly_enabled
from .function import Function, once_differentiable
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, no_grad,
                        set_grad_enabled)
from . import functional  # noqa: F401
from .gradcheck import gradcheck, gradgradcheck, GradcheckError


def Variable(data, requires_grad=False, volatile=False):
    """The legacy Variable constructor: a tensor. `volatile=True` warns and means no grad."""
    from ..tensor import Tensor
    if volatile:
        warnings.warn("volatile was removed and now has no effect. Use `with torch.no_grad():` "
                      "instead.", UserWarning, stacklevel=2)
        requires_grad = False
    if not isinstance(data, Tensor):
        raise TypeError("Variable data has to be a tensor, but got "
                        f"{type(data).__name__}")
    out = data.detach()
    out._vc = [0]
    if requires_grad:
        out.requires_grad_(True)
    return out


__all__ = ["Function", "Variable", "backward", "grad", "gradcheck", "gradgradcheck",
           "functional", "no_grad", "enable_grad", "set_grad_enabled", "inference_mode",
           "is_grad_enabled", "once_differentiable", "set_detect_anomaly", "detect_anomaly",
           "is_anomaly_enabled", "GradcheckError"]
