"""A small Module system: Parameter, Module (parameters, train/eval, state_dict), and the
layers ordinary training scripts use."""
import math
from collections import OrderedDict

from .. import creation
from ..tensor import Tensor
from . import functional as F


class Parameter(Tensor):
    """A leaf tensor that requires grad and registers itself on the Module holding it."""

    def __init__(self, data=None, requires_grad=True):
        data = creation.zeros(0) if data is None else data
        self._data = data._data  # shares memory with `data`, as in PyTorch
        self._vc = data._vc
        self._requires_grad = False
        self._grad_fn = None
        self._output_nr = 0
        self._base = None
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + Tensor.__repr__(self)


class Module:
    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def named_parameters(self, prefix=""):
        for name, p in self._parameters.items():
            yield prefix + name, p
        for name, m in self._modules.items():
            yield from m.named_parameters(prefix + name + ".")

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def children(self):
        return iter(self._modules.values())

    def train(self, mode=True):
        object.__setattr__(self, "training", mode)
        for m in self._modules.values():
            m.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def to(self, *args, **kwargs):
        """Move (or cast) the parameters in place, as torch's Module.to: each Parameter keeps
        its identity and gets its data (and its .grad) on the new device or dtype."""
        for p in self.parameters():
            p.data = p.detach().to(*args, **kwargs)
            if p._grad is not None:
                p._grad = p._grad.to(*args, **kwargs)
        return self

    def cuda(self, device=None):
        return self.to("cuda" if device is None else device)

    def cpu(self):
        return self.to("cpu")

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none:
                p._grad = None
            elif p._grad is not None:
                p._grad._data[...] = 0

    def state_dict(self):
        return OrderedDict((name, p.detach()) for name, p in self.named_parameters())

    def load_state_dict(self, state):
        for name, p in self.named_parameters():
            p._data[...] = state[name]._data


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        bound = 1 / math.sqrt(in_features)
        self.weight = Parameter(creation.rand(out_features, in_features) * (2 * bound) - bound)
        self.bias = Parameter(creation.rand(out_features) * (2 * bound) - bound) if bias \
            else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class Sequential(Module):
    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


def _activation(fn):
    class Activation(Module):
        def forward(self, x):
            return fn(x)
    return Activation


ReLU = _activation(F.relu)
Tanh = _activation(F.tanh)
Sigmoid = _activation(F.sigmoid)


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, approximate=self.approximate)


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) \
            else tuple(normalized_shape)
        self.eps = eps
        if elementwise_affine:
            self.weight = Parameter(creation.ones(self.normalized_shape))
            self.bias = Parameter(creation.zeros(self.normalized_shape))
        else:
            self.weight = self.bias = None

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class MSELoss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(Module):
    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__()
        self.weight, self.ignore_index = weight, ignore_index
        self.reduction, self.label_smoothing = reduction, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)
