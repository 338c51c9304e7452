"""Dead code: keep only the nodes some output needs (inputs are always kept)."""


def dead_code(graph):
    by_id = graph.by_id
    live = set()
    stack = [r.id for r in graph.outputs if r is not None]
    while stack:
        nid = stack.pop()
        if nid in live:
            continue
        live.add(nid)
        stack.extend(r.id for r in by_id[nid].refs())
    return graph.with_nodes([n for n in graph.nodes if n.id in live or n.op == "input"])
