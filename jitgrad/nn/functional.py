"""jitgrad.nn.functional: activations, softmax family, losses, layer norm, linear; composites of
primitive ops (so the compiler fuses them), stable by construction."""
import math
import warnings

import numpy as np

from .. import creation
from .. import cuda
from ..cuda import host_only
from ..ops import elementwise as ew
from ..ops import reduce as red
from ..ops.matmul import matmul
from ..tensor import Tensor

relu = ew.relu
sigmoid = ew.sigmoid
tanh = ew.tanh


def _softmax_dim(ndim, dim, name):
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the "
                      "call to include dim=X as an argument.", UserWarning, stacklevel=3)
        return 0 if ndim in (0, 1, 3) else 1
    return dim


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    dim = _softmax_dim(input.ndim, dim, "softmax")
    # The row max is a detached shift: softmax is invariant to it and exp cannot overflow.
    shifted = input - red.amax(input, dim, keepdim=True).detach()
    e = ew.exp(shifted)
    return e / red.sum(e, dim, keepdim=True)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    dim = _softmax_dim(input.ndim, dim, "log_softmax")
    return input - red.logsumexp(input, dim, keepdim=True)


def _reduce(loss, reduction, weight_total=None):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / weight_total if weight_total is not None else loss.mean()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    if target._data.dtype.kind not in "iu":
        raise RuntimeError(f"expected scalar type Long but found "
                           f"{target.dtype.name.capitalize()}")
    single = input.ndim == 1
    if single:
        input, target = input.unsqueeze(0), target.reshape(1)
    classes = input.shape[1]
    on_device = type(target._data) is not np.ndarray
    # CUDA labels are checked on a host copy (a few bytes per sample; PyTorch checks them in
    # its kernel): a label out of range must raise, never silently pick nothing.
    labels = cuda.backend().to_host(target._data) if on_device else target._data
    bad = labels[(labels != ignore_index) & ((labels < 0) | (labels >= classes))]
    if bad.size:
        raise IndexError(f"Target {bad.flat[0]} is out of bounds.")
    # The label's column is picked with a one-hot built from ops (not indexing with the
    # labels' values), so a compiled loss stays correct when the labels change.
    trailing = (1,) * (input.ndim - 2)
    iota = creation.tensor(np.arange(classes, dtype=np.int64).reshape((classes,) + trailing),
                           device=target.device if on_device else None)
    hit = iota == target.unsqueeze(1)
    if ignore_index is not None and 0 <= ignore_index < classes:
        hit = hit & (target != ignore_index).unsqueeze(1)
    w = hit.to(input.dtype)
    if weight is not None:
        w = w * weight.reshape((classes,) + trailing).to(input.dtype)
    loss = -(input * w).sum(1)
    if reduction == "mean":
        out = loss.sum() / w.sum()
    else:
        out = _reduce(loss, reduction)
    if single and reduction == "none":
        out = out.reshape(())
    return out


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    class_dim = 0 if input.ndim == 1 else 1
    logp = log_softmax(input, class_dim)
    if target._data.dtype.kind == "f":  # class probabilities
        if label_smoothing:
            classes = input.shape[class_dim]
            target = target * (1 - label_smoothing) + label_smoothing / classes
        w = 1.0 if weight is None else weight.reshape(
            (-1,) + (1,) * (input.ndim - class_dim - 1))
        loss = -(logp * target * w).sum(class_dim)
        return _reduce(loss, reduction)
    loss = nll_loss(logp, target, weight, ignore_index, reduction)
    if label_smoothing:
        classes = input.shape[class_dim]
        w = 1.0 if weight is None else weight.reshape(
            (-1,) + (1,) * (input.ndim - class_dim - 1))
        valid = (target != ignore_index).to(input.dtype).detach()
        smooth = -(logp * w).sum(class_dim) * valid
        if reduction == "mean":
            if weight is None:
                smooth = smooth.sum() / valid.sum()
            else:
                host_only(target, "cross_entropy with label_smoothing and class weights")
                picked = weight._data[np.where(target._data != ignore_index, target._data, 0)]
                denominator = float((picked * valid._data).sum())
                smooth = smooth.sum() / denominator
        else:
            smooth = _reduce(smooth, reduction)
        loss = loss * (1 - label_smoothing) + smooth * (label_smoothing / classes)
    return loss


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    diff = input - target
    return _reduce(diff * diff, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    return _reduce(ew.abs(input - target), reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    # max(x, 0) - x * y + log(1 + exp(-|x|)): stable for large |x|
    log_weight = 1.0 if pos_weight is None else (pos_weight - 1) * target + 1
    loss = (1 - target) * input + log_weight * (
        ew.log1p(ew.exp(-ew.abs(input))) + ew.relu(-input))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    # matches torch: log is clamped at -100
    loss = -(target * ew.clamp(ew.log(input), min=-100) +
             (1 - target) * ew.clamp(ew.log(1 - input), min=-100))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(normalized_shape):]) != normalized_shape:
        raise RuntimeError(f"Given normalized_shape={list(normalized_shape)}, expected input "
                           f"with shape [*, {', '.join(map(str, normalized_shape))}], but got "
                           f"input of size{list(input.shape)}")
    dims = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    mu = red.mean(input, dims, keepdim=True)
    centered = input - mu
    variance = red.mean(centered * centered, dims, keepdim=True)
    out = centered * ew.rsqrt(variance + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def gelu(input, approximate="none"):
    if approximate == "tanh":
        inner = math.sqrt(2 / math.pi) * (input + 0.044715 * input * input * input)
        return 0.5 * input * (1 + ew.tanh(inner))
    if approximate != "none":
        raise RuntimeError(f"approximate argument must be either none or tanh.")
    return 0.5 * input * (1 + ew.erf(input * (1 / math.sqrt(2))))


def silu(input):
    return input * ew.sigmoid(input)


def softplus(input, beta=1.0, threshold=20.0):
    scaled = input * beta
    # matches torch: linear above the threshold
    return ew.where(scaled > threshold, input, ew.log1p(ew.exp(scaled)) / beta)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return ew.where(input > 0, input, input * negative_slope)


def elu(input, alpha=1.0, inplace=False):
    return ew.where(input > 0, input, alpha * ew.expm1(input))


def linear(input, weight, bias=None):
    out = matmul(input, weight.t() if weight.ndim == 2 else weight)
    return out if bias is None else out + bias


def dropout(input, p=0.5, training=True, inplace=False):
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0
    keep = creation._generator[0].random(input.shape) >= p
    mask = Tensor._make((keep / (1 - p)).astype(input._data.dtype))
    return input * (mask if input.is_cpu else mask.to(input.device))


def normalize(input, p=2.0, dim=1, eps=1e-12):
    return input / ew.clamp(red.norm(input, p, dim, keepdim=True), min=eps)


def one_hot(tensor, num_classes=-1):
    host_only(tensor, "one_hot")
    labels = tensor._data
    n = int(labels.max()) + 1 if num_classes < 0 else num_classes
    return Tensor._make((labels[..., None] == np.arange(n)).astype(np.int64))


def _bind():
    Tensor.softmax = lambda self, dim=None, dtype=None: softmax(self, dim, dtype=dtype)
    Tensor.log_softmax = lambda self, dim=None, dtype=None: log_softmax(self, dim, dtype=dtype)


_bind()
