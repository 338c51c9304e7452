"""Indexing: __getitem__ (a view for basic indexing, a copy for advanced), its adjoint
index_backward, and __setitem__ as the in-place index_put."""
import numpy as np

from ..cuda import host_only
from ..dispatch import apply, apply_inplace
from ..tensor import Tensor
from .spec import defop, derivative


def _canonical_key(key, data):
    """Turn an index into a NumPy key: tensors and lists become int64 arrays, boolean masks
    become their nonzero() coordinates (so the backward's np.add.at sees plain indices)."""
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    masked = False
    for k in key:
        if isinstance(k, Tensor):
            k = k._data
        elif isinstance(k, list):
            k = np.asarray(k)
            if k.dtype.kind == "f":
                raise IndexError("tensors used as indices must be long, int, byte or bool "
                                 "tensors")
        if isinstance(k, np.ndarray):
            if k.dtype.kind == "b":
                if k.ndim == 0:
                    out.append(k)
                    continue
                out.extend(np.nonzero(k))
                masked = True
                continue
            if k.dtype.kind not in "iu":
                raise IndexError("tensors used as indices must be long, int, byte or bool "
                                 "tensors")
            k = k.astype(np.int64, copy=False)
        elif isinstance(k, (bool, np.bool_)):
            k = np.asarray(k)
        elif isinstance(k, float):
            raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and long or "
                             "byte Variables are valid indices (got float)")
        out.append(k)
    out = tuple(out)
    if masked:          # only a boolean mask can mismatch the dims it indexes
        _check_masks(key, data.shape)
    return out


def _check_masks(key, shape):
    """PyTorch's error for a boolean mask whose shape does not match the dimensions it
    indexes. Torch applies the basic part of the index first (ints select, None inserts,
    slices narrow), so the message names the shape after that."""
    key = [k._data if isinstance(k, Tensor) else np.asarray(k) if isinstance(k, list) else k
           for k in key]
    basic_shape, masks, d = [], [], 0
    for pos, k in enumerate(key):
        if k is None:
            basic_shape.append(1)
        elif k is Ellipsis:
            n = len(shape) - d - sum(_dims_taken(k2) for k2 in key[pos + 1:])
            basic_shape.extend(shape[d:d + n])
            d += n
        elif isinstance(k, slice):
            if d < len(shape):
                basic_shape.append(len(range(*k.indices(shape[d]))))
            d += 1
        elif isinstance(k, np.ndarray) and k.dtype == bool and k.ndim > 0:
            masks.append((k.shape, len(basic_shape)))
            basic_shape.extend(shape[d:d + k.ndim])
            d += k.ndim
        elif isinstance(k, np.ndarray):
            if d < len(shape):
                basic_shape.append(shape[d])
            d += 1
        else:
            d += 1                       # an int: selected away
    basic_shape.extend(shape[d:])
    for mask, start in masks:
        for j, size in enumerate(mask):
            if start + j < len(basic_shape) and basic_shape[start + j] != size:
                raise IndexError(
                    f"The shape of the mask {list(mask)} at index {j} does not match the shape "
                    f"of the indexed tensor {basic_shape} at index {start + j}")


def _dims_taken(k):
    """How many dimensions of the indexed tensor an index entry consumes."""
    if k is None or k is Ellipsis:
        return 0
    if isinstance(k, np.ndarray) and k.dtype == bool:
        return k.ndim
    return 1


def _getitem_forward(x, key):
    if _is_basic(key) and not any(k is Ellipsis for k in key):
        # A trailing Ellipsis makes NumPy return a 0-d view instead of a scalar copy (x[0]).
        key = key + (Ellipsis,)
    try:
        return x[key]
    except IndexError as error:
        raise IndexError(str(error).replace("axis", "dimension")) from None


def _is_basic(key):
    """Basic indexing (ints, slices, None, Ellipsis) gives a view; index arrays a copy."""
    return not any(isinstance(k, np.ndarray) for k in key)


GETITEM = defop("getitem", _getitem_forward, view=True, kind="movement",
                grad_fn_name="IndexBackward0")


@derivative(GETITEM)
def _getitem_rule(F, ctx, g):
    return (F.index_backward(g, key=ctx.attrs["key"], shape=ctx.meta[0][0]),)


def _index_backward_forward(g, key, shape):
    out = np.zeros(shape, dtype=g.dtype)
    if _is_basic(key):
        out[key] = g
    else:
        np.add.at(out, key, g)  # repeated indices accumulate
    return out


INDEX_BACKWARD = defop("index_backward", _index_backward_forward, kind="movement")


@derivative(INDEX_BACKWARD)
def _index_backward_rule(F, ctx, g):
    return (F.getitem(g, key=ctx.attrs["key"]),)


def _index_put_forward(x, value, key):
    out = np.array(x, copy=True)
    out[key] = value
    return out


def _index_put_inplace(x, value, key):
    if isinstance(value, np.ndarray) and value.ndim > 0:
        # matches torch: leading unit dimensions of the value are dropped on assignment
        slot_ndim = np.ndim(x[key]) if not _is_basic(key) else x[key].ndim
        while value.ndim > slot_ndim and value.shape[0] == 1:
            value = value[0]
    x[key] = value


INDEX_PUT = defop("index_put", _index_put_forward, saves=(), kind="movement",
                  inplace_forward=_index_put_inplace, dtype_rule="same")


@derivative(INDEX_PUT)
def _index_put_rule(F, ctx, g):
    key = ctx.attrs["key"]
    grad_x = F.index_put(g, 0.0, key=key) if ctx.needs[0] else None
    grad_value = F.getitem(g, key=key) if ctx.needs[1] else None
    return grad_x, grad_value


# PyTorch names a basic index's node after the last view it applies (x[0] Select, x[:, 1:]
# Slice, x[None] Unsqueeze, x[...] Alias); advanced indexing is IndexBackward0.
_BASIC_NODE = {name: type(name + "Backward0", (GETITEM.node_class,), {"__slots__": ()})
               for name in ("Select", "Slice", "Unsqueeze", "Alias")}


def _basic_node_class(key):
    last = "Alias"
    for k in key:
        if k is not Ellipsis:
            last = "Slice" if type(k) is slice else "Unsqueeze" if k is None else "Select"
    return _BASIC_NODE[last]


def getitem(input, key):
    if input._data.ndim == 0 and isinstance(key, (int, np.integer, slice)):
        raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                         "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
    key = _canonical_key(key, input._data)
    out = apply(GETITEM, (input,), {"key": key})
    if out._grad_fn is not None:
        if _is_basic(key):
            out._grad_fn.__class__ = _basic_node_class(key)
        else:
            # matches torch: advanced indexing saves its indices, so backward frees its graph
            out._grad_fn.saved = ()
    return out


def setitem(input, key, value):
    if not isinstance(value, Tensor):
        value = float(value) if isinstance(value, (float, np.floating)) else value
        if isinstance(value, (list, tuple, np.ndarray)):
            from ..creation import tensor
            value = tensor(value, dtype=input.dtype)
    else:
        if value.is_cuda != input.is_cuda:
            value = value.to(input.device)   # matches torch: the assignment copies across
        if value._data.dtype != input._data.dtype:
            value = value.to(input.dtype)
    apply_inplace(INDEX_PUT, input, (input, value), {"key": _canonical_key(key, input._data)})


def nonzero(input, *, as_tuple=False):
    host_only(input, "nonzero")
    coords = np.nonzero(input._data)
    if as_tuple:
        return tuple(Tensor._make(c.astype(np.int64)) for c in coords)
    return Tensor._make(np.stack(coords, axis=1).astype(np.int64) if coords else
                        np.zeros((0, 0), np.int64))


def masked_fill(input, mask, value):
    from .elementwise import where
    return where(mask, value, input)


def index_select(input, dim, index):
    d = dim % max(input._data.ndim, 1)
    return getitem(input, (slice(None),) * d + (index,))


def _bind():
    Tensor.__getitem__ = getitem
    Tensor.__setitem__ = setitem
    Tensor.nonzero = nonzero
    Tensor.masked_fill = masked_fill
    Tensor.index_select = index_select

    def masked_fill_(self, mask, value):
        self[mask] = value
        return self
    Tensor.masked_fill_ = masked_fill_


_bind()
