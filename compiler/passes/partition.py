"""Partition the joint graph into forward and backward graphs.

The forward graph computes the user's outputs and also outputs the saved values: the forward
values the backward graph reads. Every saved value is kept (none recomputed yet), which is
always correct; a byte-weighted min-cut that recomputes cheap elementwise values instead is the
planned refinement.
"""
from ..ir import Graph, Ref


def partition(graph, n_forward_outputs):
    by_id = graph.by_id
    forward_ids = {n.id for n in graph.nodes if n.role == "forward"}
    backward_nodes = [n for n in graph.nodes if n.role == "backward"]
    saved = []
    for node in backward_nodes:
        for r in node.refs():
            if r.id in forward_ids and r.id not in saved:
                saved.append(r.id)
    for r in graph.outputs[n_forward_outputs:]:
        if r is not None and r.id in forward_ids and r.id not in saved:
            saved.append(r.id)
    forward = Graph(nodes=tuple(n for n in graph.nodes if n.id in forward_ids),
                    inputs=tuple(r for r in graph.inputs if r.id in forward_ids),
                    outputs=tuple(graph.outputs[:n_forward_outputs]) + tuple(
                        Ref(i) for i in saved))
    backward_inputs = tuple(Ref(i) for i in saved) + tuple(
        Ref(n.id) for n in backward_nodes if n.op == "input")
    backward = Graph(nodes=tuple(by_id[i] for i in saved) + tuple(backward_nodes),
                     inputs=backward_inputs, outputs=tuple(graph.outputs[n_forward_outputs:]))
    return forward, backward, saved
