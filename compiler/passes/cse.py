"""Common subexpressions: nodes with the same op, arguments and attributes become one."""
from dataclasses import replace

from ..ir import Ref


def _key(node):
    try:
        key = (node.op, node.args, node.attrs)
        hash(key)
        return key
    except TypeError:  # unhashable attributes (index arrays): never merged
        return None


def cse(graph):
    seen = {}
    rename = {}
    nodes = []
    for node in graph.nodes:
        args = tuple(Ref(rename.get(a.id, a.id)) if isinstance(a, Ref) else a
                     for a in node.args)
        node = replace(node, args=args) if args != node.args else node
        key = _key(node) if node.op != "input" else None
        if key is not None and key in seen:
            rename[node.id] = seen[key]
            continue
        if key is not None:
            seen[key] = node.id
        nodes.append(node)
    outputs = [None if r is None else Ref(rename.get(r.id, r.id)) for r in graph.outputs]
    return graph.with_nodes(nodes, outputs)
