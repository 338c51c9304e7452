"""Matrix products: matmul (batched, broadcasting) as one extern op run by NumPy/BLAS, and
mm / bmm / dot / mv / outer / @ spelled on top of it."""
import numpy as np

from ..dispatch import apply
from ..tensor import Tensor
from .spec import defop, derivative


def _matmul_forward(a, b):
    if a.dtype != b.dtype and _shapes_multiply(a.shape, b.shape):
        # matches torch: matmul does not promote (shape errors come first)
        from ..tensor import _c_type_name
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: "
                           f"{_c_type_name(a.dtype)} != {_c_type_name(b.dtype)}")
    try:
        return np.matmul(a, b)
    except ValueError:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied "
                           f"({a.shape[-2]}x{a.shape[-1]} and {b.shape[-2]}x{b.shape[-1]})"
                           ) from None


MATMUL = defop("matmul", _matmul_forward, saves=(0, 1), kind="extern", dtype_rule="same",
               grad_fn_name="MmBackward0")


@derivative(MATMUL)
def _matmul_rule(F, ctx, g):
    a, b = ctx.inputs
    grad_a = F.matmul(g, _swap_last(F, b)) if ctx.needs[0] else None
    grad_b = F.matmul(_swap_last(F, a), g) if ctx.needs[1] else None
    return grad_a, grad_b  # the engine sums broadcast batch dims away


def _swap_last(F, x):
    ndim = len(x.shape)
    dims = tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)
    return F.permute(x, dims=dims)


def _should_fold(a, b):
    """PyTorch's choice between folding a >=3-D operand into a matrix (mm / mv) and a batched
    product (bmm), which decides the wording of its dtype error (LinearAlgebra.cpp)."""
    a_larger = a._data.ndim >= b._data.ndim
    # the layouts only (a CUDA tensor's memory is not read)
    a_layout, b_layout = (np.lib.stride_tricks.as_strided(np.zeros(1, t._data.dtype),
                                                          t._data.shape, t._data.strides)
                          for t in (a, b))
    t1 = a_layout if a_larger else np.swapaxes(b_layout, -1, -2)
    dim_t2 = b._data.ndim if a_larger else a._data.ndim
    if not (t1.ndim >= 3 and dim_t2 <= 2):
        return False
    if (b if a_larger else a)._requires_grad:
        return True
    if a._data.ndim == 2:
        return False
    if t1.size == 0:
        return True
    strides = [s // t1.itemsize for s in t1.strides]
    return all(strides[i] == strides[i + 1] * t1.shape[i + 1] for i in range(t1.ndim - 2))


def _shapes_multiply(a, b):
    a = (1,) + a if len(a) == 1 else a
    b = b + (1,) if len(b) == 1 else b
    if a[-1] != b[-2]:
        return False
    try:
        np.broadcast_shapes(a[:-2], b[:-2])
    except ValueError:
        return False
    return True


def _dtype_error(kind, a, b):
    """PyTorch's message for a product of two dtypes, by the kernel it dispatches to."""
    from ..errors import scalar_type_name
    from ..tensor import _c_type_name
    da, db = a._data.dtype, b._data.dtype
    if kind == "dot":
        return (f"dot : expected both vectors to have same dtype, but found "
                f"{scalar_type_name(da)} and {scalar_type_name(db)}")
    if kind == "mv":
        return (f"addmv input tensors must have the same dtype, but got {scalar_type_name(db)}, "
                f"{scalar_type_name(da)}, and {scalar_type_name(db)}")
    if kind == "mm":
        return f"expected m1 and m2 to have the same dtype, but got: " \
               f"{_c_type_name(da)} != {_c_type_name(db)}"
    return f"expected scalar type {scalar_type_name(da)} but found {scalar_type_name(db)}"


def _matmul_dtype_error(a, b):
    a_dim, b_dim = a._data.ndim, b._data.ndim
    if a_dim == 1 and b_dim == 1:
        return _dtype_error("dot", a, b)
    if a_dim == 2 and b_dim == 1:
        return _dtype_error("mv", a, b)
    if a_dim <= 2 and b_dim == 2:
        return _dtype_error("mm", a, b)
    if _should_fold(a, b):
        if a_dim >= b_dim:
            return _dtype_error("mv" if b_dim == 1 else "mm", a, b)
        return _dtype_error("mv" if a_dim == 1 else "mm", b, a)   # computed transposed
    return _dtype_error("bmm", a, b)


def matmul(input, other):
    a_dim, b_dim = input._data.ndim, other._data.ndim
    if input._data.dtype != other._data.dtype and a_dim and b_dim and \
            _shapes_multiply(input._data.shape, other._data.shape):
        raise RuntimeError(_matmul_dtype_error(input, other))   # torch checks shapes first
    if a_dim == 0 or b_dim == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are "
                           f"{a_dim}D and {b_dim}D")
    if a_dim == 1 and b_dim == 1:
        if input._data.shape != other._data.shape:
            raise RuntimeError(f"inconsistent tensor size, expected tensor [{input.shape[0]}] "
                               f"and src [{other.shape[0]}] to have the same number of "
                               "elements, but got "
                               f"{input.shape[0]} and {other.shape[0]} elements respectively")
        return apply(MATMUL, (input.unsqueeze(0), other.unsqueeze(1))).reshape(())
    if a_dim == 1:
        return apply(MATMUL, (input.unsqueeze(0), other)).squeeze(-2)
    if b_dim == 1:
        return apply(MATMUL, (input, other.unsqueeze(1))).squeeze(-1)
    return apply(MATMUL, (input, other))


def mm(input, mat2):
    if input._data.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if mat2._data.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    if input._data.dtype != mat2._data.dtype:
        raise RuntimeError(_dtype_error("mm", input, mat2))
    return apply(MATMUL, (input, mat2))


def bmm(input, mat2):
    if input._data.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if mat2._data.ndim != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    if input._data.shape[0] != mat2._data.shape[0]:
        raise RuntimeError("batch1 and batch2 must have same number of batches, got "
                           f"{input._data.shape[0]} and {mat2._data.shape[0]}")
    if input._data.dtype != mat2._data.dtype:
        raise RuntimeError(_dtype_error("bmm", input, mat2))
    return apply(MATMUL, (input, mat2))


def dot(input, other):
    if input._data.ndim != 1 or other._data.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input._data.ndim}D and "
                           f"{other._data.ndim}D tensors")
    return matmul(input, other)


def mv(input, vec):
    return matmul(input, vec)


def outer(input, vec2):
    return input.unsqueeze(1) * vec2.unsqueeze(0)


def _bind():
    def rmatmul(self, other):
        from ..creation import tensor
        return matmul(tensor(other), self)
    Tensor.__matmul__ = lambda self, other: matmul(self, other)
    Tensor.__rmatmul__ = rmatmul
    for name in ("matmul", "mm", "bmm", "dot", "mv", "outer"):
        setattr(Tensor, name, globals()[name])


_bind()
