"""The compiler's IR: a frozen graph of op applications in SSA form."""
from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class Ref:
    """A reference to the value produced by node `id`."""
    id: int

    def __repr__(self):
        return f"%{self.id}"


@dataclass(frozen=True)
class Node:
    """One value: an op applied to args (Refs and Python constants), or a graph input.

    `op` is a registry op name, or "input" (with `attrs["name"]`). `where` is the user's
    file:line; `role` is "forward" or "backward" (joint graph).
    """
    id: int
    op: str
    args: tuple
    attrs: tuple            # sorted (key, value) pairs
    shape: tuple
    dtype: np.dtype
    where: str = ""
    role: str = "forward"

    def attr(self, key, default=None):
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    @property
    def attr_dict(self):
        return dict(self.attrs)

    def refs(self):
        return [a for a in self.args if isinstance(a, Ref)]

    @property
    def nbytes(self):
        n = 1
        for s in self.shape:
            n *= s
        return n * self.dtype.itemsize


@dataclass(frozen=True)
class Graph:
    """Nodes in topological order; `inputs` and `outputs` are Refs (outputs may hold None)."""
    nodes: tuple
    inputs: tuple
    outputs: tuple
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def node(self, ref):
        return self.by_id[ref.id]

    @property
    def by_id(self):
        cached = self.meta.get("_by_id")
        if cached is None:
            cached = {n.id: n for n in self.nodes}
            self.meta["_by_id"] = cached
        return cached

    def upstream(self, ids):
        """The given node ids and every node they read, transitively."""
        by_id = self.by_id
        seen = set()
        stack = list(ids)
        while stack:
            nid = stack.pop()
            if nid in seen:
                continue
            seen.add(nid)
            stack.extend(r.id for r in by_id[nid].refs())
        return seen

    def users(self):
        """For each node id, the ids of the nodes that use it."""
        users = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for r in n.refs():
                users.setdefault(r.id, []).append(n.id)
        return users

    def with_nodes(self, nodes, outputs=None):
        return replace(self, nodes=tuple(nodes),
                       outputs=self.outputs if outputs is None else tuple(outputs),
                       meta={k: v for k, v in self.meta.items() if not k.startswith("_")})


def format_value(node):
    """`f32[64,32]`: the dtype's short name and the shape."""
    short = {"float32": "f32", "float64": "f64", "float16": "f16", "int64": "i64",
             "int32": "i32", "bool": "b8"}.get(node.dtype.name, node.dtype.name)
    return f"{short}[{','.join(str(s) for s in node.shape)}]"


def format_arg(arg):
    if isinstance(arg, Ref):
        return repr(arg)
    return repr(arg)


def format_graph(graph, annotate=None):
    """Readable code, one line per node: `%3: f32[64,32] = mul(%1, %2)   # model.py:14`."""
    lines = []
    for n in graph.nodes:
        if n.op == "input":
            rhs = f"input({n.attr('name')!r})"
        else:
            args = ", ".join(format_arg(a) for a in n.args)
            shown = [(k, v) for k, v in n.attrs if k != "key"]
            attrs = "".join(f", {k}={v!r}" for k, v in shown)
            rhs = f"{n.op}({args}{attrs})"
        note = annotate(n) if annotate else ""
        comment = "   # " + "  ".join(x for x in (note, n.where) if x) if (note or n.where) else ""
        lines.append(f"%{n.id}: {format_value(n)} = {rhs}{comment}")
    outs = ", ".join("None" if o is None else repr(o) for o in graph.outputs)
    lines.append(f"return ({outs})")
    return "\n".join(lines)
