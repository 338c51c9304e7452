"""explain: a plain-language report of what the compiler did with a function; compare: run it
eagerly and compiled, and name the first graph node whose value diverges."""
import time

import numpy as np

from jitgrad.tensor import Tensor

from .capture import flatten
from .dump import _kib
from .ir import Ref, format_value
from .passes.fusion import Finish, Kernel

TOLERANCES = {"float16": (1e-2, 1e-3), "float32": (1e-4, 1e-5), "float64": (1e-9, 1e-12)}


def _as_compiled(fn):
    from . import CompiledFunction, compile
    return fn if isinstance(fn, CompiledFunction) else compile(fn)


def _kernel_lines(program, graph, title):
    lines = [f"{title}: {sum(isinstance(s, Kernel) for s in program.steps)} kernel(s), "
             f"{sum(not isinstance(s, (Kernel, Finish)) for s in program.steps)} extern step(s)"]
    by_id = graph.by_id
    for step in program.steps:
        if isinstance(step, Kernel):
            ops = [n.op for n in step.nodes if n.id not in step.aliases]
            reads = sum(by_id[r.id].nbytes for r in step.inputs)
            writes = sum(by_id[r.id].nbytes for r in step.outputs)
            shape = "x".join(map(str, step.space)) or "scalar"
            reduced = [step.space[d] for d in sorted(step.reduced)]
            layout = (f"rows of {'x'.join(map(str, reduced))} reduced (dims "
                      f"{', '.join(map(str, sorted(step.reduced)))})") if reduced else "elementwise"
            lines.append(f"  kernel {step.name}: space {shape} ({layout}), {len(ops)} ops "
                         f"[{', '.join(ops[:12])}{', ...' if len(ops) > 12 else ''}], "
                         f"reads {_kib(reads)}, writes {_kib(writes)}")
            for nid, reason in step.refused:
                node = by_id[nid]
                lines.append(f"    not fused: %{nid} {node.op} {format_value(node)} -- {reason}"
                             f"   {node.where}")
        elif isinstance(step, Finish):
            lines.append(f"  finish {step.node.op} %{step.node.id} from {step.kernel}'s "
                         "per-block partials")
        else:
            node = step.node
            why = "NumPy/BLAS" if node.op == "matmul" else "not fusible here"
            lines.append(f"  extern {node.op} %{node.id} {format_value(node)} ({why})"
                         f"   {node.where}")
    return lines


def _refusals(program, graph):
    out = []
    for step in program.steps:
        if isinstance(step, Kernel):
            for nid, reason in step.refused:
                out.append((nid, step.name, reason, graph.by_id[nid].where))
    return out


class Explanation:
    """The report `jitgrad.explain` returns; `str()` gives the text, attributes the data."""

    def __init__(self, lines, events, refusals, variant):
        self.lines = lines
        self.events = events
        self.refusals = refusals
        self.variant = variant

    def __str__(self):
        return "\n".join(self.lines)

    __repr__ = __str__


def explain(fn, *args, **kwargs):
    compiled = _as_compiled(fn)
    before = len(compiled.events)
    start = time.perf_counter()
    compiled(*args, **kwargs)
    elapsed = time.perf_counter() - start
    events = compiled.events[before:] or compiled.events[-1:]
    name = getattr(compiled, "__name__", "function")
    lines = [f"jitgrad.explain({name}): call took {elapsed:.3f} s"]
    for kind, text in events:
        if kind == "graph break":
            lines.append(f"graph break, runs eagerly: {text}")
        elif kind == "fallback":
            lines.append(f"falls back to eager: {text}")
        elif kind == "recompile":
            lines.append(f"recompiled: {text}")
        else:
            lines.append(f"compiled: {text}")
    inputs = flatten((args, kwargs))
    from .compiled_function import _signature
    variant = compiled.variants.get(_signature(args, kwargs, inputs))
    refusals = []
    if variant is not None:
        lines += _kernel_lines(variant.forward, variant.forward_graph, "forward")
        refusals += _refusals(variant.forward, variant.forward_graph)
        if variant.backward is not None:
            lines += _kernel_lines(variant.backward, variant.backward_graph, "backward")
            refusals += _refusals(variant.backward, variant.backward_graph)
        by_id = variant.joint.by_id
        saved = [by_id[i] for i in variant.saved]
        total = sum(n.nbytes for n in saved if n.op != "input")
        lines.append(f"saved for backward: {len(saved)} value(s), {_kib(total)} beyond the "
                     "inputs")
        from jitgrad.ops import REGISTRY
        for n in saved:
            kind = REGISTRY[n.op].kind if n.op in REGISTRY else "input"
            why = ("an input, kept by reference (no copy)" if n.op == "input" else
                   f"a {kind} op: never recomputed" if kind in ("reduction", "extern") else
                   "the min-cut found keeping it cheaper than recomputing it")
            lines.append(f"  %{n.id} {n.op} {format_value(n)} {_kib(n.nbytes)} -- {why}"
                         f"   {n.where}")
        recomputed = [n for n in variant.backward_graph.nodes
                      if n.role == "forward" and n.id not in set(variant.saved)
                      and n.op != "input"]
        if recomputed:
            lines.append(f"recomputed in backward instead of saved: "
                         + ", ".join(f"%{n.id} {n.op}" for n in recomputed))
    breaks = [text for kind, text in compiled.events if kind == "graph break"]
    if breaks and variant is None:
        lines.append("no kernels: this call runs eagerly (see the graph break above)")
    return Explanation(lines, events, refusals, variant)


# -- compare -----------------------------------------------------------------------------------

class Comparison:
    """What `jitgrad.compare` found: `ok`, per-output differences, and the first divergent
    node (`first_divergence`: (node, max abs error) or None)."""

    def __init__(self, ok, rows, first_divergence):
        self.ok = ok
        self.rows = rows
        self.first_divergence = first_divergence

    def __str__(self):
        lines = [f"jitgrad.compare: {'match' if self.ok else 'MISMATCH'}"]
        for label, err, tol in self.rows:
            lines.append(f"  {label}: max abs error {err:.3g} (tolerance {tol:.3g})")
        if self.first_divergence is not None:
            node, err = self.first_divergence
            lines.append(f"first divergent node: %{node.id} = {node.op} {format_value(node)}"
                         f" (max abs error {err:.3g})   {node.where}")
        return "\n".join(lines)

    __repr__ = __str__


def _tolerance(dtype):
    rtol, atol = TOLERANCES.get(np.dtype(dtype).name, (1e-9, 1e-12))
    return rtol, atol


def _close(a, b, dtype):
    rtol, atol = _tolerance(dtype)
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    tol = atol + rtol * (float(np.max(np.abs(b))) if b.size else 0.0)
    return err <= tol or (np.isnan(a).all() and np.isnan(b).all()), err, tol


def _run(fn, args, kwargs, seeds):
    clones = [t.detach().clone().requires_grad_(t._requires_grad) for t in flatten((args, kwargs))]
    from .capture import rebuild
    a, k = rebuild((args, kwargs), clones)
    outputs = [o for o in flatten(fn(*a, **k))]
    diff = [o for o in outputs if o._requires_grad]
    targets = [t for t in clones if t._requires_grad]
    grads = []
    if diff and targets:
        import jitgrad
        weights = [Tensor._make(seeds(o._data.shape, o._data.dtype)) for o in diff]
        grads = jitgrad.autograd.grad(diff, targets, weights, allow_unused=True)
    return [o.detach()._data for o in outputs], [None if g is None else g._data for g in grads]


def compare(fn, *args, **kwargs):
    compiled = _as_compiled(fn)
    eager_fn = compiled.fn

    def seeds(shape, dtype):
        return np.random.default_rng(0).standard_normal(shape).astype(dtype)
    eager_out, eager_grads = _run(eager_fn, args, kwargs, seeds)
    comp_out, comp_grads = _run(compiled, args, kwargs, seeds)
    rows, ok = [], True
    for i, (a, b) in enumerate(zip(comp_out, eager_out)):
        good, err, tol = _close(a, b, b.dtype)
        ok &= good
        rows.append((f"output {i}", err, tol))
    for i, (a, b) in enumerate(zip(comp_grads, eager_grads)):
        if a is None or b is None:
            ok &= (a is None) == (b is None)
            continue
        good, err, tol = _close(a, b, b.dtype)
        ok &= good
        rows.append((f"gradient of input {i}", err, tol))
    first = None
    if not ok:
        first = _first_divergence(compiled, args, kwargs, seeds)
    return Comparison(ok, rows, first)


def _first_divergence(compiled, args, kwargs, seeds):
    """Run the joint graph fused with every value materialised, and eagerly node by node;
    return the first node (in graph order) whose values differ."""
    from .compiled_function import _signature
    from .executor import Program, interpret
    from .cache import load_module
    from .codegen import numba_cpu
    from . import passes
    inputs = flatten((args, kwargs))
    variant = compiled.variants.get(_signature(args, kwargs, inputs))
    if variant is None:
        return None
    joint = variant.joint
    input_nodes = [n for n in joint.nodes if n.op == "input"]
    env, arrays = {}, []
    lifted = iter(variant.lifted)
    args_iter = iter(inputs)
    diff_outputs = [joint.outputs[i] for i in variant.diff_outputs]
    for n in input_nodes:
        name = n.attr("name")
        if name.startswith("arg"):
            t = next(args_iter)._data
        elif name.startswith("lifted"):
            t = next(lifted)._data
        else:
            k = int(name[len("grad_out"):])
            t = seeds(joint.by_id[diff_outputs[k].id].shape, n.dtype)
        arrays.append(t)
        env[n.id] = Tensor._make(t)
    everything = joint.with_nodes(joint.nodes, [Ref(n.id) for n in joint.nodes
                                                if n.op != "input"])
    reference = interpret(everything, env)
    steps = passes.fuse(everything, {n.id for n in input_nodes}, everything.outputs,
                        prefix="dbg")
    rendered, index = [], []
    for i, step in enumerate(steps):
        if isinstance(step, Kernel):
            rendered.append(numba_cpu.render(step, everything))
            index.append((i, step.name))
    kernels = {}
    if rendered:
        module = load_module(numba_cpu.module_source(rendered))
        kernels = {i: getattr(module, name) for i, name in index}
    program = Program(everything, steps, [Ref(n.id) for n in input_nodes],
                      everything.outputs, kernels)
    values = program.run(arrays)
    for ref, got, want in zip(everything.outputs, values, reference):
        node = joint.by_id[ref.id]
        want = want._data if isinstance(want, Tensor) else np.asarray(want)
        if node.dtype.kind != "f":
            continue
        good, err, _ = _close(np.asarray(got, dtype=np.float64), want.astype(np.float64),
                              node.dtype)
        if not good:
            return node, err
    return None
