"""Graph dumps: text (one line per node, like code), DOT (kernels as clusters) and JSON
(networkx node-link), for eager autograd graphs and for every stage of a compiled function."""
import json
import os

import networkx as nx

from jitgrad.tensor import Tensor

from .ir import Ref, format_graph, format_value
from .passes.fusion import Finish, Kernel

STAGES = ("captured", "joint", "forward", "backward", "fused")


def _kib(nbytes):
    return f"{nbytes} B" if nbytes < 1024 else f"{nbytes / 1024:.1f} KiB" if nbytes < 1 << 20 \
        else f"{nbytes / (1 << 20):.1f} MiB"


# -- eager autograd graphs --------------------------------------------------------------------

def eager_nodes(tensor):
    """The grad_fn graph behind `tensor` as rows: (id, name, args, shape, dtype, saved, leaf)."""
    if tensor.grad_fn is None:
        raise ValueError("this tensor has no autograd graph (grad_fn is None)")
    ids, rows, order = {}, {}, []
    shapes = {id(tensor.grad_fn): (tuple(tensor._data.shape), tensor._data.dtype)}
    stack = [tensor.grad_fn]
    seen = set()
    while stack:                       # depth-first to find every node and its output shape
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        for i, (child, _) in enumerate(node.next_functions):
            if child is not None:
                meta = node.meta[i] if i < len(node.meta) else None
                if meta is not None:
                    shapes.setdefault(id(child), (tuple(meta[0]), meta[1]))
                stack.append(child)
    for node in reversed(order):       # number inputs first, like code
        if id(node) in ids:
            continue
        ids[id(node)] = len(ids)
    for node in order:
        args = []
        for child, _ in node.next_functions:
            args.append("cut" if child is None else f"%{ids[id(child)]}")
        saved = []
        for label, entry in _saved_entries(node):
            saved.append(f"{label} {entry}")
        leaf = getattr(node, "variable", None)
        shape, dtype = shapes.get(id(node), ((), None))
        rows[ids[id(node)]] = (ids[id(node)], node.name(), args, shape, dtype, saved, leaf)
    return [rows[k] for k in sorted(rows)]


def _saved_entries(node):
    saved = getattr(node, "saved", None) or ()
    for i, entry in enumerate(saved):
        if type(entry) is tuple:
            array = entry[0]._data
            yield f"input{i}", f"{_short(array)} ({_kib(array.nbytes)})"
    saved_out = getattr(node, "saved_out", None)
    if saved_out is not None:
        yield "result", f"{_short(saved_out[0])} ({_kib(saved_out[0].nbytes)})"
    if getattr(node, "_freed", False):
        yield "freed", "by an earlier backward"


def _short(array):
    short = {"float32": "f32", "float64": "f64", "int64": "i64", "bool": "b8"}
    return f"{short.get(array.dtype.name, array.dtype.name)}[{','.join(map(str, array.shape))}]"


def eager_text(tensor):
    lines = []
    for nid, name, args, shape, dtype, saved, leaf in eager_nodes(tensor):
        value = (f"{ {'float32': 'f32', 'float64': 'f64'}.get(dtype.name, dtype.name) }"
                 f"[{','.join(map(str, shape))}]") if dtype is not None else "?"
        rhs = f"leaf  (AccumulateGrad)" if leaf is not None else f"{name}({', '.join(args)})"
        notes = [f"saved {s}" for s in saved]
        if "cut" in args:
            notes.append("cut: an input without gradient (detached, .data, no_grad, constant)")
        comment = "   # " + "; ".join(notes) if notes else ""
        lines.append(f"%{nid}: {value} = {rhs}{comment}")
    lines.append(f"return %{len(lines) - 1}")
    return "\n".join(lines)


def eager_networkx(tensor):
    g = nx.DiGraph()
    for nid, name, args, shape, dtype, saved, leaf in eager_nodes(tensor):
        g.add_node(nid, op=name, shape=list(shape), dtype=None if dtype is None else dtype.name,
                   saved=saved, leaf=leaf is not None)
        for k, arg in enumerate(args):
            if arg != "cut":
                g.add_edge(int(arg[1:]), nid, index=k)
    return g


# -- compiled functions -------------------------------------------------------------------------

def stage_graph(variant, stage):
    if stage == "captured":
        graph = variant.capture.graph
        n = variant.n_outputs
        return graph.with_nodes([x for x in graph.nodes if x.role == "forward"],
                                graph.outputs[:n])
    if stage == "joint":
        return variant.joint
    if stage in ("forward", "fused"):
        return variant.forward_graph
    if stage == "backward":
        return variant.backward_graph
    raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")


def _placement(program):
    """node id -> 'kernel fwd0' / 'extern' / 'finish fwd0'."""
    where = {}
    for step in program.steps:
        if isinstance(step, Kernel):
            for n in step.nodes:
                where[n.id] = f"kernel {step.name}" + (
                    " (alias)" if n.id in step.aliases else "")
        elif isinstance(step, Finish):
            where[step.node.id] = f"finish {step.kernel}"
        else:
            where[step.node.id] = "extern"
    return where


def _annotator(variant, stage):
    joint = variant.joint
    saved = set(variant.saved)
    no_grad = joint.meta.get("no_grad", set())
    placement = {}
    if stage in ("fused", "forward"):
        placement = _placement(variant.forward)
    elif stage == "backward" and variant.backward is not None:
        placement = _placement(variant.backward)

    def annotate(node):
        notes = []
        if stage in ("fused", "forward", "backward") and node.id in placement:
            notes.append(placement[node.id])
        if stage == "backward" and node.role == "forward" and node.id not in saved:
            notes.append("recomputed")
        if node.id in saved and stage in ("forward", "fused", "backward", "joint"):
            notes.append(f"saved {_kib(node.nbytes)}")
        if stage == "joint" and node.role == "backward":
            notes.append("backward")
        if node.id in no_grad:
            notes.append("no grad (cut)")
        return "  ".join(notes)
    return annotate


def compiled_text(variant, stage):
    graph = stage_graph(variant, stage)
    text = format_graph(graph, _annotator(variant, stage))
    if stage == "fused":
        parts = [text, "", "# backward"]
        if variant.backward is not None:
            parts.append(format_graph(variant.backward_graph, _annotator(variant, "backward")))
        return "\n".join(parts)
    return text


def compiled_networkx(variant, stage):
    graph = stage_graph(variant, stage)
    annotate = _annotator(variant, stage)
    placement = _placement(variant.forward) if stage in ("forward", "fused") else (
        _placement(variant.backward) if stage == "backward" and variant.backward else {})
    g = nx.DiGraph()
    for n in graph.nodes:
        g.add_node(n.id, op=n.op, shape=list(n.shape), dtype=n.dtype.name, where=n.where,
                   role=n.role, note=annotate(n),
                   kernel=placement.get(n.id, "").replace("kernel ", "").split(" ")[0]
                   if placement.get(n.id, "").startswith("kernel") else None)
        for k, arg in enumerate(n.args):
            if isinstance(arg, Ref):
                g.add_edge(arg.id, n.id, index=k)
    return g


def to_dot(g, title):
    """DOT text; nodes with a `kernel` attribute are grouped into one cluster per kernel."""
    lines = [f'digraph "{title}" {{', "  rankdir=TB;", '  node [shape=box, fontname="monospace"];']
    clusters = {}
    for nid, data in g.nodes(data=True):
        label = f"%{nid}: {data.get('op')} {data.get('dtype') or ''}{data.get('shape')}"
        if data.get("note"):
            label += "\\n" + str(data["note"]).replace('"', "'")
        line = f'  n{nid} [label="{label}"];'
        kernel = data.get("kernel")
        if kernel:
            clusters.setdefault(kernel, []).append(line)
        else:
            lines.append(line)
    for kernel, members in clusters.items():
        lines.append(f'  subgraph "cluster_{kernel}" {{')
        lines.append(f'    label="kernel {kernel}"; style=rounded; color=blue;')
        lines.extend("  " + m for m in members)
        lines.append("  }")
    for a, b in g.edges():
        lines.append(f"  n{a} -> n{b};")
    lines.append("}")
    return "\n".join(lines)


def to_json(g):
    data = nx.node_link_data(g, edges="links")
    return json.dumps(data, indent=1, sort_keys=True, default=str)


def dump(obj, format="text", stage=None):
    """Text, DOT or JSON of an eager graph (a tensor) or a compiled function's stage."""
    from .compiled_function import CompiledFunction
    if format not in ("text", "dot", "json"):
        raise ValueError(f"format must be 'text', 'dot' or 'json', not {format!r}")
    if isinstance(obj, Tensor):
        if stage is not None:
            raise ValueError("stages belong to compiled functions; a tensor has one graph")
        if format == "text":
            return eager_text(obj)
        g = eager_networkx(obj)
        return to_dot(g, "autograd graph") if format == "dot" else to_json(g)
    if isinstance(obj, CompiledFunction):
        if not obj.variants:
            raise RuntimeError(f"{obj.__name__} has not been compiled yet: call it once first")
        variant = next(reversed(obj.variants.values()))
        stage = stage or "fused"
        if format == "text":
            return compiled_text(variant, stage)
        g = compiled_networkx(variant, stage)
        return to_dot(g, f"{obj.__name__} {stage}") if format == "dot" else to_json(g)
    raise TypeError(f"jitgrad.dump takes a Tensor or a compiled function, not "
                    f"{type(obj).__name__}")


def write_stages(variant, name, directory):
    """JITGRAD_DUMP: one file per stage plus the generated kernel source."""
    os.makedirs(directory, exist_ok=True)
    stem = os.path.join(directory, f"{name}_{len(os.listdir(directory)) // 7:03d}")
    for stage in STAGES:
        with open(f"{stem}_{stage}.txt", "w") as handle:
            handle.write(compiled_text(variant, stage) + "\n")
    with open(f"{stem}_output_code.py", "w") as handle:
        handle.write("\n\n".join(variant.kernel_sources) + "\n")
    with open(f"{stem}_graph.json", "w") as handle:
        handle.write(to_json(compiled_networkx(variant, "fused")) + "\n")
    return stem


__all__ = ["dump", "write_stages", "STAGES", "format_value"]
