"""CopySlices: the base's GradFn after an in-place op on one of its views (PyTorch's design).

The base's new value is its old value with the view's region replaced by `fn(view)`. Backward
sends the base's gradient to the old base with that region replaced by fn's gradient for its
first input, and fn's gradients for its other inputs to their own edges.
"""
import numpy as np

from .grad_fn import Node


class CopySlices(Node):
    __slots__ = ("view_chain", "fn")

    def __init__(self, base_edge, base_meta, view_chain, fn):
        Node.__init__(self)
        self.view_chain = view_chain
        self.fn = fn
        self.next_functions = (base_edge,) + fn.next_functions[1:]
        self.meta = (base_meta,) + fn.meta[1:]
        self._cuda = fn._cuda

    def apply(self, grad_outputs, F):
        from ..dispatch import replay_view
        from ..ops.spec import NUMPY_OPS
        grad = grad_outputs[0]
        as_tensor = F is not NUMPY_OPS
        result = grad.clone() if as_tensor else np.array(grad, copy=True)
        grad_slice = replay_view(self.view_chain, result, F)
        slice_value = grad_slice.clone() if as_tensor else grad_slice.copy()
        fn_grads = self.fn.apply([slice_value], F)
        first = fn_grads[0]
        if as_tensor:
            if first is None:
                grad_slice.zero_()
            else:
                grad_slice.copy_(first)
        else:
            grad_slice[...] = 0 if first is None else first
        return (result,) + tuple(fn_grads[1:])

    def release(self):
        self.fn.release()
