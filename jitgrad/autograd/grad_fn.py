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
    needs no gradient. `meta` holds each input's `(shape, numpy dtype)`, which the engine uses
    to unbroadcast and cast gradients (once, there, not in every rule). Rarely used fields are
    class-level defaults, so creating a node on the hot path sets only what it needs.
    """

    n_outputs = 1
    next_functions = ()
    meta = ()
    _tensor_hooks = None   # {output_nr: {id: hook}} from Tensor.register_hook
    _retained = None       # {output_nr: weakref to the Tensor} from retain_grad()
    _post_hooks = None
    _pre_hooks = None
    _hooked = False        # any of the three above: one flag for the engine's hot loop
    _cuda = False          # recorded on CUDA tensors: the engine runs the graph as device ops

    def __init__(self):
        self._seq = next(_sequence)

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
        return RemovableHandle(self._post_hooks, fn)  # post-hooks are checked after apply

    def register_prehook(self, fn):
        from .hooks import RemovableHandle
        if self._pre_hooks is None:
            self._pre_hooks = {}
        self._hooked = True
        return RemovableHandle(self._pre_hooks, fn)

    def add_tensor_hook(self, output_nr, fn):
        from .hooks import RemovableHandle
        if self._tensor_hooks is None:
            self._tensor_hooks = {}
        self._hooked = True
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

    __slots__ = ("tensor", "array", "counter", "version", "is_output", "requires_grad",
                 "output_nr")

    def __init__(self, tensor, is_output):
        self.tensor = None if is_output else tensor
        self.array = tensor._data
        self.counter = tensor._vc
        self.version = tensor._vc[0]
        self.is_output = is_output
        self.requires_grad = tensor._requires_grad
        self.output_nr = tensor._output_nr

    def unpack(self, node, as_tensor):
        if self.counter[0] != self.version:
            raise_modified(self.array, self.counter[0], self.version,
                           node if self.is_output else self.tensor._grad_fn,
                           self.output_nr)
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
            out._output_nr = self.output_nr
        return out


def raise_modified(array, version, expected, grad_fn, output_nr):
    origin = f", which is output {output_nr} of {grad_fn.name()}," if grad_fn is not None else ""
    raise RuntimeError(
        "one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: [{errors.tensor_desc(array)}]{origin} is at version {version}; "
        f"expected version {expected} instead. Hint: enable anomaly detection to find the "
        "operation that failed to compute its gradient, with "
        "torch.autograd.set_detect_anomaly(True).")


class OpNode(Node):
    """The GradFn of one op application; subclassed once per op for PyTorch's class names.

    It is also the `ctx` its derivative rule sees: `ctx.inputs` (saved inputs, None where not
    saved), `ctx.out` (the saved output), `ctx.attrs`, `ctx.needs` (which inputs need a
    gradient), `ctx.extra` (extra outputs such as max(dim)'s indices) and `ctx.meta`.
    `saved` holds, per input, None, a Python scalar, or a `(tensor, version)` pair.
    """

    attrs = {}
    saved = None
    saved_out = None        # (array, version counter, version, requires_grad)
    extra = None
    inputs = None
    out = None
    _freed = False

    spec = None             # set on each op's subclass

    def __init__(self, attrs, needs):
        self._seq = next(_sequence)
        if attrs is not None:
            self.attrs = attrs
        self.needs = needs

    def unpack(self, as_tensor):
        if self._freed:
            raise RuntimeError(errors.BACKWARD_TWICE)
        saved = self.saved
        inputs = None
        if saved is not None:
            if as_tensor:
                inputs = [_checked(e)[0] if type(e) is tuple else e for e in saved]
            else:
                inputs = [(e[0]._data if e[0]._vc[0] == e[1] else _checked(e)[0]._data)
                          if type(e) is tuple else e for e in saved]
        out = None
        saved_out = self.saved_out
        if saved_out is not None:
            array, counter, version, requires_grad = saved_out
            if counter[0] != version:
                raise_modified(array, counter[0], version, self, 0)
            if as_tensor:
                from ..tensor import Tensor
                out = Tensor._make(array)
                out._vc = counter
                if requires_grad:
                    out._requires_grad = True
                    out._grad_fn = self
            else:
                out = array
        return inputs, out

    def apply(self, grad_outputs, F):
        if True not in self.needs:
            # every input is a view made under no_grad: like PyTorch, nothing to compute and
            # nothing read from the saved values
            return (None,) * len(self.needs)
        self.inputs, self.out = self.unpack(F is not NUMPY_OPS_REF[0])
        grads = self.spec.rule(F, self, grad_outputs[0])
        self.inputs = self.out = None   # unpacked values live only while the rule runs
        return grads

    def release(self):
        if self.saved is not None or self.saved_out is not None:
            self.saved = None
            self.saved_out = None
            self._freed = True

    @property
    def _saved_self(self):
        return self.unpack(True)[0][0]

    @property
    def _saved_result(self):
        return self.unpack(True)[1]


def _checked(entry):
    """A saved (tensor, version) pair whose tensor has not been modified in place since."""
    tensor, version = entry
    if tensor._vc[0] != version:
        raise_modified(tensor._data, tensor._vc[0], version, tensor._grad_fn,
                       tensor._output_nr)
    return entry


NUMPY_OPS_REF = [None]  # filled in by ops.spec once the namespace exists


class AccumulateGrad(Node):
    """The sink for a leaf: runs the leaf's hooks and accumulates into `.grad`."""

    _seq = ACCUMULATE_SEQ

    def __init__(self, variable):
        self.variable = variable

    def tensor_hooks(self, output_nr):
        # matches torch: a leaf's hooks live on the tensor, so they outlive this node
        return self.variable._hooks

    @property
    def _hooked(self):
        return bool(self.variable._hooks)

    @property
    def _cuda(self):
        return type(self.variable._data) is not np.ndarray

    def apply(self, grad_outputs, F):
        accumulate_into(self.variable, grad_outputs[0], F is not NUMPY_OPS_REF[0])
        return ()


# Gradient arrays that nothing but the engine holds (a compiled backward's fresh outputs, each
# for one consumer), by id: the first accumulation into a hook-free leaf takes such an array as
# its .grad instead of copying it, as PyTorch's AccumulateGrad steals a gradient that no one
# else references. Weak: an array dropped on the way is forgotten.
_UNSHARED = weakref.WeakValueDictionary()


def hand_over(array):
    """Declare `array` a gradient only the engine holds (see _UNSHARED)."""
    _UNSHARED[id(array)] = array


def _take(tensor, array):
    """Whether the leaf `tensor` may keep `array` itself as its first .grad."""
    return (_UNSHARED.pop(id(array), None) is array and not tensor._hooks
            and array.dtype == tensor._data.dtype and array.shape == tensor._data.shape)


def accumulate_into(tensor, grad, as_tensor):
    """PyTorch's AccumulateGrad: take the first gradient, add later ones (in place unless the
    existing .grad is part of a graph or create_graph is on)."""
    from ..tensor import Tensor
    old = tensor._grad
    if as_tensor:
        # Tensor gradients: create_graph, a tracer, or a graph on the CUDA device. Without
        # create_graph (grad mode is what the engine set it to), accumulate as below.
        from .grad_mode import ENABLED
        if old is None:
            if grad._requires_grad:
                tensor._grad = grad
            elif _take(tensor, grad._data):
                tensor._grad = Tensor._make(grad._data)
            else:
                tensor._grad = grad.detach().clone()
        elif ENABLED.get() or old._requires_grad or not _fits(old._data, grad._data):
            tensor._grad = old + grad
        else:
            old.add_(grad)
        return
    grad = np.asarray(grad)
    if old is None:
        # A gradient array may be shared (add passes its gradient through to both inputs),
        # so .grad gets its own copy before later in-place accumulation, unless it is not.
        tensor._grad = Tensor._make(grad if _take(tensor, grad) else
                                    np.array(grad, dtype=tensor._data.dtype, copy=True))
    elif old._requires_grad:
        tensor._grad = Tensor._make(old._data + grad)
    else:
        data = old._data
        if _fits(data, grad):
            np.add(data, grad, out=data, casting="unsafe")
            old._vc[0] += 1
        else:
            tensor._grad = Tensor._make(data + grad)


def _fits(data, grad):
    """Whether `grad` broadcasts into `data`'s shape (in-place accumulation is possible)."""
    return data.shape == grad.shape or \
        np.broadcast_shapes(data.shape, grad.shape) == tuple(data.shape)


def gradient_edge(tensor):
    """The (node, output_nr) edge through which a tensor receives its gradient."""
    grad_fn = tensor._grad_fn if tensor._base is None else tensor.grad_fn
    if grad_fn is not None:
        return grad_fn, tensor._output_nr
    if tensor._requires_grad and tensor._no_grad_view is None:
        return grad_accumulator(tensor), 0
    return None, 0   # no gradient, or a view made under no_grad: PyTorch drops its gradient


def grad_accumulator(tensor):
    ref = tensor._accumulator
    node = ref() if ref is not None else None
    if node is None:
        node = AccumulateGrad(tensor)
        tensor._accumulator = weakref.ref(node)
    return node
