"""Fusion: group elementwise nodes over one iteration space into kernels; everything else
(reductions, movement, matmul) runs as an extern step through the op's NumPy forward.

A group grows along the graph's order while nodes are elementwise with the group's shape; an
extern node that reads a value of the open group closes it. Inputs of a group may broadcast
into its iteration space. Values used outside their group are materialised.
"""
from dataclasses import dataclass, field

from jitgrad.ops import REGISTRY

from ..ir import Ref


@dataclass
class Kernel:
    name: str
    nodes: list                       # IR nodes in order
    shape: tuple
    inputs: list = field(default_factory=list)    # Refs read from outside the group
    outputs: list = field(default_factory=list)   # Refs materialised by the group


@dataclass
class Extern:
    node: object


def fusible(node):
    spec = REGISTRY.get(node.op)
    return (spec is not None and spec.kind == "elementwise" and spec.template is not None
            and node.dtype.kind in "fiub")


def fuse(graph, provided, outputs, prefix="k"):
    """Steps (Kernels and Externs) computing `outputs` from the `provided` values."""
    users = graph.users()
    steps = []
    group = None
    group_ids = set()

    def close():
        nonlocal group, group_ids
        if group is not None:
            steps.append(group)
        group, group_ids = None, set()

    for node in graph.nodes:
        if node.id in provided or node.op == "input":
            continue
        if fusible(node):
            if group is not None and tuple(node.shape) != group.shape:
                close()
            if group is None:
                group = Kernel(name=f"{prefix}{sum(isinstance(s, Kernel) for s in steps)}",
                               nodes=[], shape=tuple(node.shape))
            group.nodes.append(node)
            group_ids.add(node.id)
        else:
            if group is not None and any(r.id in group_ids for r in node.refs()):
                close()
            steps.append(Extern(node))
    close()
    wanted = {r.id for r in outputs if r is not None}
    for step in steps:
        if not isinstance(step, Kernel):
            continue
        ids = {n.id for n in step.nodes}
        seen = set()
        for n in step.nodes:
            for r in n.refs():
                if r.id not in ids and r.id not in seen:
                    seen.add(r.id)
                    step.inputs.append(r)
            if n.id in wanted or any(u not in ids for u in users[n.id]):
                step.outputs.append(Ref(n.id))
    return steps
