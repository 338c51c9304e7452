"""Movement ops: reshape/view, permute and its spellings, expand, sum_to_size, cat/stack,
clone/contiguous, dtype conversion. NumPy returns views where PyTorch does, and the
dispatcher marks them as views (shared version counter, base)."""
import builtins

import numpy as np

from .. import dtypes, errors
from ..dispatch import apply
from ..tensor import Tensor, _wrap_dim
from .spec import defop, derivative


def _reshape_forward(x, shape):
    return np.reshape(x, shape)


RESHAPE = defop("reshape", _reshape_forward, view=True, kind="movement",
                grad_fn_name="ViewBackward0")


@derivative(RESHAPE)
def _reshape_rule(F, ctx, g):
    return (F.reshape(g, shape=ctx.meta[0][0]),)


PERMUTE = defop("permute", lambda x, dims: np.transpose(x, dims), view=True, kind="movement")


@derivative(PERMUTE)
def _permute_rule(F, ctx, g):
    return (F.permute(g, dims=tuple(np.argsort(ctx.attrs["dims"]).tolist())),)


EXPAND = defop("expand", lambda x, shape: np.broadcast_to(x, shape), view=True,
               kind="movement")


@derivative(EXPAND)
def _expand_rule(F, ctx, g):
    return (F.sum_to_size(g, shape=ctx.meta[0][0]),)


def _sum_to_forward(x, shape):
    from ..autograd.engine import sum_to
    return sum_to(x, shape).reshape(shape)


SUM_TO_SIZE = defop("sum_to_size", _sum_to_forward, kind="reduction", template="{0}",
                    reduce_template="+", identity=0)


@derivative(SUM_TO_SIZE)
def _sum_to_rule(F, ctx, g):
    return (F.expand(g, shape=ctx.meta[0][0]),)


CAT = defop("cat", lambda *xs, dim, sizes: np.concatenate(xs, axis=dim), kind="movement",
            dtype_rule="promote")


@derivative(CAT)
def _cat_rule(F, ctx, g):
    dim, sizes = ctx.attrs["dim"], ctx.attrs["sizes"]
    grads, offset = [], 0
    for size, need in zip(sizes, ctx.needs):
        if need:
            key = (slice(None),) * dim + (slice(offset, offset + size),)
            grads.append(F.getitem(g, key=key))
        else:
            grads.append(None)
        offset += size
    return tuple(grads)


CLONE = defop("clone", lambda x: np.array(x, order="C", copy=True), template="{0}")


@derivative(CLONE)
def _clone_rule(F, ctx, g):
    return (g,)


TO_DTYPE = defop("to_dtype", lambda x, dtype: x.astype(dtype), template="{0}",
                 grad_fn_name="ToCopyBackward0")


@derivative(TO_DTYPE)
def _to_dtype_rule(F, ctx, g):
    return (g,)  # the engine casts the gradient back to the input's dtype


def _to_device_forward(x, device, source):
    from ..cuda import backend
    return backend().transfer(x, device)


# PyTorch's _to_copy across devices (.to(device), .cuda(), .cpu()); the dispatcher runs it
# through dispatch.transfer. Its gradient goes back to the source device.
TO_DEVICE = defop("to_device", _to_device_forward, kind="movement",
                  grad_fn_name="ToCopyBackward0")


@derivative(TO_DEVICE)
def _to_device_rule(F, ctx, g):
    return (F.to_device(g, device=ctx.attrs["source"], source=ctx.attrs["device"]),)


# -- public functions ----------------------------------------------------------------------

def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def _infer_shape(shape, numel):
    shape = list(shape)
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"invalid shape dimension {s}")
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{errors.size_str(shape)}' is invalid for input of size "
                               f"{numel}")
        shape[shape.index(-1)] = numel // known
    elif known != numel:
        raise RuntimeError(f"shape '{errors.size_str(shape)}' is invalid for input of size "
                           f"{numel}")
    return tuple(shape)


def reshape(input, *shape):
    shape = _infer_shape(_shape_arg(shape), input._data.size)
    return apply(RESHAPE, (input,), {"shape": shape})


def view(input, *shape):
    if len(shape) == 1 and (isinstance(shape[0], dtypes.dtype) or shape[0] in (
            builtins.float, builtins.int)):
        raise NotImplementedError("view(dtype) is not supported; use .to(dtype)")
    shape = _infer_shape(_shape_arg(shape), input._data.size)
    try:
        np.reshape(input._data, shape, copy=False)
    except ValueError:
        raise RuntimeError("view size is not compatible with input tensor's size and stride (at "
                           "least one dimension spans across two contiguous subspaces). Use "
                           ".reshape(...) instead.") from None
    return apply(RESHAPE, (input,), {"shape": shape})


def view_as(input, other):
    return view(input, other._data.shape)


def reshape_as(input, other):
    return reshape(input, other._data.shape)


def permute(input, *dims):
    dims = _shape_arg(dims)
    ndim = input._data.ndim
    if len(dims) != ndim:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does "
                           f"not match the length of the desired ordering of dimensions i.e. "
                           f"input.dim() = {ndim} is not equal to len(dims) = {len(dims)}")
    dims = tuple(_wrap_dim(d, ndim) for d in dims)
    return apply(PERMUTE, (input,), {"dims": dims})


def transpose(input, dim0, dim1):
    ndim = input._data.ndim
    if ndim == 0:
        _wrap_dim(dim0, 0), _wrap_dim(dim1, 0)
        return apply(PERMUTE, (input,), {"dims": ()})
    d0, d1 = _wrap_dim(dim0, ndim), _wrap_dim(dim1, ndim)
    dims = list(range(ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return apply(PERMUTE, (input,), {"dims": tuple(dims)})


swapaxes = swapdims = transpose


def t(input):
    ndim = input._data.ndim
    if ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {ndim}D")
    return transpose(input, 0, 1) if ndim == 2 else apply(
        PERMUTE, (input,), {"dims": tuple(range(ndim))})


def _T(input):
    return apply(PERMUTE, (input,), {"dims": tuple(reversed(range(input._data.ndim)))})


def _mT(input):
    return transpose(input, -2, -1)


def expand(input, *sizes):
    sizes = _shape_arg(sizes)
    shape = input._data.shape
    if len(sizes) < len(shape):
        raise RuntimeError(f"expand(torch.FloatTensor{{{errors.size_str(shape)}}}, size="
                           f"{errors.size_str(sizes)}): the number of sizes provided "
                           f"({len(sizes)}) must be greater or equal to the number of "
                           f"dimensions in the tensor ({len(shape)})")
    lead = len(sizes) - len(shape)
    target = []
    for i, s in enumerate(sizes):
        own = shape[i - lead] if i >= lead else None
        if s == -1:
            if own is None:
                raise RuntimeError("The expanded size of the tensor (-1) isn't allowed in a "
                                   "leading, non-existing dimension 0")
            s = own
        elif own is not None and own != 1 and own != s:
            raise RuntimeError(f"The expanded size of the tensor ({s}) must match the existing "
                               f"size ({own}) at non-singleton dimension {i}.  Target sizes: "
                               f"{errors.size_str(sizes)}.  Tensor sizes: "
                               f"{errors.size_str(shape)}")
        target.append(s)
    return apply(EXPAND, (input,), {"shape": tuple(target)})


def expand_as(input, other):
    return expand(input, other._data.shape)


def broadcast_to(input, shape):
    return expand(input, shape)


def sum_to_size(input, *size):
    return apply(SUM_TO_SIZE, (input,), {"shape": _shape_arg(size)})


def squeeze(input, dim=None):
    shape = input._data.shape
    if dim is None:
        new = tuple(s for s in shape if s != 1)
    else:
        dims = {_wrap_dim(d, len(shape)) for d in ((dim,) if isinstance(dim, int) else dim)}
        new = tuple(s for i, s in enumerate(shape) if not (i in dims and s == 1))
    return apply(RESHAPE, (input,), {"shape": new})


def unsqueeze(input, dim):
    shape = input._data.shape
    d = _wrap_dim(dim, len(shape) + 1)
    return apply(RESHAPE, (input,), {"shape": shape[:d] + (1,) + shape[d:]})


def flatten(input, start_dim=0, end_dim=-1):
    shape = input._data.shape
    if not shape:
        return apply(RESHAPE, (input,), {"shape": (1,)})
    start, end = _wrap_dim(start_dim, len(shape)), _wrap_dim(end_dim, len(shape))
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    n = 1
    for s in shape[start:end + 1]:
        n *= s
    return apply(RESHAPE, (input,), {"shape": shape[:start] + (n,) + shape[end + 1:]})


def unflatten(input, dim, sizes):
    shape = input._data.shape
    d = _wrap_dim(dim, len(shape))
    sizes = _infer_shape(sizes, shape[d])
    return apply(RESHAPE, (input,), {"shape": shape[:d] + sizes + shape[d + 1:]})


def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    ndim = tensors[0]._data.ndim
    if ndim == 0:
        raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    d = _wrap_dim(dim, ndim)
    for i, t in enumerate(tensors):
        if t._data.ndim != ndim:
            raise RuntimeError(f"Tensors must have same number of dimensions: got {ndim} and "
                               f"{t._data.ndim}")
        for k in range(ndim):
            if k != d and t._data.shape[k] != tensors[0]._data.shape[k]:
                raise RuntimeError(
                    f"Sizes of tensors must match except in dimension {d}. Expected size "
                    f"{tensors[0]._data.shape[k]} but got size {t._data.shape[k]} for tensor "
                    f"number {i} in the list.")
    sizes = tuple(t._data.shape[d] for t in tensors)
    return apply(CAT, tuple(tensors), {"dim": d, "sizes": sizes})


concat = concatenate = cat


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    shape = tensors[0]._data.shape
    for i, t in enumerate(tensors):
        if t._data.shape != shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{errors.size_str(shape)} at entry 0 and "
                               f"{errors.size_str(t._data.shape)} at entry {i}")
    d = _wrap_dim(dim, len(shape) + 1)
    return cat([unsqueeze(t, d) for t in tensors], d)


def hstack(tensors):
    return cat(tensors, 0 if tensors[0]._data.ndim == 1 else 1)


def vstack(tensors):
    return cat([t if t._data.ndim > 1 else unsqueeze(t, 0) for t in tensors], 0)


def clone(input, *, memory_format=None):
    return apply(CLONE, (input,))


def contiguous(input, memory_format=None):
    return input if input.is_contiguous() else clone(input)


def to(input, *args, dtype=None, device=None, copy=False, non_blocking=False):
    from ..device import check_device, device as device_type
    from ..dispatch import transfer
    for a in args:
        if isinstance(a, dtypes.dtype) or a is builtins.float or a is builtins.int or \
                a is builtins.bool:
            dtype = a
        elif isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, (str, device_type)):
            device = a
        elif isinstance(a, int) and not isinstance(a, bool):
            device = a   # matches torch: an int is a CUDA device index
        else:
            # matches torch: NumPy dtypes and other objects are not accepted
            kind = type(a)
            name = kind.__name__ if kind.__module__ == "builtins" else \
                f"{kind.__module__}.{kind.__qualname__}"
            raise TypeError(f"to() received an invalid combination of arguments - got ({name}), "
                            "but expected one of: (device device, dtype dtype, bool "
                            "non_blocking, bool copy), (dtype dtype, bool non_blocking, bool "
                            "copy), (Tensor other, bool non_blocking, bool copy)")
    if isinstance(device, int) and not isinstance(device, bool) and \
            not _cuda_available():
        raise RuntimeError("Cannot access accelerator device when none is available.")
    moved = input if device is None else transfer(input, check_device(device))
    if dtype is None:
        return clone(moved) if copy and moved is input else moved
    return cast(moved, dtypes.to_numpy_dtype(dtype), copy and moved is input)


def _cuda_available():
    from ..cuda import is_available
    return is_available()


def cast(input, np_dtype, copy=False):
    """`input` as NumPy dtype `np_dtype` (itself when it already is, unless copy)."""
    if np_dtype == input._data.dtype and not copy:
        return input
    return apply(TO_DTYPE, (input,), {"dtype": np_dtype})


def type_as(input, other):
    return cast(input, other._data.dtype)


def split(input, split_size_or_sections, dim=0):
    size = input._data.shape[_wrap_dim(dim, input._data.ndim)]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        sections = [step] * (size // step) + ([size % step] if size % step else [])
    else:
        sections = list(split_size_or_sections)
        if builtins.sum(sections) != size:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {size} "
                               f"(input tensor's size at dimension {dim}), but got "
                               f"split_sizes={sections}")
    return tuple(narrow(input, dim, start, length)
                 for start, length in zip(np.cumsum([0] + sections[:-1]).tolist(), sections))


def chunk(input, chunks, dim=0):
    size = input._data.shape[_wrap_dim(dim, input._data.ndim)]
    step = -(-size // chunks) if size else 1
    return split(input, step, dim)


def narrow(input, dim, start, length):
    d = _wrap_dim(dim, input._data.ndim)
    key = (slice(None),) * d + (slice(start, start + length),)
    return input[key]


def unbind(input, dim=0):
    d = _wrap_dim(dim, input._data.ndim)
    return tuple(input[(slice(None),) * d + (i,)] for i in range(input._data.shape[d]))


def repeat(input, *sizes):
    sizes = _shape_arg(sizes)
    shape = (1,) * (len(sizes) - input._data.ndim) + input._data.shape
    x = reshape(input, shape)
    # Interleave a new axis before each dim, expand it to the repeat count, then merge.
    interleaved = reshape(x, tuple(v for s in shape for v in (1, s)))
    expanded = expand(interleaved, tuple(v for r, s in zip(sizes, shape) for v in (r, s)))
    return reshape(expanded, tuple(r * s for r, s in zip(sizes, shape)))


def tile(input, dims):
    return repeat(input, *((1,) * (input._data.ndim - len(dims)) + tuple(dims)))


def flip(input, dims):
    dims = [_wrap_dim(d, input._data.ndim) for d in ((dims,) if isinstance(dims, int) else dims)]
    key = tuple(slice(None, None, -1) if i in dims else slice(None)
                for i in range(input._data.ndim))
    return input[key].clone()


def _bind():
    for name in ("reshape", "view", "view_as", "reshape_as", "permute", "transpose", "t",
                 "expand", "expand_as", "sum_to_size", "squeeze", "unsqueeze", "flatten",
                 "unflatten", "clone", "contiguous", "to", "type_as", "split", "chunk",
                 "narrow", "unbind", "repeat", "tile", "flip", "swapaxes", "swapdims",
                 "broadcast_to"):
        setattr(Tensor, name, globals()[name])
    Tensor.T = property(_T)
    Tensor.mT = property(_mT)
    Tensor.float = lambda self: to(self, dtypes.float32)
    Tensor.double = lambda self: to(self, dtypes.float64)
    Tensor.half = lambda self: to(self, dtypes.float16)
    Tensor.long = lambda self: to(self, dtypes.int64)
    Tensor.int = lambda self: to(self, dtypes.int32)
    Tensor.bool = lambda self: to(self, dtypes.bool_)
    Tensor.type = lambda self, dtype=None: (
        f"torch.{dtypes.LEGACY_NAMES[self.dtype.name]}" if dtype is None else to(self, dtype))


_bind()
