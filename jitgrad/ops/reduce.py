"""Reductions: sum, prod, amax/amin, max/min (full, with dim, elementwise), mean, var, std,
logsumexp, argmax/argmin, all/any."""
import collections
import math

import numpy as np

from ..dispatch import apply
from ..tensor import Tensor, _wrap_dim
from .spec import defop, derivative

return_types_max = collections.namedtuple("max", ["values", "indices"])
return_types_min = collections.namedtuple("min", ["values", "indices"])


def normalize_dims(dim, ndim):
    """None (all dims) or a sorted tuple of non-negative dims, with PyTorch's range error."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    if ndim == 0:
        for d in dims:
            _wrap_dim(d, 0)
        return None
    out = sorted({_wrap_dim(int(d), ndim) for d in dims})
    if len(out) != len(dims):
        raise RuntimeError("dim appears multiple times in the list of dims")
    return tuple(out) if out else None


def kept_shape(shape, dims):
    """The shape a reduction keeps with keepdim=True."""
    if dims is None:
        return (1,) * len(shape)
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


def _expand_back(F, g, ctx):
    """A reduction's gradient, reshaped to keepdim form and broadcast to the input's shape."""
    shape = ctx.meta[0][0]
    dims, keepdim = ctx.attrs["dim"], ctx.attrs["keepdim"]
    if not keepdim:
        g = F.reshape(g, shape=kept_shape(shape, dims))
    return F.expand(g, shape=shape)


def _keep(F, value, shape, attrs):
    return value if attrs["keepdim"] else F.reshape(value, shape=kept_shape(shape, attrs["dim"]))


def _sum_forward(x, dim=None, keepdim=False):
    dtype = np.int64 if x.dtype.kind in "biu" else None
    # The ufunc's own reduce, called from here: NumPy's floating-point warnings (inf - inf)
    # are then raised from jitgrad, whose warnings filter silences them as torch is silent.
    return np.add.reduce(x, axis=dim, keepdims=keepdim, dtype=dtype)


SUM = defop("sum", _sum_forward, kind="reduction", template="{0}", reduce_template="+",
            identity=0)


@derivative(SUM)
def _sum_rule(F, ctx, g):
    return (_expand_back(F, g, ctx),)


def _mean_forward(x, dim=None, keepdim=False):
    # sum / count rather than np.mean, which warns "Mean of empty slice" (torch: silent nan)
    count = x.size if dim is None else math.prod([x.shape[d] for d in dim])
    acc = np.float64 if x.dtype.kind in "biu" else np.float32 if x.dtype == np.float16 else None
    total = np.add.reduce(x, axis=dim, keepdims=keepdim, dtype=acc)
    return np.true_divide(total, count, dtype=total.dtype).astype(
        x.dtype if x.dtype.kind == "f" else total.dtype, copy=False)


MEAN = defop("mean", _mean_forward, kind="reduction", template="{0}", reduce_template="+",
             identity=0, dtype_rule="float_only")


@derivative(MEAN)
def _mean_rule(F, ctx, g):
    shape = ctx.meta[0][0]
    dims = ctx.attrs["dim"]
    count = 1
    for i, s in enumerate(shape):
        if dims is None or i in dims:
            count *= s
    return (_expand_back(F, g, ctx) / count,)


def _prod_forward(x, dim=None, keepdim=False):
    dtype = np.int64 if x.dtype.kind in "biu" else None
    return np.multiply.reduce(x, axis=dim, keepdims=keepdim, dtype=dtype)


PROD = defop("prod", _prod_forward, saves=(0,), save_out=True, kind="reduction",
             template="{0}", reduce_template="*", identity=1)


@derivative(PROD)
def _prod_rule(F, ctx, g):
    x = ctx.inputs[0]
    shape = ctx.meta[0][0]
    attrs = ctx.attrs
    g = _expand_back(F, g, ctx)
    out = F.expand(_keep(F, ctx.out, shape, attrs), shape=shape)
    # matches torch: exact at zeros. Where x == 0 the gradient is the product of the others,
    # which is non-zero only when x holds the single zero of its slice.
    is_zero = x == 0
    nonzero_x = F.where(is_zero, 1.0, x)
    zeros = F.sum(F.to_dtype(is_zero, dtype=ctx.meta[0][1]), **attrs)
    others = F.prod(nonzero_x, **attrs)
    others = F.expand(_keep(F, F.where(zeros == 1, others, 0.0), shape, attrs), shape=shape)
    return (g * F.where(is_zero, others, out / nonzero_x),)


def _extreme(reduce, name):
    def forward(x, dim=None, keepdim=False):
        if x.size == 0 and dim is None:
            raise RuntimeError(f"{name}(): Expected reduction dim to be specified "
                               "for input.numel() == 0. Specify the reduction dim with the "
                               "'dim' argument.")
        if x.size == 0:
            _check_nonempty_dims(name, x.shape, dim)
        return reduce(x, axis=dim, keepdims=keepdim)
    return forward


def _check_nonempty_dims(name, shape, dims):
    """PyTorch's error for max/min-like reductions over a dimension of size 0."""
    for d in (dims if isinstance(dims, tuple) else (dims,)):
        if shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")


AMAX = defop("amax", _extreme(np.max, "amax"), saves=(0,), save_out=True, kind="reduction",
             template="{0}", reduce_template="max", identity="-inf")
AMIN = defop("amin", _extreme(np.min, "amin"), saves=(0,), save_out=True, kind="reduction",
             template="{0}", reduce_template="min", identity="inf")


def _extreme_rule(F, ctx, g):
    # matches torch: ties share the gradient evenly
    x = ctx.inputs[0]
    shape = ctx.meta[0][0]
    out = F.expand(_keep(F, ctx.out, shape, ctx.attrs), shape=shape)
    mask = F.to_dtype(x == out, dtype=ctx.meta[0][1])
    count = F.sum(mask, dim=ctx.attrs["dim"], keepdim=True)
    return (_expand_back(F, g, ctx) * mask / count,)


derivative(AMAX)(_extreme_rule)
derivative(AMIN)(_extreme_rule)


def _arg_extreme(pick):
    def forward(x, dim, keepdim=False):
        indices = pick(x, axis=dim, keepdims=True)
        values = np.take_along_axis(x, indices, axis=dim)
        if not keepdim:
            indices = np.squeeze(indices, axis=dim)
            values = np.squeeze(values, axis=dim)
        return values, indices.astype(np.int64, copy=False)
    return forward


MAX_DIM = defop("max_dim", _arg_extreme(np.argmax), n_outputs=2, kind="reduction",
                grad_fn_name="MaxBackward0")
MIN_DIM = defop("min_dim", _arg_extreme(np.argmin), n_outputs=2, kind="reduction",
                grad_fn_name="MinBackward0")


def _indexed_rule(F, ctx, g):
    # matches torch: the first index among ties takes the whole gradient
    shape = ctx.meta[0][0]
    dim = ctx.attrs["dim"]
    indices = ctx.extra[0]
    if not ctx.attrs["keepdim"]:
        indices = np.expand_dims(indices, dim)
    iota = np.arange(shape[dim]).reshape([-1 if i == dim else 1 for i in range(len(shape))])
    hit = F.const(iota == indices)
    g = g if ctx.attrs["keepdim"] else F.reshape(g, shape=kept_shape(shape, (dim,)))
    return (F.where(hit, g, 0.0),)


derivative(MAX_DIM)(_indexed_rule)
derivative(MIN_DIM)(_indexed_rule)


# -- public functions ----------------------------------------------------------------------

def sum(input, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return apply(SUM, (input,), {"dim": normalize_dims(dim, input.ndim), "keepdim": keepdim})


def prod(input, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return apply(PROD, (input,), {"dim": normalize_dims(dim, input.ndim), "keepdim": keepdim})


def amax(input, dim=(), keepdim=False):
    dims = None if dim == () else normalize_dims(dim, input.ndim)
    return apply(AMAX, (input,), {"dim": dims, "keepdim": keepdim})


def amin(input, dim=(), keepdim=False):
    dims = None if dim == () else normalize_dims(dim, input.ndim)
    return apply(AMIN, (input,), {"dim": dims, "keepdim": keepdim})


def _max_or_min(input, dim, keepdim, full, by_dim, elementwise, result_type):
    if dim is None:
        if input._data.size == 0:
            name = "max" if full is amax else "min"
            raise RuntimeError(f"{name}(): Expected reduction dim to be specified for "
                               "input.numel() == 0. Specify the reduction dim with the 'dim' "
                               "argument.")
        return full(input)
    if isinstance(dim, Tensor):
        return elementwise(input, dim)
    d = _wrap_dim(dim, input.ndim)
    if input.ndim == 0:
        return result_type(input, Tensor._make(np.array(0, dtype=np.int64)))
    if input._data.size == 0:
        _check_nonempty_dims("max" if full is amax else "min", input._data.shape, d)
    values, indices = apply(by_dim, (input,), {"dim": d, "keepdim": keepdim})
    return result_type(values, indices)


def max(input, dim=None, keepdim=False, *, other=None):
    from .elementwise import maximum
    if other is not None:
        return maximum(input, other)
    return _max_or_min(input, dim, keepdim, amax, MAX_DIM, maximum, return_types_max)


def min(input, dim=None, keepdim=False, *, other=None):
    from .elementwise import minimum
    if other is not None:
        return minimum(input, other)
    return _max_or_min(input, dim, keepdim, amin, MIN_DIM, minimum, return_types_min)


def _count(input, dims):
    shape = input._data.shape
    if dims is None:
        return input._data.size
    n = 1
    for d in dims:
        n *= shape[d]
    return n


def _require_float(name, input):
    if input._data.dtype.kind != "f":
        from ..errors import scalar_type_name
        raise RuntimeError(f"{name}(): could not infer output dtype. Input dtype must be either "
                           "a floating point or complex dtype. Got: "
                           f"{scalar_type_name(input._data.dtype)}")


def mean(input, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return apply(MEAN, (input,), {"dim": normalize_dims(dim, input.ndim), "keepdim": keepdim})


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, bool):  # var(x, False): the legacy positional `unbiased`
        dim, unbiased = None, dim
    _require_float("var", input)
    dims = normalize_dims(dim, input.ndim)
    centered = input - mean(input, dims, keepdim=True)
    n = _count(input, dims) - _correction(unbiased, correction)
    return sum(centered * centered, dims, keepdim) / (float(n) if n > 0 else float("nan"))


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    from .elementwise import sqrt
    return sqrt(var(input, dim, unbiased, keepdim, correction=correction))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return (var(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim))


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return (std(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim))


def logsumexp(input, dim, keepdim=False):
    from .elementwise import exp, log, where, isinf
    dims = normalize_dims(dim, input.ndim)
    # The max is a constant shift (detached): log-sum-exp is invariant to it, and it keeps
    # exp from overflowing. Rows of -inf shift by 0 instead of producing nan.
    if input._data.size == 0:
        shift = 0.0      # nothing to shift; an empty sum is 0 and its log -inf, as in torch
    else:
        shift = amax(input, dims, keepdim=True).detach()
        shift = where(isinf(shift), 0.0, shift)
    total = log(sum(exp(input - shift), dims, keepdim=True)) + shift
    return total if keepdim else total.reshape(_reduced_shape(input._data.shape, dims))


def _reduced_shape(shape, dims):
    if dims is None:
        return ()
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def _index_reduce(pick, name):
    def reduce(input, dim=None, keepdim=False):
        data = input._data
        if data.size == 0:
            if dim is None:
                raise IndexError(f"{name}(): Expected reduction dim to be specified for "
                                 "input.numel() == 0.")
            _check_nonempty_dims(name, data.shape, _wrap_dim(dim, data.ndim))
        if type(data) is not np.ndarray:
            return _device_index_reduce(input, dim, keepdim, largest=name == "argmax")
        if dim is None:
            out = np.asarray(pick(data.reshape(-1)))
            if keepdim:
                out = out.reshape((1,) * data.ndim)
        else:
            out = pick(data, axis=_wrap_dim(dim, data.ndim), keepdims=keepdim)
        return Tensor._make(np.asarray(out, dtype=np.int64))
    return reduce


def _device_index_reduce(input, dim, keepdim, largest):
    """argmax / argmin of a CUDA tensor as device ops: the first index along the dim where the
    value is the extreme (a NaN counting as the extreme, as in PyTorch), as the least index
    of an iota where the value hits."""
    from ..creation import arange
    from .elementwise import where
    x = input.detach()
    if dim is None:
        x, d = x.reshape(-1), 0
    else:
        d = _wrap_dim(dim, x.ndim)
    n = x.shape[d]
    extreme = x.amax(d, keepdim=True) if largest else x.amin(d, keepdim=True)
    hit = x == extreme
    if x._data.dtype.kind == "f":
        hit = where(extreme.isnan(), x.isnan(), hit)
    iota = arange(n, device=input.device).reshape(tuple(n if k == d else 1
                                                         for k in range(x.ndim)))
    index = where(hit, iota, n).amin(d, keepdim=keepdim)
    if dim is None and keepdim:
        index = index.reshape((1,) * input.ndim)
    return index


argmax = _index_reduce(np.argmax, "argmax")
argmin = _index_reduce(np.argmin, "argmin")


def _logical_reduce(fn):
    def reduce(input, dim=None, keepdim=False):
        dims = normalize_dims(dim, input.ndim)
        if type(input._data) is not np.ndarray:
            # on the device: count the elements that decide it
            if fn is np.all:
                return (input.detach() == 0).sum(dims, keepdim=keepdim) == 0
            return (input.detach() != 0).sum(dims, keepdim=keepdim) > 0
        return Tensor._make(np.asarray(fn(input._data, axis=dims, keepdims=keepdim)))
    return reduce


all = _logical_reduce(np.all)
any = _logical_reduce(np.any)


def count_nonzero(input, dim=None):
    return sum(input != 0, dim)


def norm(input, p="fro", dim=None, keepdim=False):
    from .elementwise import sqrt, abs as abs_
    if p in ("fro", 2, 2.0):
        return sqrt(sum(input * input, dim, keepdim))
    if p in (1, 1.0):
        return sum(abs_(input), dim, keepdim)
    if p == float("inf"):
        return amax(abs_(input), () if dim is None else dim, keepdim)
    return sum(abs_(input) ** p, dim, keepdim) ** (1.0 / p)


def _bind():
    for name in ("sum", "prod", "amax", "amin", "max", "min", "mean", "var", "std",
                 "logsumexp", "argmax", "argmin", "all", "any", "norm", "count_nonzero"):
        setattr(Tensor, name, globals()[name])


_bind()
