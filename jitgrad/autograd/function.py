"""Custom autograd.Function: user-written forward and backward as one node of the graph."""
import numpy as np

from .. import errors, tracing
from ..tensor import Tensor
from .grad_fn import Node, SavedValue, gradient_edge
from .grad_mode import ENABLED, no_grad


class BackwardCFunction(Node):
    """The GradFn of a custom Function application, and the `ctx` its forward and backward see.

    Subclassed per Function as `<Name>Backward`; arbitrary attributes may be set on it.
    """

    _forward_cls = None

    def __init__(self):
        Node.__init__(self)
        self.needs_input_grad = ()
        self.materialize_grads = True
        self.next_functions = ()
        self.meta = ()
        self.n_outputs = 1
        self._out_meta = ()
        self._saved = None
        self._to_save = ()
        self._dirty = ()
        self._non_differentiable = ()
        self._freed = False

    # -- the ctx API ---------------------------------------------------------------------
    def save_for_backward(self, *tensors):
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError("save_for_backward can only save variables, but argument "
                                f"{len(self._to_save)} is of type {type(t).__name__}")
        self._to_save = tensors

    def mark_dirty(self, *tensors):
        self._dirty = tensors

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable = tensors

    def set_materialize_grads(self, value):
        self.materialize_grads = bool(value)

    @property
    def saved_tensors(self):
        if self._freed:
            raise RuntimeError(errors.BACKWARD_TWICE)
        if self._saved is None:
            return tuple(self._to_save)
        as_tensor = True
        return tuple(s if s is None else s.unpack(self, as_tensor) for s in self._saved)

    saved_variables = saved_tensors

    def release(self):
        if self._saved is not None:
            self._saved = None
            self._freed = True

    # -- backward ------------------------------------------------------------------------
    def apply(self, grad_outputs, F):
        from ..ops.spec import NUMPY_OPS
        as_tensor = F is not NUMPY_OPS
        grads = []
        for g, meta in zip(grad_outputs, self._out_meta):
            if g is None and self.materialize_grads:
                grads.append(Tensor._make(np.zeros(*meta)))
                continue
            if g is not None and not as_tensor:
                g = Tensor._make(np.asarray(g))
            grads.append(g)
        result = self._forward_cls.backward(self, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        expected = len(self.next_functions)
        if len(result) > expected and all(r is None for r in result[expected:]):
            result = result[:expected]
        if len(result) != expected:
            raise RuntimeError(f"function {self.name()} returned an incorrect number of "
                               f"gradients (expected {expected}, got {len(result)})")
        out = []
        for i, (g, (child, _)) in enumerate(zip(result, self.next_functions)):
            if g is not None and not isinstance(g, Tensor):
                raise TypeError(f"function {self.name()} returned a gradient different than "
                                f"None at position {i + 1}, but the corresponding forward "
                                "input was not a Variable")
            if child is None or g is None:
                out.append(None)
            else:
                out.append(g if as_tensor else g._data)
        return tuple(out)


class FunctionMeta(type):
    """Gives every Function subclass its own GradFn class, named `<Name>Backward`."""

    def __init__(cls, name, bases, attrs):
        cls._backward_cls = type(name + "Backward", (BackwardCFunction,), {"_forward_cls": cls})
        super().__init__(name, bases, attrs)


class Function(metaclass=FunctionMeta):
    """Subclass with static `forward(ctx, *args)` and `backward(ctx, *grads)`; call `apply`."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError("Legacy autograd function with non-static forward method is "
                           "deprecated. Please use new-style autograd function with static "
                           "forward method.")

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward "
                                  "mode AD.")

    vjp = backward

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        tracing.notify_escape(None, f"custom Function {cls.__name__}")
        ctx = cls._backward_cls()
        needs = tuple(isinstance(a, Tensor) and a._requires_grad for a in args)
        ctx.needs_input_grad = needs
        recording = ENABLED.get() and any(needs)
        uses_setup = cls.setup_context is not Function.setup_context
        with no_grad():
            if uses_setup:
                outputs = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, outputs)
            else:
                outputs = cls.forward(ctx, *args, **kwargs)
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        if recording:
            ctx.next_functions = tuple(gradient_edge(a) if n else (None, 0)
                                       for a, n in zip(args, needs))
            ctx.meta = tuple((a._data.shape, a._data.dtype) if n else None
                                for a, n in zip(args, needs))
        outs = tuple(_wrap_output(ctx, o, j, args, recording) for j, o in enumerate(outs))
        ctx.n_outputs = len(outs)
        ctx._out_meta = tuple((o._data.shape, o._data.dtype) if isinstance(o, Tensor) else
                              ((), np.float32) for o in outs)
        if recording:
            ctx._saved = tuple(_save(t, outs) for t in ctx._to_save)
        return outs[0] if single else outs


def _wrap_output(ctx, out, index, args, recording):
    if not isinstance(out, Tensor):
        return out
    dirty = any(out is d for d in ctx._dirty)
    if dirty:
        if recording and out._requires_grad and out._grad_fn is None and out._base is None:
            raise RuntimeError("a leaf Variable that requires grad has been used in an "
                               "in-place operation.")
    elif any(out is a for a in args):
        # matches torch: an input returned as-is comes back as a new tensor (an alias)
        alias = Tensor._make(out._data)
        alias._vc = out._vc
        out = alias
    if recording and out._data.dtype.kind == "f" and \
            not any(out is t for t in ctx._non_differentiable):
        out._grad_fn = ctx
        out._output_nr = index
        out._requires_grad = True
    return out


def _save(tensor, outputs):
    if tensor is None:
        return None
    is_output = any(tensor is o for o in outputs) and tensor._grad_fn is not None
    return SavedValue(tensor, is_output)


def once_differentiable(fn):
    """Mark a backward as not itself differentiable (it runs without recording)."""
    import functools

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with no_grad():
            return fn(ctx, *args)
    return wrapper
