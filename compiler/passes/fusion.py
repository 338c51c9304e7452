"""Fusion: group nodes over one iteration space into kernels; the rest run as extern steps.

A kernel's iteration space S splits into outer dims and, when it holds row reductions, the set
R of dims they reduce (any dims: the loop nest puts R innermost). It takes elementwise nodes (inputs may broadcast into S), reshapes and expands of its
own values (free aliases), row reductions over exactly R (sum, mean, amax, amin, sum_to_size),
and total reductions of any of its values (accumulated per block of outer iterations, then
finished by a small extern step). A softmax or layer-norm row is therefore one kernel, and a
pairwise (N, N, 3) broadcast summed over its last dims never materialises. Matmul and other
movement ops stay extern (NumPy / BLAS).
"""
from dataclasses import dataclass, field

import numpy as np

from jitgrad.ops import REGISTRY

from ..ir import Ref

ROW_REDUCTIONS = {"sum", "mean", "amax", "amin", "sum_to_size"}
# Sums over outer dim 0 (a bias or layer-norm gain's gradient, the j-sum of pair forces) are
# accumulated per block into a partial array that a Finish step adds up: kernels with them run
# in at most this many blocks, so the partials stay small.
COLUMN_BLOCKS = 16
# A reduced dim that is not innermost is fused only if the kept dims inside it hold at most this
# many elements (the (N, N, 3) pairwise sum over j: 3), so its loop stays cache-friendly.
MAX_INNER_STRIDE = 16


@dataclass
class Kernel:
    name: str
    space: tuple                                   # S
    reduced: frozenset = frozenset()               # R: the dims row reductions reduce
    nodes: list = field(default_factory=list)      # members in graph order
    vary: dict = field(default_factory=dict)       # node id -> frozenset of dims it varies on
    aliases: dict = field(default_factory=dict)    # node id -> id of the value it aliases
    place: dict = field(default_factory=dict)      # node id -> space dims of its tensor's dims
    row: dict = field(default_factory=dict)        # reduction id -> reduced dims (== R)
    total: dict = field(default_factory=dict)     # reduction id -> True (all dims reduced)
    column: dict = field(default_factory=dict)     # sum over outer dim 0 -> True (per block)
    inputs: list = field(default_factory=list)     # Refs read from outside
    outputs: list = field(default_factory=list)    # Refs materialised (not totals)
    totals: list = field(default_factory=list)     # Refs of total reductions (finished outside)
    columns: list = field(default_factory=list)    # Refs of column sums (finished outside)
    block: int = 1                                 # outer dim 0 iterations per block
    refused: list = field(default_factory=list)    # (node id, reason) for explain


@dataclass
class Extern:
    node: object


@dataclass
class Finish:
    """Combine a kernel's per-block partials of a total reduction into the node's value."""
    node: object
    kernel: str


def _padded(shape, rank):
    return (1,) * (rank - len(shape)) + tuple(shape)


def _broadcasts_into(shape, space):
    if len(shape) > len(space):
        return False
    return all(s == 1 or s == f for s, f in zip(_padded(shape, len(space)), space))


def _vary_of_shape(shape, space):
    padded = _padded(shape, len(space))
    return frozenset(d for d, (s, f) in enumerate(zip(padded, space)) if s != 1 and f != 1)


def _reduced_dims(node, input_shape):
    """The dims of the input a reduction node reduces, or None if it is not a reduction."""
    if node.op == "sum_to_size":
        target = _padded(node.attr("shape"), len(input_shape))
        return frozenset(d for d, (s, t) in enumerate(zip(input_shape, target))
                         if t == 1 and s != 1)
    dims = node.attr("dim")
    if dims is None:
        return frozenset(d for d, s in enumerate(input_shape) if s != 1)
    return frozenset(d for d in dims if input_shape[d] != 1)


def _positions(shape, space):
    """The space dims a tensor of `shape` occupies when it broadcasts into the space (right-
    aligned), for its non-unit dims in order. A value a kernel computes may sit elsewhere: a
    reduction without keepdim drops dims, so sum over dim 1 of (3, 3, 3) is a (3, 3) tensor on
    space dims (0, 2), which broadcasting would read as (1, 2)."""
    padded = _padded(shape, len(space))
    return tuple(d for d, (s, f) in enumerate(zip(padded, space)) if s != 1 and f != 1)


def _only_unit_dims_change(before, after):
    return [s for s in before if s != 1] == [s for s in after if s != 1]


class _Builder:
    """The open kernel while fusion walks the graph."""

    def __init__(self, name, space):
        self.kernel = Kernel(name=name, space=tuple(space))
        self.r_dims = None

    def member(self, ref_id):
        return ref_id in self.kernel.vary

    def outside(self, ref_id):
        """Whether a member is only finished after the kernel (a total or a column sum)."""
        k = self.kernel
        root = k.aliases.get(ref_id, ref_id)
        return root in k.total or root in k.column

    def aligned(self, ref_id, by_id):
        """Whether a member's tensor sits where broadcasting its shape would read it."""
        k = self.kernel
        return k.place[ref_id] == _positions(by_id[ref_id].shape, k.space)

    def vary_of(self, arg, by_id):
        if self.member(arg.id):
            if not self.aligned(arg.id, by_id) or self.outside(arg.id):
                return None
            return self.kernel.vary[arg.id]
        shape = by_id[arg.id].shape
        if not _broadcasts_into(shape, self.kernel.space):
            return None
        return _vary_of_shape(shape, self.kernel.space)

    def try_add(self, node, by_id):
        """Add `node` if it fits; return None, or the reason it does not."""
        k = self.kernel
        refs = node.refs()
        spec = REGISTRY.get(node.op)
        if node.op in ("reshape", "expand"):
            src = refs[0]
            if not self.member(src.id):
                if node.op == "expand" and _broadcasts_into(node.shape, k.space) and \
                        _broadcasts_into(by_id[src.id].shape, k.space):
                    # Read the source itself, broadcast: a stride-0 expanded array would stop
                    # the loop from vectorising (and cost a NumPy view per call).
                    k.vary[node.id] = _vary_of_shape(by_id[src.id].shape, k.space)
                    k.place[node.id] = _positions(node.shape, k.space)
                    k.aliases[node.id] = src.id
                    k.nodes.append(node)
                    return None
                return "a view of a value from outside the kernel"
            if self.outside(src.id):
                return "uses a total reduction inside its own kernel"
            if node.op == "reshape" and not _only_unit_dims_change(by_id[src.id].shape,
                                                                   node.shape):
                return "a reshape that moves data between dims"
            if not _broadcasts_into(node.shape, k.space):
                return f"a {node.op} beyond the kernel's iteration space"
            if node.op == "expand" and not self.aligned(src.id, by_id):
                return "an expand of a reduction whose dims are not where it broadcasts"
            # reshape keeps the source's non-unit dims in order; expand right-aligns them
            k.place[node.id] = k.place[src.id] if node.op == "reshape" else \
                _positions(node.shape, k.space)
            k.vary[node.id] = k.vary[src.id]
            k.aliases[node.id] = k.aliases.get(src.id, src.id)
            k.nodes.append(node)
            return None
        if node.op in ROW_REDUCTIONS:
            src = refs[0]
            source_shape = by_id[src.id].shape
            if tuple(source_shape) != k.space:
                return f"reduces a value of shape {list(source_shape)}, not the kernel's " \
                       f"{list(k.space)}"
            vary = self.vary_of(src, by_id)
            if vary is None:
                return "its input does not broadcast into the kernel"
            dims = _reduced_dims(node, source_shape)
            all_dims = frozenset(d for d, s in enumerate(k.space) if s != 1)
            if dims == all_dims:
                k.total[node.id] = True
                k.vary[node.id] = frozenset()
                k.place[node.id] = ()
                k.nodes.append(node)
                return None
            if not dims:
                return "reduces no dim of the kernel's space"
            if dims == {0} and node.op in ("sum", "sum_to_size") and \
                    0 not in (self.r_dims or ()):
                k.column[node.id] = True
                k.vary[node.id] = vary - dims
                k.place[node.id] = tuple(d for d in sorted(all_dims) if d != 0)
                k.nodes.append(node)
                return None
            inside = int(np.prod([f for d, f in enumerate(k.space) if d > max(dims)
                                  and d not in dims]))
            if inside > MAX_INNER_STRIDE:
                # The reduced loop would stride over `inside` kept elements per step: cache-
                # hostile (NumPy's reduction along a leading axis is faster).
                return f"a strided reduction (kept inner dims of {inside} elements)"
            if self.r_dims is None:
                if any(m.id in k.total for m in k.nodes):
                    return "a row reduction after a total reduction"
                if 0 in dims and k.column:
                    return "reduces the dim the kernel's column sums run over"
                self.r_dims = dims
                k.reduced = dims
            elif dims != self.r_dims:
                return "reduces other dims than the kernel's earlier reductions"
            k.row[node.id] = dims
            k.vary[node.id] = vary - dims
            k.place[node.id] = tuple(d for d in sorted(all_dims) if d not in dims)
            k.nodes.append(node)
            return None
        if spec is None or spec.kind != "elementwise" or spec.template is None:
            return f"'{node.op}' is not elementwise"
        if not _broadcasts_into(node.shape, k.space):
            return f"shape {list(node.shape)} is outside the kernel's {list(k.space)}"
        vary = frozenset()
        for r in refs:
            v = self.vary_of(r, by_id)
            if v is None:
                return "an input does not broadcast into the kernel"
            if self.member(r.id) and self.outside(r.id):
                return "uses a total reduction inside its own kernel"
            vary |= v
        k.vary[node.id] = vary
        k.place[node.id] = _positions(node.shape, k.space)
        k.nodes.append(node)
        return None


def _can_start(node, by_id):
    spec = REGISTRY.get(node.op)
    if spec is not None and spec.kind == "elementwise" and spec.template is not None:
        return tuple(node.shape)
    if node.op in ROW_REDUCTIONS and node.refs():
        return tuple(by_id[node.refs()[0].id].shape)
    return None


def fuse(graph, provided, outputs, prefix="k"):
    """Steps (Kernels, Finishes and Externs) computing `outputs` from `provided` values.

    Nodes are taken greedily in graph order. A fusable elementwise or view node that does not
    fit the open kernel waits until its first user is placed (then, with any other waiting
    producers of that user, in graph order): a value the backward recomputes, or a broadcast
    view of one, would otherwise start a kernel of its own early and be written out and read
    back (W5's (N, N, 3) pair differences)."""
    by_id = graph.by_id
    users = graph.users()
    wanted = {r.id for r in outputs if r is not None}
    steps = []
    builder = None
    refusals = []
    waiting = {}
    position = {n.id: i for i, n in enumerate(graph.nodes)}
    count = 0

    def close():
        nonlocal builder
        if builder is not None and builder.kernel.nodes:
            steps.append(builder.kernel)
        builder = None

    def place(node, may_wait):
        nonlocal builder, count
        if builder is not None:
            reason = builder.try_add(node, by_id)
            if reason is None:
                return
            if may_wait and _sinkable(node) and users.get(node.id) and node.id not in wanted:
                waiting[node.id] = node
                return
            if any(builder.member(r.id) for r in node.refs()):
                refusals.append((node.id, builder.kernel.name, reason))
                close()
        elif may_wait and _sinkable(node) and users.get(node.id) and node.id not in wanted:
            waiting[node.id] = node
            return
        space = _can_start(node, by_id)
        if space is not None:
            close()
            builder = _Builder(f"{prefix}{count}", space)
            count += 1
            if builder.try_add(node, by_id) is None:
                return
            builder = None
        steps.append(Extern(node))

    def waiting_producers(node, found):
        for r in node.refs():
            if r.id in waiting and r.id not in found:
                found[r.id] = waiting[r.id]
                waiting_producers(waiting[r.id], found)
        return found

    for node in graph.nodes:
        if node.id in provided or node.op == "input":
            continue
        for producer in sorted(waiting_producers(node, {}).values(),
                               key=lambda n: position[n.id]):
            del waiting[producer.id]
            place(producer, may_wait=False)
        place(node, may_wait=True)
    for node in sorted(waiting.values(), key=lambda n: position[n.id]):
        place(node, may_wait=False)   # only if every user of a waiting node was dropped
    close()
    return _finish_steps(steps, users, outputs, by_id, refusals)


def _sinkable(node):
    spec = REGISTRY.get(node.op)
    return node.op in ("reshape", "expand") or (
        spec is not None and spec.kind == "elementwise" and spec.template is not None)


def _finish_steps(steps, users, outputs, by_id, refusals):
    wanted = {r.id for r in outputs if r is not None}
    result = []
    for step in steps:
        if not isinstance(step, Kernel):
            result.append(step)
            continue
        ids = {n.id for n in step.nodes}
        seen = set()
        for n in step.nodes:
            for r in n.refs():
                if r.id not in ids and r.id not in seen:
                    seen.add(r.id)
                    step.inputs.append(r)
        for n in step.nodes:
            escapes = n.id in wanted or any(u not in ids for u in users.get(n.id, ()))
            if not escapes:
                continue
            if n.id in step.total:
                step.totals.append(Ref(n.id))
            elif n.id in step.column:
                step.columns.append(Ref(n.id))
            else:
                step.outputs.append(Ref(n.id))
        outer = [s for d, s in enumerate(step.space) if d not in step.reduced]
        inner = int(np.prod(outer[1:])) if len(outer) > 1 else 1
        row = int(np.prod([step.space[d] for d in step.reduced])) if step.reduced else 1
        # Blocks of about 4096 elements along outer dim 0: the unit of parallel work, a
        # vectorisable inner loop, and one partial per total reduction.
        step.block = max(1, 4096 // max(1, inner * row))
        if step.columns:
            step.block = max(step.block, -(-step.space[0] // COLUMN_BLOCKS))
        step.refused = [(nid, reason) for nid, name, reason in refusals if name == step.name]
        result.append(step)
        for ref in step.totals + step.columns:
            result.append(Finish(by_id[ref.id], step.name))
    return result


def split_columns(steps, graph):
    """The steps with each kernel's column sums taken out as extern reductions of stored
    values (for a backend whose kernels do not accumulate per-block partial arrays)."""
    from dataclasses import replace
    by_id = graph.by_id
    result = []
    for step in steps:
        if isinstance(step, Finish) and any(isinstance(s, Kernel) and s.name == step.kernel and
                                            Ref(step.node.id) in s.columns for s in steps):
            continue
        if not isinstance(step, Kernel) or not step.columns:
            result.append(step)
            continue
        ids = {r.id for r in step.columns}
        kernel = replace(step, nodes=[n for n in step.nodes if n.id not in ids], column={},
                         columns=[], outputs=list(step.outputs))
        for r in step.columns:
            src = by_id[r.id].refs()[0]
            if src not in kernel.outputs and src not in kernel.inputs:
                kernel.outputs.append(src)
        result.append(kernel)
        result.extend(Extern(by_id[r.id]) for r in step.columns)
    return result
