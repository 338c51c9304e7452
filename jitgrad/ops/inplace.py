"""Ops that exist for their in-place form: fill_/zero_ and copy_. (Other in-place methods,
add_ and friends, reuse their out-of-place op through dispatch.apply_inplace.)"""
import numpy as np

from ..dispatch import apply_inplace
from ..tensor import Tensor
from .spec import defop, derivative


def _fill_forward(x, value):
    return np.full_like(x, value)


FILL = defop("fill", _fill_forward, template="{1}", grad_fn_name="FillBackward0")


@derivative(FILL)
def _fill_rule(F, ctx, g):
    # matches torch: the overwritten value gets a zero gradient, not None
    return F.zeros(ctx.meta[0][0], g), (F.sum(g, dim=None, keepdim=False) if ctx.needs[1]
                                        else None)


def _copy_forward(x, src):
    return np.broadcast_to(src, x.shape).astype(x.dtype)


COPY = defop("copy", _copy_forward, template="{1}", grad_fn_name="CopyBackwards")


@derivative(COPY)
def _copy_rule(F, ctx, g):
    # The engine sums and casts the source's gradient to its shape and dtype.
    return F.zeros(ctx.meta[0][0], g), g


def _bind():
    def fill_(self, value):
        if isinstance(value, Tensor) and value._data.ndim != 0:
            raise RuntimeError("fill_ only supports 0-dimension value tensor but got tensor "
                               f"with {value._data.ndim} dimensions.")
        return apply_inplace(FILL, self, (self, value))

    def zero_(self):
        return apply_inplace(FILL, self, (self, 0))

    def copy_(self, src, non_blocking=False):
        if not isinstance(src, Tensor):
            raise TypeError(f"copy_(): argument 'src' (position 1) must be Tensor, not "
                            f"{type(src).__name__}")
        try:
            if np.broadcast_shapes(src._data.shape, self._data.shape) != self._data.shape:
                raise ValueError
        except ValueError:
            raise RuntimeError(f"The size of tensor a ({self._data.shape[-1] if self._data.ndim else 1}) "
                               f"must match the size of tensor b ({src._data.shape[-1]}) at "
                               "non-singleton dimension") from None
        if src.is_cuda != self.is_cuda:
            src = src.to(self.device)   # matches torch: copy_ copies across devices
        return apply_inplace(COPY, self, (self, src))

    Tensor.fill_ = fill_
    Tensor.zero_ = zero_
    Tensor.copy_ = copy_


_bind()
