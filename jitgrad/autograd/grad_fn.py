"""Autograd graph nodes (GradFn): the base Node, op nodes with version-checked saved values,
and AccumulateGrad for leaves."""
import itertools
import weakref

import numpy as np

from .. import errors

_sequence = itertools.count()
ACCUMULATE_SEQ = 1 << 62  # matches torch: AccumulateGrad runs as soon as it is ready


class Node:
    """A node of the autograd graph.

    `next_functions` holds one `(node, output_nr)` edge per input, `(None, 0)` where the input
    needs no gradient. `in_meta` holds each input's `(shape, numpy dtype)`, which the engine uses
    to unbroadcast and cast gradients (once, there, not in every rule).
    """

    __slots__ = ("next_functions", "in_meta", "_seq", "_tensor_hooks", "_retained",
                 "_post_hooks", "_pre_hooks", "__weakref__")

    n_outputs = 1

    def __init__(self):
        self._seq = next(_sequence)
        self._tensor_hooks = None   # {output_nr: [hook, ...]} from Tensor.register_hook
        self._retained = None       # {output_nr: weakref to the Tensor} from retain_grad()
        self._post_hooks = None
        self._pre_hooks = None

    def name(self):
        return type(self).__name__

    def __repr__(self):
        return f"<{type(self).__name__} object at {id(self):#x}>"

    def apply(self, grad_outputs, F):
        raise NotImplementedError

    def release(self):
        """Free saved values after a backward without retain_graph."""

    # -- hooks registered on the node itself (PyTorch's grad_fn.register_hook) -------------
    def register_hook(self, fn):
        from .hooks import RemovableHandle
        if self._post_hooks is None:
            self._post_hooks = {}
        return RemovableHandle(self._post_hooks, fn)

    def register_prehook(self, fn):
        from .hooks import RemovableHandle
        if self._pre_hooks is None:
            self._pre_hooks = {}
        return RemovableHandle(self._pre_hooks, fn)

    def add_tensor_hook(self, output_nr, fn):
        from .hooks import RemovableHandle
        if self._tensor_hooks is None:
            self._tensor_hooks = {}
        return RemovableHandle(self._tensor_hooks.setdefault(output_nr, {}), fn)

    def tensor_hooks(self, output_nr):
        """Hooks registered on the tensor that is this node's output `output_nr`."""
        hooks = self._tensor_hooks
        return hooks.get(output_nr) if hooks else None


class SavedValue:
    """A value saved for backward, stamped with its tensor's version at save time.

    Inputs are kept as the Tensor itself (so `create_graph` differentiates through them);
    outputs are kept as their array and version counter, and re-wrapped with this node as their
    grad_fn on unpack, to avoid a reference cycle output -> node -> output.
    """

    __slots__ = ("tensor", "array", "counter", "version", "is_output", "requires_grad")

    def __init__(self, tensor, is_output):
        self.tensor = None if is_output else tensor
        self.array = tensor._data
        self.counter = tensor._vc
        self.version = tensor._vc[0]
        self.is_output = is_output
        self.requires_grad = tensor._requires_grad

    def check(self, node, tensor_desc):
        if self.counter[0] != self.version:
            if self.is_output:
                origin = f", which is output 0 of {node.name()},"
            else:
                grad_fn = self.tensor._grad_fn
                origin = (f", which is output {self.tensor._output_nr} of {grad_fn.name()},"
                          if grad_fn is not None else "")
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{tensor_desc(self.array)}]{origin} is at version "
                f"{self.counter[0]}; expected version {self.version} instead. Hint: enable "
                "anomaly detection to find the operation that failed to compute its gradient, "
                "with torch.autograd.set_detect_anomaly(True).")

    def unpack(self, node, as_tensor):
        self.check(node, errors.tensor_desc)
        if not as_tensor:
            return self.array
        if not self.is_output:
            return self.tensor
        from ..tensor import Tensor
        out = Tensor._make(self.array)
        out._vc = self.counter
        if self.requires_grad:
            out._requires_grad = True
            out._grad_fn = node
        return out


class OpNode(Node):
    """The GradFn of one op application; subclassed once per op for PyTorch's class names."""

    __slots__ = ("spec", "attrs", "saved", "saved_out", "needs", "extra", "_freed")

    def __init__(self, spec, attrs, needs):
        Node.__init__(self)
        self.spec = spec
        self.attrs = attrs
        self.needs = needs
        self.saved = None
        self.saved_out = None
        self.extra = None       # non-differentiable extra outputs (max(dim)'s indices)
        self._freed = False

    # The rule's view of its node: ctx.inputs, ctx.out, ctx.attrs, ctx.needs, ctx.extra.
    def unpack(self, as_tensor):
        if self._freed:
            raise RuntimeError(errors.BACKWARD_TWICE)
        saved = self.saved
        inputs = None
        if saved is not None:
            inputs = tuple(s.unpack(self, as_tensor) if type(s) is SavedValue else s
                           for s in saved)
        out = self.saved_out.unpack(self, as_tensor) if self.saved_out is not None else None
        return inputs, out

    def apply(self, grad_outputs, F):
        inputs, out = self.unpack(F is not _numpy_ops())
        ctx = RuleContext(inputs, out, self.attrs, self.needs, self.extra, self.in_meta)
        return self.spec.rule(F, ctx, grad_outputs[0])

    def release(self):
        if self.saved is not None or self.saved_out is not None:
            self.saved = None
            self.saved_out = None
            self._freed = True

    @property
    def _saved_self(self):
        inputs, _ = self.unpack(True)
        return inputs[0]

    @property
    def _saved_result(self):
        _, out = self.unpack(True)
        return out


class RuleContext:
    """What a derivative rule sees: saved inputs (None where not saved), the saved output,
    the op's attributes (a dict, empty when none), which inputs need a gradient, extra outputs,
    and each differentiable input's (shape, dtype) as `meta`."""

    __slots__ = ("inputs", "out", "attrs", "needs", "extra", "meta")

    def __init__(self, inputs, out, attrs, needs, extra, meta):
        self.inputs = inputs
        self.out = out
        self.attrs = attrs if attrs is not None else {}
        self.needs = needs
        self.extra = extra
        self.meta = meta


_NUMPY_OPS = []


def _numpy_ops():
    if not _NUMPY_OPS:
        from ..ops.spec import NUMPY_OPS
        _NUMPY_OPS.append(NUMPY_OPS)
    return _NUMPY_OPS[0]


class AccumulateGrad(Node):
    """The sink for a leaf: runs the leaf's hooks and accumulates into `.grad`."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        Node.__init__(self)
        self._seq = ACCUMULATE_SEQ
        self.variable = variable
        self.next_functions = ()
        self.in_meta = ()

    def tensor_hooks(self, output_nr):
        # matches torch: a leaf's hooks live on the tensor, so they outlive this node
        return self.variable._hooks

    def apply(self, grad_outputs, F):
        accumulate_into(self.variable, grad_outputs[0], F is not _numpy_ops())
        return ()


def accumulate_into(tensor, grad, as_tensor):
    """PyTorch's AccumulateGrad: take the first gradient, add later ones (in place unless the
    existing .grad is part of a graph or create_graph is on)."""
    from ..tensor import Tensor
    old = tensor._grad
    if as_tensor:
        if old is None:
            tensor._grad = grad if grad._requires_grad else grad.detach().clone()
        else:
            tensor._grad = old + grad
        return
    grad = np.asarray(grad)
    if old is None:
        # A gradient array may be shared (add passes its gradient through to both inputs),
        # so .grad gets its own copy before later in-place accumulation.
        tensor._grad = Tensor._make(np.array(grad, dtype=tensor._data.dtype, copy=True))
    elif old._requires_grad:
        tensor._grad = Tensor._make(old._data + grad)
    else:
        data = old._data
        if data.shape == grad.shape or np.broadcast_shapes(data.shape, grad.shape) == data.shape:
            np.add(data, grad, out=data, casting="unsafe")
            old._vc[0] += 1
        else:
            tensor._grad = Tensor._make(data + grad)


def gradient_edge(tensor):
    """The (node, output_nr) edge through which a tensor receives its gradient."""
    grad_fn = tensor.grad_fn
    if grad_fn is not None:
        return grad_fn, tensor._output_nr
    if tensor._requires_grad:
        return grad_accumulator(tensor), 0
    return None, 0


def grad_accumulator(tensor):
    ref = tensor._accumulator
    node = ref() if ref is not None else None
    if node is None:
        node = AccumulateGrad(tensor)
        tensor._accumulator = weakref.ref(node)
    return node
