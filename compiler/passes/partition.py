"""Partition the joint graph into a forward and a backward graph, choosing by a byte-weighted
minimum cut which forward values to save and which cheap ones the backward recomputes.

This is PyTorch's `min_cut_rematerialization_partition` (torch/_functorch/partitioners.py) on
this IR. The forward graph computes the user's outputs and also outputs the saved values; the
backward graph reads the saved values (and its gradient inputs) and recomputes from them the
cheap values it needs: elementwise ops and views. Matmuls, reductions and copying movement ops
(`cat`, `index_backward`, ...) are never recomputed. Graph inputs are free to save: they exist
anyway, so the backward prefers to recompute from them.

Backward-role nodes that do not depend on a gradient input (`1 - y*y` in tanh's rule, a mask in
amax's) are "unclaimed", as in PyTorch: the cut may compute them in the forward and save them
when that saves fewer bytes (a boolean mask instead of its float operand).
"""
import math
from dataclasses import replace

from jitgrad.ops import REGISTRY

from ..ir import Graph, Ref


def recomputable(node):
    """Cheap to recompute in the backward: elementwise ops and views (reshape, expand, ...)."""
    spec = REGISTRY.get(node.op)
    if spec is None:
        return False
    return spec.kind == "elementwise" or (spec.kind == "movement" and spec.view)


def partition(graph, n_forward_outputs):
    """Return `(forward, backward, saved)`.

    `forward.outputs` is the user's outputs followed by `Ref(i) for i in saved`; `backward`'s
    inputs are the saved values, then the backward-role input nodes (gradient seeds, constants).
    """
    by_id = graph.by_id
    nodes = graph.nodes
    user_outputs = tuple(graph.outputs[:n_forward_outputs])
    grad_outputs = tuple(graph.outputs[n_forward_outputs:])
    is_source = {n.id for n in nodes if n.op == "input" and n.role == "forward"}
    backward_inputs = [n.id for n in nodes if n.op == "input" and n.role == "backward"]

    # Nodes that must run in the backward: the backward inputs and everything that reads them.
    required_bw = set(backward_inputs)
    for n in nodes:
        if n.id not in required_bw and any(r.id in required_bw for r in n.refs()):
            required_bw.add(n.id)

    saved = _min_cut(graph, grad_outputs, is_source, required_bw) if any(
        r is not None for r in grad_outputs) else set()

    # The backward: walk up from the gradients; a value on the forward side of the cut is
    # saved, anything else is computed in the backward (recomputed, if it is a forward node).
    needed_saved, in_backward = set(), set()
    stack = [r.id for r in grad_outputs if r is not None]
    while stack:
        nid = stack.pop()
        if nid in needed_saved or nid in in_backward:
            continue
        if nid in is_source or nid in saved:
            needed_saved.add(nid)
            continue
        in_backward.add(nid)
        stack.extend(r.id for r in by_id[nid].refs())
    saved_ids = [n.id for n in nodes if n.id in needed_saved]

    # The forward: what the user's outputs and the saved values need, plus every forward input.
    in_forward = set(is_source) | graph.upstream(
        [r.id for r in user_outputs if r is not None] + saved_ids)

    forward = Graph(nodes=tuple(n for n in nodes if n.id in in_forward),
                    inputs=tuple(r for r in graph.inputs if r.id in is_source),
                    outputs=user_outputs + tuple(Ref(i) for i in saved_ids),
                    meta={k: v for k, v in graph.meta.items() if not k.startswith("_")})
    in_backward.update(backward_inputs)
    # In the backward a saved value is an input node (its producer is not in that graph).
    provided = tuple(by_id[i] if by_id[i].op == "input" else
                     replace(by_id[i], op="input", args=(), attrs=(("name", f"saved{k}"),))
                     for k, i in enumerate(saved_ids))
    backward = Graph(
        nodes=provided + tuple(n for n in nodes if n.id in in_backward),
        inputs=tuple(Ref(i) for i in saved_ids) + tuple(Ref(i) for i in backward_inputs),
        outputs=grad_outputs)
    return forward, backward, saved_ids


def _min_cut(graph, grad_outputs, is_source, required_bw):
    """Ids of the values on the forward side of a minimum cut (a superset of those saved)."""
    import networkx as nx

    nodes = graph.nodes
    users = graph.users()
    # Distance (in edges) to the nearest node that must run in the backward: ties between cuts
    # of equal bytes go to values nearer the backward (fewer recomputed nodes), as in PyTorch.
    needed_by_grad = {r.id for r in grad_outputs if r is not None}
    dist = {}
    for n in reversed(nodes):
        if n.id in required_bw or n.id in needed_by_grad:
            dist[n.id] = 0 if n.id in required_bw else 1
        else:
            dist[n.id] = min((dist[u] + 1 for u in users.get(n.id, ()) if u in dist),
                             default=len(nodes))
    far = len(nodes) + 1

    def tie_break(n):
        d = min(dist[n.id], far - 1)
        # Unclaimed backward nodes move to the forward only when that saves bytes.
        return d + far if n.role == "backward" else d

    scale = 2 * far * (len(nodes) + 1)     # > the sum of all tie-breaks: bytes decide first

    # The cut: each value is an edge `in -> out` costing its bytes. Forward inputs and values
    # that may not be recomputed hang from the source (always computed in the forward); nodes
    # that read a gradient input feed the sink (always in the backward); a use is an infinite
    # edge `out -> user's in`. A value whose `in -> out` edge is cut is saved; one whose `in`
    # lies on the sink side is computed in the backward.
    flow = nx.DiGraph()
    for n in nodes:
        nid = n.id
        if nid in required_bw:
            flow.add_edge(("in", nid), "sink", capacity=math.inf)
            continue
        if nid in is_source:
            flow.add_edge("source", ("in", nid), capacity=math.inf)
            weight = 0
        else:
            if n.role == "forward" and not recomputable(n):
                flow.add_edge("source", ("in", nid), capacity=math.inf)
            weight = n.nbytes * scale + tie_break(n)
        flow.add_edge(("in", nid), ("out", nid), capacity=weight)
        for u in users.get(nid, ()):
            flow.add_edge(("out", nid), ("in", u), capacity=math.inf)
        if nid in needed_by_grad:
            flow.add_edge(("out", nid), "sink", capacity=math.inf)
    if "sink" not in flow or "source" not in flow:
        return set()
    _, (reachable, _) = nx.minimum_cut(flow, "source", "sink")
    return {key[1] for key in reachable if isinstance(key, tuple) and key[0] == "in"}
