"""Dead code: keep only the nodes some output needs (inputs are always kept)."""


def dead_code(graph):
    live = graph.upstream(r.id for r in graph.outputs if r is not None)
    return graph.with_nodes([n for n in graph.nodes if n.id in live or n.op == "input"])
