"""The backward engine: seed, order the graph, run each node's derivative rule in reverse,
unbroadcast and cast gradients once at each edge, call hooks, accumulate or capture."""
import heapq
import warnings

import numpy as np

from .. import dispatch, errors, tracing
from ..tensor import Tensor
from .grad_fn import AccumulateGrad, accumulate_into, gradient_edge
from .grad_mode import ENABLED

_ANOMALY = [False]


def _ops(create_graph):
    from ..ops.spec import NUMPY_OPS, TENSOR_OPS
    return TENSOR_OPS if create_graph else NUMPY_OPS


def _as_tuple(x):
    if x is None:
        return None
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False,
             grad_variables=None, inputs=None):
    """torch.autograd.backward: accumulate gradients of `tensors` into the leaves' `.grad`."""
    if grad_variables is not None:
        grad_tensors = grad_variables
    tensors = _as_tuple(tensors)
    grad_tensors = _as_tuple(grad_tensors)
    if inputs is not None:
        inputs = _as_tuple(inputs)
        if len(inputs) == 0:
            raise RuntimeError("`inputs` argument to `backward()` cannot be empty.")
    if retain_graph is None:
        retain_graph = create_graph
    if create_graph:
        warnings.warn(
            "Using backward() with create_graph=True will create a reference cycle between the "
            "parameter and its gradient which can cause a memory leak. We recommend using "
            "autograd.grad when creating the graph to avoid this. If you have to use this "
            "function, make sure to reset the .grad fields of your parameters to None after use "
            "to break the cycle and avoid the leak.", UserWarning, stacklevel=3)
    run(tensors, grad_tensors, retain_graph, create_graph, inputs, accumulate=True)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """torch.autograd.grad: return d(outputs)/d(inputs) without touching any `.grad`."""
    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    if len(inputs) == 0:
        raise RuntimeError("`inputs` argument to `grad()` cannot be empty.")
    grad_outputs = _as_tuple(grad_outputs)
    if allow_unused is None:
        allow_unused = materialize_grads
    for t in inputs:
        if not t._requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    results = run(outputs, grad_outputs, retain_graph, create_graph, inputs, accumulate=False)
    out = []
    for t, g in zip(inputs, results):
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    "One of the differentiated Tensors appears to not have been used in the "
                    "graph. Set allow_unused=True if this is the desired behavior.")
            if materialize_grads:
                g = Tensor._make(_filled_like(t._data, 0))
        out.append(g)
    return tuple(out)


def _seed(tensors, grad_tensors, create_graph):
    """Validate roots and their gradients; return [(edge, gradient)]."""
    if grad_tensors is None:
        grad_tensors = (None,) * len(tensors)
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(f"got {len(grad_tensors)} tensors and {len(tensors)} gradients")
    seeds = []
    for i, (t, g) in enumerate(zip(tensors, grad_tensors)):
        if not isinstance(t, Tensor):
            raise TypeError(f"element {i} of tensors is not a Tensor")
        edge = gradient_edge(t)
        if edge[0] is None:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not "
                               "have a grad_fn")
        array = t._data
        if g is None:
            if array.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if array.dtype.kind != "f":
                raise RuntimeError("grad can be implicitly created only for real scalar outputs "
                                   f"but got {errors.tensor_desc(array)}")
            ones = _filled_like(array, 1)
            g = Tensor._make(ones) if create_graph else ones
        else:
            if not isinstance(g, Tensor):
                g = Tensor._make(np.asarray(g, dtype=array.dtype))
            if (type(g._data) is np.ndarray) != (type(array) is np.ndarray):
                raise RuntimeError(f"invalid gradient at index {i} - expected device "
                                   f"{t.device} but got {g.device}")
            if g._data.shape != array.shape:
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[{i}] has a shape of "
                    f"{errors.torch_size(g._data.shape)} and output[{i}] has a shape of "
                    f"{errors.torch_size(array.shape)}.")
            if g._data.dtype != array.dtype:
                g = Tensor._make(g._data.astype(array.dtype)) if not g._requires_grad and \
                    type(array) is np.ndarray else g.to(t.dtype)
            if not create_graph:
                g = g._data
        seeds.append((edge, g))
    return seeds


def _discover(root_nodes):
    """Count, for every node reachable from the roots, how many edges lead into it."""
    deps = {}
    seen = set(root_nodes)
    stack = list(root_nodes)
    while stack:
        node = stack.pop()
        for child, _ in node.next_functions:
            if child is None:
                continue
            deps[child] = deps.get(child, 0) + 1
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return deps, seen


def _needed(nodes, targets):
    """The nodes from which a target node can be reached (including the targets)."""
    needed = {}
    for start in nodes:
        if start in needed:
            continue
        stack = [(start, iter(start.next_functions))]
        needed[start] = start in targets
        while stack:
            node, children = stack[-1]
            for child, _ in children:
                if child is None:
                    continue
                if child not in needed:
                    needed[child] = child in targets
                    stack.append((child, iter(child.next_functions)))
                    break
                if needed[child]:
                    needed[node] = True
            else:
                stack.pop()
                if stack and needed[node]:
                    needed[stack[-1][0]] = True
    return needed


def run(tensors, grad_tensors, retain_graph, create_graph, inputs, accumulate):
    """Run backward from `tensors`. With `inputs`, gradients flow only towards them; returns
    their gradients when not accumulating (autograd.grad)."""
    tracer = tracing.CURRENT.get()
    if tracer is not None and accumulate:
        # Writing .grad is a side effect a compiled graph cannot replay.
        tracing.notify_escape(None, "backward() writing .grad")
    # Under a tracer the rules run as ops even without create_graph, so they are recorded; a
    # graph with CUDA nodes runs them as ops too, so each takes the device path.
    tensor_mode = create_graph or tracer is not None
    if not tensor_mode and dispatch._cuda_active:
        tensor_mode = _on_device(tensors)
    F = _ops(tensor_mode)
    if warnings.filters[0] is not dispatch._QUIET[0]:
        dispatch.quiet_numpy_warnings()
    seeds = _seed(tensors, grad_tensors, tensor_mode)
    buffers = {}
    for (node, nr), g in seeds:
        slots = buffers.setdefault(node, [None] * node.n_outputs)
        slots[nr] = g if slots[nr] is None else slots[nr] + g
    root_nodes = list(buffers)
    deps, seen = _discover(root_nodes)

    targets = None
    captured = None
    if inputs is not None:
        targets = {}
        for i, t in enumerate(inputs):
            edge = gradient_edge(t)
            if edge[0] is None:
                raise RuntimeError(f"element {i} of the inputs does not require grad")
            targets.setdefault(edge, []).append((i, t))
        target_nodes = {node for node, _ in targets}
        needed = _needed(root_nodes, target_nodes)
        captured = [None] * len(inputs)

    mode_token = ENABLED.set(create_graph)
    heappush, heappop = heapq.heappush, heapq.heappop
    try:
        heap = []
        for node in root_nodes:
            if deps.get(node, 0) == 0:
                heappush(heap, (-node._seq, id(node), node))
        node = heappop(heap)[2] if heap else None
        while node is not None:
            grads = buffers.pop(node, None)
            if grads is not None and node._hooked:
                grads = _call_tensor_hooks(node, grads, tensor_mode)
            out = None
            if grads is not None and (grads[0] is not None or any(
                    g is not None for g in grads)):
                if targets is None or _wanted(node, needed, targets, grads, captured,
                                              accumulate, tensor_mode):
                    if tracer is not None:
                        tracer.enter_backward(node)
                    out = node.apply(grads, F)
                    if len(out) != len(node.next_functions) or node._post_hooks or \
                            _ANOMALY[0]:
                        out = _check_outputs(node, grads, out, tensor_mode)
            if not retain_graph:
                node.release()
            meta = node.meta
            ready = None
            for i, (child, nr) in enumerate(node.next_functions):
                if child is None or (targets is not None and not needed.get(child)):
                    continue
                if out is not None:
                    g = out[i]
                    if g is not None:
                        m = meta[i]
                        if m is not None and (g.dtype is not m[1] or g.shape != m[0]):
                            g = _fit(node, i, g, tensor_mode)
                        slots = buffers.get(child)
                        if slots is None:
                            slots = buffers[child] = [None] * child.n_outputs
                        slots[nr] = g if slots[nr] is None else slots[nr] + g
                remaining = deps[child] - 1
                deps[child] = remaining
                if remaining == 0:
                    if ready is None:
                        ready = child
                    else:
                        heappush(heap, (-child._seq, id(child), child))
            # The ready node with the highest sequence number runs next (PyTorch's order);
            # a lone newly ready node skips the heap.
            if ready is not None:
                if heap:
                    heappush(heap, (-ready._seq, id(ready), ready))
                    node = heappop(heap)[2]
                else:
                    node = ready
            else:
                node = heappop(heap)[2] if heap else None
    finally:
        ENABLED.reset(mode_token)
    if captured is not None and not accumulate:
        return [None if g is None else (g if tensor_mode else Tensor._make(np.asarray(g)))
                for g in captured]
    return None


def _on_device(tensors):
    """Whether the graph behind `tensors` holds a CUDA node (or a root lives on the device)."""
    roots = []
    for t in tensors:
        if isinstance(t, Tensor):
            if type(t._data) is not np.ndarray:
                return True
            node = gradient_edge(t)[0]
            if node is not None:
                roots.append(node)
    return any(node._cuda for node in _discover(roots)[1])


def _filled_like(array, value):
    """An array of `value` with `array`'s shape and dtype, on its device."""
    if type(array) is np.ndarray:
        return np.full_like(array, value)
    from ..cuda import backend
    return backend().full(array.shape, array.dtype, value)


def _wanted(node, needed, targets, grads, captured, accumulate, create_graph):
    """With `inputs`: capture or accumulate at targets; run the node only if a target lies
    beyond it."""
    for nr, g in enumerate(grads):
        hits = targets.get((node, nr))
        if hits is None or g is None:
            continue
        for index, tensor in hits:
            if accumulate:
                if not isinstance(node, AccumulateGrad):
                    accumulate_into(tensor, g, create_graph)
            else:
                captured[index] = g if captured[index] is None else captured[index] + g
    if isinstance(node, AccumulateGrad):
        return accumulate and (node, 0) in targets
    return any(needed.get(child) for child, _ in node.next_functions if child is not None)


def _call_tensor_hooks(node, grads, create_graph):
    """Tensor hooks in registration order (a returned value replaces the gradient), then
    retain_grad, which always sees the final gradient."""
    pre_hooks = node._pre_hooks
    if pre_hooks:
        for hook in list(pre_hooks.values()):
            result = hook(tuple(_to_tensor(g, create_graph) for g in grads))
            if result is not None:
                grads = [_from_tensor(g, create_graph) for g in result]
    for nr in range(len(grads)):
        g = grads[nr]
        if g is None:
            continue
        hooks = node.tensor_hooks(nr)
        if hooks:
            for hook in list(hooks.values()):
                result = hook(_to_tensor(g, create_graph))
                if result is not None:
                    g = _from_tensor(result, create_graph)
            grads[nr] = g
        retained = node._retained
        if retained and nr in retained:
            tensor = retained[nr]()
            if tensor is not None:
                accumulate_into(tensor, g, create_graph)
    return grads


def _to_tensor(g, create_graph):
    if g is None or create_graph:
        return g
    return Tensor._make(np.asarray(g))


def _from_tensor(t, create_graph):
    if t is None or create_graph:
        return t
    return t._data


def _check_outputs(node, grads, out, create_graph):
    """The slow path after a node ran: gradient count, node post-hooks, anomaly checks."""
    if len(out) != len(node.next_functions):
        raise RuntimeError(f"function {node.name()} returned an incorrect number of gradients "
                           f"(expected {len(node.next_functions)}, got {len(out)})")
    if node._post_hooks:
        for hook in list(node._post_hooks.values()):
            result = hook(tuple(_to_tensor(g, create_graph) for g in out),
                          tuple(_to_tensor(g, create_graph) for g in grads))
            if result is not None:
                out = tuple(_from_tensor(g, create_graph) for g in result)
    if _ANOMALY[0]:
        for i, g in enumerate(out):
            if g is not None and np.isnan(_host(g._data if create_graph else g)).any():
                raise RuntimeError(f"Function '{node.name()}' returned nan values in its "
                                   f"{i}th output.")
    return out


def _host(array):
    if type(array) is np.ndarray:
        return array
    from ..cuda import backend
    return backend().to_host(array)


def _fit(node, index, g, create_graph):
    """Unbroadcast and cast a gradient to the shape and dtype of the input it flows into."""
    meta = node.meta[index]
    if meta is None:
        return g
    shape, dtype = meta
    if not create_graph and g.shape == shape and g.dtype == dtype:
        return g
    if create_graph:
        g_shape = g._data.shape
        if g_shape != shape:
            g = g.sum_to_size(_reduce_target(node, index, g_shape, shape))
            if g._data.shape != shape:
                g = g.reshape(shape)
        if g._data.dtype != dtype:
            from ..ops.movement import cast
            g = cast(g, dtype)
        return g
    g_shape = g.shape
    if g_shape != shape:
        target = _reduce_target(node, index, g_shape, shape)
        g = sum_to(np.asarray(g), target).reshape(shape)
    if g.dtype != dtype:
        g = np.asarray(g).astype(dtype)
    return g


def _reduce_target(node, index, g_shape, shape):
    """The shape to sum a broadcast gradient down to (leading 1s of `shape` dropped when the
    gradient has fewer dims); an error naming the node when no such reduction exists."""
    lead = len(shape) - len(g_shape)
    target = shape[lead:] if lead > 0 else shape
    if lead > 0 and any(s != 1 for s in shape[:lead]):
        target = None
    if target is not None:
        try:
            if np.broadcast_shapes(tuple(target), tuple(g_shape)) == tuple(g_shape):
                return tuple(target)
        except ValueError:
            pass
    raise RuntimeError(f"Function {node.name()} returned an invalid gradient at index {index} - "
                       f"got {errors.size_str(g_shape)} but expected shape compatible with "
                       f"{errors.size_str(shape)}")


def sum_to(array, shape):
    """Sum a broadcast array down to `shape` (NumPy path of the sum_to_size op)."""
    if array.shape == tuple(shape):
        return array
    lead = array.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and array.shape[i + lead] != 1)
    result = np.add.reduce(array, axis=axes, keepdims=True) if axes else array
    if lead:
        result = result.reshape(result.shape[lead:])
    return result


class set_detect_anomaly:
    """Anomaly detection: when on, a backward node that returns NaN raises, naming the node."""

    def __init__(self, mode=True, check_nan=True):
        self.prev = _ANOMALY[0]
        _ANOMALY[0] = bool(mode) and check_nan

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _ANOMALY[0] = self.prev


class detect_anomaly(set_detect_anomaly):
    def __init__(self, check_nan=True):
        super().__init__(True, check_nan)


def is_anomaly_enabled():
    return _ANOMALY[0]
