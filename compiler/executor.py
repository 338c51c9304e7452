"""Executors: run a compiled program (fused kernels and extern NumPy steps) on arrays, or
interpret a graph eagerly through jitgrad's dispatcher (used for create_graph)."""
import math
import sys
import threading

import numpy as np

from jitgrad.dispatch import apply
from jitgrad.ops import REGISTRY

from .ir import Ref
from .passes.fusion import Finish, Kernel


POOL_MIN_BYTES = 1 << 20


class BufferPool:
    """Reuses a program's large kernel outputs across calls. A fresh large NumPy array costs a
    page fault per 4 KiB page on first write (13 ms for 64 MiB here, more than the kernel that
    fills it); an array of the pool that nothing else refers to any more (its reference count
    says so: views, tensors, saved values and buffer exports all hold a reference) is handed out
    again instead. Memory stays with the pool, like a caching allocator's, until the compiled
    function is dropped."""

    def __init__(self):
        self.arrays = {}
        self.lock = threading.Lock()     # two threads must not take the same free array

    def empty(self, shape, dtype):
        if math.prod(shape) * dtype.itemsize < POOL_MIN_BYTES:   # per output, per call
            return np.empty(shape, dtype=dtype)
        key = (shape, dtype)
        with self.lock:
            arrays = self.arrays.setdefault(key, [])
            for array in arrays:
                # referred to by the list, this loop variable and getrefcount's argument only
                if sys.getrefcount(array) == 3:
                    return array
            array = np.empty(shape, dtype=dtype)
            arrays.append(array)
            return array


class Program:
    """Steps computing `outputs` from `inputs`; values are freed after their last use."""

    def __init__(self, graph, steps, inputs, outputs, kernels):
        self.graph = graph
        self.steps = steps
        self.inputs = [r.id for r in inputs]
        self.outputs = outputs
        self.kernels = kernels           # step index -> compiled kernel function
        self.plans = {i: self._plan(step) for i, step in enumerate(steps)
                      if isinstance(step, Kernel)}
        self.free_after = last_uses(steps, outputs)
        self.pool = BufferPool()

    def _plan(self, step):
        from .codegen.numba_cpu import column_views, kernel_views
        by_id = self.graph.by_id
        in_views, out_views, space = kernel_views(step, self.graph)
        first = min(d for d in range(len(space)) if d not in step.reduced)
        n_blocks = -(-space[first] // step.block)
        return dict(
            inputs=[(r.id, view) for r, view in zip(step.inputs, in_views)],
            outputs=[(r.id, tuple(by_id[r.id].shape), by_id[r.id].dtype, view)
                     for r, view in zip(step.outputs, out_views)],
            partials=[(r.id, by_id[r.id].dtype, n_blocks) for r in step.totals] +
            [(r.id, by_id[r.id].dtype, (n_blocks,) + view)
             for r, view in zip(step.columns, column_views(step, self.graph))],
            sizes=tuple(int(s) for s in space) + (int(step.block),))

    def run(self, arrays):
        env = dict(zip(self.inputs, arrays))
        partials = {}
        by_id = self.graph.by_id
        for i, step in enumerate(self.steps):
            if isinstance(step, Kernel):
                plan = self.plans[i]
                ins, outs = kernel_arrays(plan, env, self.pool.empty)
                parts = []
                for nid, dtype, n_blocks in plan["partials"]:
                    # column partials accumulate in place: they start at zero
                    part = np.empty(n_blocks, dtype=dtype) if type(n_blocks) is int else \
                        np.zeros(n_blocks, dtype=dtype)
                    partials[nid] = part
                    parts.append(part)
                self.kernels[i](*ins, *outs, *parts, *plan["sizes"])
            elif isinstance(step, Finish):
                env[step.node.id] = finish_total(step.node, partials.pop(step.node.id),
                                                 by_id[step.node.refs()[0].id].shape)
            else:
                node = step.node
                spec = REGISTRY[node.op]
                args = [env[a.id] if isinstance(a, Ref) else a for a in node.args]
                out = spec.forward(*args, **node.attr_dict)
                env[node.id] = np.asarray(out, dtype=by_id[node.id].dtype)
            for nid in self.free_after.get(i, ()):
                env.pop(nid, None)
        return [None if r is None else env[r.id] for r in self.outputs]


def kernel_arrays(plan, env, allocate):
    """A kernel step's input views, and its outputs allocated (recorded in env) and viewed as
    the kernel indexes them."""
    ins = [env[nid].reshape(view) for nid, view in plan["inputs"]]
    outs = []
    for nid, shape, dtype, view in plan["outputs"]:
        out = allocate(shape, dtype)
        env[nid] = out
        outs.append(out.reshape(view))
    return ins, outs


def last_uses(steps, outputs):
    """Step index -> the values last read there (not program outputs): freed after it."""
    last = {}
    for i, step in enumerate(steps):
        if isinstance(step, Kernel):
            reads = step.inputs
        elif isinstance(step, Finish):
            reads = []
        else:
            reads = step.node.refs()
        for r in reads:
            last[r.id] = i
    keep = {r.id for r in outputs if r is not None}
    free = {}
    for nid, i in last.items():
        if nid not in keep:
            free.setdefault(i, []).append(nid)
    return free


def finish_total(node, partial, source_shape):
    """A total reduction's value from its per-block partials."""
    if partial.ndim > 1:   # a column sum: add the blocks' partial rows
        return np.asarray(partial.sum(axis=0), dtype=node.dtype).reshape(node.shape)
    if node.op == "amax":
        value = partial.max()
    elif node.op == "amin":
        value = partial.min()
    else:
        value = partial.sum()
        if node.op == "mean":
            value = value / max(1, int(np.prod(source_shape)))
    return np.asarray(value, dtype=node.dtype).reshape(node.shape)


def interpret(graph, env):
    """Run a graph's nodes through jitgrad's dispatcher on Tensors (recording autograd)."""
    values = dict(env)
    for node in graph.nodes:
        if node.id in values:
            continue
        if node.op == "input":
            raise KeyError(f"no value for input {node.attr('name')}")
        args = [values[a.id] if isinstance(a, Ref) else a for a in node.args]
        values[node.id] = apply(REGISTRY[node.op], tuple(args), node.attr_dict or None)
    return [None if r is None else values[r.id] for r in graph.outputs]
