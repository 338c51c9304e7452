"""Executors: run a compiled program (fused kernels and extern NumPy steps) on arrays, or
interpret a graph eagerly through jitgrad's dispatcher (used for create_graph)."""
import numpy as np

from jitgrad.dispatch import apply
from jitgrad.ops import REGISTRY

from .ir import Ref
from .passes.fusion import Kernel


class Program:
    """Steps computing `outputs` from `inputs`; values are freed after their last use."""

    def __init__(self, graph, steps, inputs, outputs, kernels):
        self.graph = graph
        self.steps = steps
        self.inputs = [r.id for r in inputs]
        self.outputs = outputs
        self.kernels = kernels           # step index -> compiled kernel function
        by_id = graph.by_id
        self.alloc = {i: [(tuple(by_id[r.id].shape), by_id[r.id].dtype, r.id)
                          for r in step.outputs]
                      for i, step in enumerate(steps) if isinstance(step, Kernel)}
        self.free_after = self._last_uses()

    def _last_uses(self):
        last = {}
        for i, step in enumerate(self.steps):
            reads = step.inputs if isinstance(step, Kernel) else step.node.refs()
            for r in reads:
                last[r.id] = i
        keep = {r.id for r in self.outputs if r is not None}
        free = {}
        for nid, i in last.items():
            if nid not in keep:
                free.setdefault(i, []).append(nid)
        return free

    def run(self, arrays):
        env = dict(zip(self.inputs, arrays))
        by_id = self.graph.by_id
        for i, step in enumerate(self.steps):
            if isinstance(step, Kernel):
                ins = [_as_rank(env[r.id], len(step.shape)) for r in step.inputs]
                outs = []
                for shape, dtype, nid in self.alloc[i]:
                    out = np.empty(shape, dtype=dtype)
                    env[nid] = out
                    outs.append(out.reshape(shape or (1,)))
                self.kernels[i](*ins, *outs)
            else:
                node = step.node
                spec = REGISTRY[node.op]
                args = [env[a.id] if isinstance(a, Ref) else a for a in node.args]
                out = spec.forward(*args, **node.attr_dict)
                env[node.id] = np.asarray(out, dtype=by_id[node.id].dtype)
            for nid in self.free_after.get(i, ()):
                env.pop(nid, None)
        return [None if r is None else env[r.id] for r in self.outputs]


def _as_rank(array, rank):
    rank = max(rank, 1)
    if array.ndim == rank:
        return array
    return array.reshape((1,) * (rank - array.ndim) + array.shape)


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
