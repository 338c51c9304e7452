"""jitgrad: PyTorch's autograd on NumPy, compiled to fused Numba kernels.

`import jitgrad as torch` runs ordinary autograd scripts eagerly; `jitgrad.compile(fn)` compiles
them. This package imports NumPy only: the compiler (and Numba) load on first use.
"""
from . import dtypes as _dtypes  # noqa: E402
from .dtypes import (float16, float32, float64, uint8, int8, int16, int32, int64,  # noqa: E402
                     get_default_dtype, set_default_dtype, promote_types as _promote)
from .dtypes import dtype  # noqa: E402,F401
from .tensor import Tensor, Size  # noqa: E402
from .device import device  # noqa: E402
from . import ops as _ops  # noqa: E402  (registers every op and Tensor method)
from .creation import (tensor, as_tensor, from_numpy, zeros, ones, empty, full,  # noqa: E402
                       zeros_like, ones_like, empty_like, full_like, randn, rand, randint,
                       randperm, randn_like, rand_like, arange, linspace, eye, manual_seed,
                       seed, FloatTensor, DoubleTensor, LongTensor, BoolTensor, from_dlpack)
from .ops.elementwise import (add, sub, rsub, mul, div, neg, pow, exp, log, log1p, expm1,  # noqa
                              sin, cos, tanh, sigmoid, erf, sqrt, rsqrt, reciprocal, abs,
                              sign, relu, square, clamp, clip, clamp_min, clamp_max, maximum,
                              minimum, where, eq, ne, lt, le, gt, ge, logical_and, logical_or,
                              logical_not, isnan, isinf, isfinite, remainder, floor_divide,
                              subtract, multiply, divide, true_divide, negative, greater,
                              greater_equal, less, less_equal, not_equal, fmax, fmin,
                              bitwise_and, bitwise_or, bitwise_not)
from .ops.reduce import (sum, prod, amax, amin, max, min, mean, var, std, var_mean,  # noqa
                         std_mean, logsumexp, argmax, argmin, all, any, norm, count_nonzero)
from .ops.movement import (reshape, permute, transpose, t, squeeze, unsqueeze,  # noqa: E402
                           flatten, unflatten, cat, concat, concatenate, stack, hstack,
                           vstack, clone, split, chunk, narrow, unbind, flip, swapaxes,
                           swapdims, broadcast_to, tile)
from .ops.indexing import nonzero, masked_fill, index_select  # noqa: E402
from .ops.matmul import matmul, mm, bmm, dot, mv, outer  # noqa: E402
from .autograd.grad_mode import (no_grad, enable_grad, set_grad_enabled,  # noqa: E402
                                 inference_mode, is_grad_enabled, is_inference_mode_enabled)
from . import autograd  # noqa: E402
from . import nn  # noqa: E402
from . import cuda  # noqa: E402  (numba.cuda loads only when a CUDA function is called)
from .nn.functional import softmax, log_softmax  # noqa: E402
from . import optim  # noqa: E402
from . import utils  # noqa: E402

bool = _dtypes.bool_
float = float32
double = float64
half = float16
long = int64
int = int32
short = int16
promote_types = _promote

__version__ = "0.1.0"


def is_tensor(obj):
    return isinstance(obj, Tensor)


def numel(input):
    return input.numel()


def broadcast_shapes(*shapes):
    import numpy
    return Size(numpy.broadcast_shapes(*shapes))


def result_type(tensor1, tensor2):
    import numpy
    # a tensor's rank and dtype decide (a CUDA tensor's memory is not read)
    args = [numpy.zeros((1,) * t.ndim, t._data.dtype) if isinstance(t, Tensor) else t
            for t in (tensor1, tensor2)]
    return _dtypes.from_numpy_dtype(_dtypes.result_type(*args))


def set_num_threads(n):
    """Accepted for compatibility: eager ops run on NumPy's threads."""


def get_num_threads():
    return 1


def compile(fn=None, *, backend="cpu", dynamic=False, fullgraph=False, **options):
    """Compile `fn` into fused kernels (see the `compiler` package); also a decorator.
    backend="cuda", or inputs on the CUDA device, builds CUDA kernels."""
    from compiler import compile as _compile
    return _compile(fn, backend=backend, dynamic=dynamic, fullgraph=fullgraph, **options)


def dump(obj, format="text", stage=None):
    """A graph as text, DOT or JSON: a tensor's autograd graph, or a compiled function's
    stage ("captured", "joint", "forward", "backward", "fused")."""
    from compiler import dump as _dump
    return _dump(obj, format=format, stage=stage)


def explain(fn, *args, **kwargs):
    """Compile and run `fn(*args)`; report kernels, saved values, refusals, breaks, recompiles."""
    from compiler import explain as _explain
    return _explain(fn, *args, **kwargs)


def compare(fn, *args, **kwargs):
    """Run `fn` eagerly and compiled; compare outputs and gradients, name the first divergent
    node."""
    from compiler import compare as _compare
    return _compare(fn, *args, **kwargs)


def cache_info():
    """The kernel cache: its directory, how many kernel modules and bytes it holds."""
    from compiler import cache_info as _cache_info
    return _cache_info()


def clear_cache():
    """Delete every cached kernel (the next compile of each function builds it again)."""
    from compiler import clear_cache as _clear_cache
    _clear_cache()
