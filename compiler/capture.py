"""Capture: run the user's function eagerly under a tracer and record the joint graph.

The forward part is recorded while `fn` runs on proxy leaves. The backward part is recorded by
running jitgrad's own engine (`autograd.grad(..., create_graph=True)`) under the same tracer:
the derivative rules replay through the dispatcher, so the compiler has no second set of rules.
"""
import os
import sys
import traceback

import numpy as np

import jitgrad
from jitgrad import tracing
from jitgrad.tensor import Tensor

from .ir import Graph, Node, Ref


class GraphBreak(Exception):
    """The function cannot be captured as one graph; `reason` and `where` say why."""

    def __init__(self, reason, where=""):
        super().__init__(f"{reason} ({where})" if where else reason)
        self.reason = reason
        self.where = where


# Ops the CPU backend does not capture yet; calls that use them run eagerly.
UNSUPPORTED = {"max_dim", "min_dim", "index_put", "floor_divide", "remainder", "to_device"}

_JITGRAD_DIR = os.path.dirname(jitgrad.__file__)
_COMPILER_DIR = os.path.dirname(__file__)


def user_location():
    """The innermost stack frame outside jitgrad and the compiler: `file.py:14`."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (filename.startswith(_JITGRAD_DIR) or filename.startswith(_COMPILER_DIR)
                or "importlib" in filename or filename.startswith("<frozen")):
            return f"{os.path.basename(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


class Tracer:
    """Receives every op from jitgrad's dispatcher and builds IR nodes."""

    def __init__(self):
        self.nodes = []
        self.by_array = {}       # id(ndarray) -> Ref; arrays identify values (detach keeps it)
        self.keep = []           # keeps traced arrays alive so their ids stay unique
        self.lifted = []         # tensors used but not produced here (closures): extra inputs
        self.role = "forward"
        self.where_of_node = {}  # id(GradFn) -> file:line of the forward op that made it
        self.no_grad = set()     # forward node ids computed without gradient (cuts, no_grad)
        self.backward_where = ""

    # -- values -----------------------------------------------------------------------------
    def _add(self, op, args, attrs, array, where=""):
        node = Node(id=len(self.nodes), op=op, args=tuple(args),
                    attrs=tuple(sorted((attrs or {}).items())), shape=tuple(array.shape),
                    dtype=array.dtype, where=where, role=self.role)
        self.nodes.append(node)
        ref = Ref(node.id)
        self.by_array[id(array)] = ref
        self.keep.append(array)
        return ref

    def add_input(self, tensor, name):
        return self._add("input", (), {"name": name}, tensor._data)

    def ref(self, value):
        if not isinstance(value, Tensor):
            if isinstance(value, np.ndarray):
                raise GraphBreak("a NumPy array used as an op argument", user_location())
            return value
        ref = self.by_array.get(id(value._data))
        if ref is None:
            # A tensor from outside the function (a closure, a constant made by a rule):
            # lift it to an extra input, read at every call.
            name = f"lifted{len(self.lifted)}"
            self.lifted.append(value)
            ref = self._add("input", (), {"name": name}, value._data)
        return ref

    # -- the tracer seam ----------------------------------------------------------------------
    def enter_backward(self, grad_fn):
        """The engine is about to run `grad_fn`'s rule: its ops belong to that forward op."""
        self.backward_where = self.where_of_node.get(id(grad_fn), "")

    def record(self, spec, args, attrs, result):
        where = user_location() if self.role == "forward" else self.backward_where
        if spec.name in UNSUPPORTED or spec.n_outputs > 1:
            raise GraphBreak(f"op '{spec.name}' is not supported by the compiler yet", where)
        if spec.name == "getitem" and any(isinstance(k, np.ndarray) for k in attrs["key"]):
            raise GraphBreak("advanced (tensor, list or mask) indexing depends on data", where)
        refs = [self.ref(a) for a in args]
        ref = self._add(spec.name, refs, attrs, result._data, where)
        if self.role == "forward":
            if result._grad_fn is not None:
                self.where_of_node[id(result._grad_fn)] = where
            elif result._data.dtype.kind == "f":
                self.no_grad.add(ref.id)

    def record_inplace(self, spec, target, args, attrs):
        raise GraphBreak(f"in-place op '{spec.name}_' inside the function", user_location())

    def escape(self, tensor, how):
        if how in ("item", "numpy", "bool"):
            raise GraphBreak(f"'{how}' takes a value out of the graph", user_location())
        raise GraphBreak(f"{how} is not supported inside a compiled function",
                         user_location())


def _flatten(obj, out):
    """Tensors of a nested structure of tuples / lists / dicts, in order."""
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            _flatten(item, out)
    elif isinstance(obj, dict):
        for key in obj:
            _flatten(obj[key], out)
    return out


def flatten(obj):
    return _flatten(obj, [])


def rebuild(obj, tensors):
    """The structure of `obj` with its tensors replaced, in order, by `tensors`."""
    return _rebuild(obj, iter(tensors))


def _rebuild(o, it):
    # A module-level recursion: a nested closure that calls itself is a reference cycle, which
    # would keep every call's outputs (and their graphs) alive until the garbage collector ran.
    if isinstance(o, Tensor):
        return next(it)
    if isinstance(o, tuple):
        items = [_rebuild(x, it) for x in o]
        return type(o)(*items) if hasattr(o, "_fields") else tuple(items)
    if isinstance(o, list):
        return [_rebuild(x, it) for x in o]
    if isinstance(o, dict):
        return {k: _rebuild(v, it) for k, v in o.items()}
    return o


class Capture:
    """The result of capturing one call: the joint graph and what the runtime needs."""

    def __init__(self, graph, n_forward_outputs, grad_inputs, lifted, structure):
        self.graph = graph
        self.n_forward_outputs = n_forward_outputs
        self.grad_inputs = grad_inputs    # indices (into all inputs) that receive gradients
        self.lifted = lifted
        self.structure = structure


def capture(fn, args, kwargs, need_backward):
    """Run `fn` under a tracer; return (Capture, eager result of this call)."""
    inputs = flatten((args, kwargs))
    tracer = Tracer()
    proxies = []
    for i, t in enumerate(inputs):
        proxy = t.detach()
        proxy._vc = [t._vc[0]]
        if t._requires_grad:
            proxy.requires_grad_(True)
        tracer.add_input(proxy, f"arg{i}")
        proxies.append(proxy)
    proxy_args, proxy_kwargs = rebuild((args, kwargs), proxies)
    token = tracing.CURRENT.set(tracer)
    try:
        result = fn(*proxy_args, **proxy_kwargs)
        outputs = flatten(result)
        for out in outputs:
            tracer.ref(out)
        forward_refs = [tracer.ref(o) for o in outputs]
        grad_refs, grad_inputs = [], []
        diff_outputs = [o for o in outputs if o._requires_grad]
        if need_backward and diff_outputs:
            tracer.role = "backward"
            seeds = []
            for k, o in enumerate(diff_outputs):
                seed = jitgrad.ones_like(o)
                tracer._add("input", (), {"name": f"grad_out{k}"}, seed._data)
                seeds.append(seed)
            targets = [p for p in proxies if p._requires_grad]
            lifted_grad = [t for t in tracer.lifted if t._requires_grad]
            grads = jitgrad.autograd.grad(diff_outputs, targets + lifted_grad, seeds,
                                          create_graph=True, allow_unused=True)
            for g in grads:
                grad_refs.append(None if g is None else tracer.ref(g))
            grad_inputs = [i for i, p in enumerate(proxies) if p._requires_grad]
    except GraphBreak:
        raise
    except Exception as error:
        raise GraphBreak(f"{type(error).__name__} while capturing: {error}",
                         _location_of(error)) from error
    finally:
        tracing.CURRENT.reset(token)
    graph = Graph(nodes=tuple(tracer.nodes),
                  inputs=tuple(Ref(n.id) for n in tracer.nodes if n.op == "input"),
                  outputs=tuple(forward_refs + grad_refs),
                  meta={"diff_outputs": [i for i, o in enumerate(outputs) if o._requires_grad],
                        "no_grad": tracer.no_grad,
                        "requires_grad_inputs": {tracer.by_array[id(p._data)].id
                                                 for p in proxies if p._requires_grad}})
    cap = Capture(graph, len(forward_refs), grad_inputs, list(tracer.lifted), result)
    cap.output_alias = [_alias_kind(o, proxies + tracer.lifted) for o in outputs]
    return cap, result


def _alias_kind(out, given):
    """How an output that holds a given tensor's memory relates to it: the tensor itself
    ("self"), a detach() of it sharing its version counter ("detach"), or .data ("data")."""
    if any(out is t for t in given):
        return "self"
    return "detach" if any(out._vc is t._vc for t in given) else "data"


def _location_of(error):
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        if not frame.filename.startswith((_JITGRAD_DIR, _COMPILER_DIR)):
            return f"{os.path.basename(frame.filename)}:{frame.lineno}"
    return ""
