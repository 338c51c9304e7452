"""The Numba CPU backend: render a fused kernel as a loop nest over its iteration space.

Layout of a kernel (see passes.fusion): a `prange` over blocks of its first outer (kept) dim,
loops over the other outer dims, then one pass over the reduced dims per round of row
reductions. Values that
vary along the suffix are computed inside a pass (and recomputed in a later pass that needs
them: cheap arithmetic instead of memory traffic); values constant along it are computed once
per row. Loop bounds and the block size are arguments, so the source does not depend on sizes.
Each kernel carries, as comments, the graph lines it implements with the user's file:line.
"""
import numpy as np

from jitgrad.ops import REGISTRY

from ..ir import Ref, format_value
from . import vecmath

PARALLEL_THRESHOLD = 1 << 16   # elements; below it threading costs more than it saves
VECTOR_MATH_THRESHOLD = 1 << 12  # elements; below it libm calls are as fast and compile faster

# Templates whose scalar function has another name in codegen.scalar.
_RENAME = {"max({0}, {1})": "fmax({0}, {1})", "min({0}, {1})": "fmin({0}, {1})",
           "pow({0}, {1})": "power({0}, {1})"}
# A libm call stops the whole fused loop from vectorising, so every function that codegen.vecmath
# has goes through it (its sin/cos lose to NumPy alone, but win inside a fused loop).
_VECTOR_MATH = {"exp", "log", "log1p", "expm1", "sin", "cos", "tanh", "sigmoid", "erf"}
# Inner values worth keeping in a row buffer when a later pass needs them again, rather than
# recomputing them (a softmax's exp in its sum pass and its normalising pass).
_EXPENSIVE = _VECTOR_MATH | {"pow", "sqrt", "rsqrt"}
_ACCUMULATE = {"sum": "{acc} += {v}", "sum_to_size": "{acc} += {v}", "mean": "{acc} += {v}",
               "amax": "{acc} = fmax({acc}, {v})", "amin": "{acc} = fmin({acc}, {v})"}


def reduce_identity(op, dtype):
    """The fold's starting value, as a NumPy scalar of the output dtype."""
    dtype = np.dtype(dtype)
    if op in ("sum", "sum_to_size", "mean"):
        return dtype.type(0)
    if op == "prod":
        return dtype.type(1)
    if dtype.kind == "f":
        return dtype.type(-np.inf if op == "amax" else np.inf)
    if dtype.kind == "b":
        return dtype.type(op != "amax")
    info = np.iinfo(dtype)
    return dtype.type(info.min if op == "amax" else info.max)


def _identity(op, dtype):
    """reduce_identity as kernel source, in the accumulator's dtype (a float amax starts at
    -inf, an integer one at the dtype's least value: np.int64(-np.inf) is undefined, and
    compiled integer amax/amin came out wrong with it)."""
    dtype = np.dtype(dtype)
    value = reduce_identity(op, dtype)
    if dtype.kind == "b":
        return repr(bool(value))
    return _literal(value, dtype) if dtype.kind == "f" else f"np.{dtype.name}({int(value)})"


def _literal(value, dtype):
    if isinstance(value, bool):
        return repr(value)
    if dtype.kind == "f":
        value = float(value)
        text = "np.nan" if value != value else ("np.inf" if value == float("inf") else (
            "-np.inf" if value == float("-inf") else repr(value)))
        return f"np.{dtype.name}({text})"
    if isinstance(value, float):
        return "np.nan" if value != value else repr(value)
    return repr(value)


def _expression(node, operands, vector_math=True):
    spec = REGISTRY[node.op]
    if node.op == "clamp":
        x = operands[0]
        low, high = node.attr("min"), node.attr("max")
        if low is not None:
            x = f"clamp_min({x}, {_literal(low, node.dtype)})"
        if high is not None:
            x = f"clamp_max({x}, {_literal(high, node.dtype)})"
        return x
    if node.op == "to_dtype":
        name = "bool_" if node.dtype.kind == "b" else node.dtype.name
        return f"np.{name}({operands[0]})"
    if vector_math and node.op in _VECTOR_MATH and node.dtype.name in ("float32", "float64"):
        # Vectorisable polynomial math (no SVML in this Numba): see codegen.vecmath.
        fn = vecmath.FUNCTIONS[(node.op, node.dtype.name)]
        return f"{fn}(np.{node.dtype.name}({operands[0]}))"
    template = _RENAME.get(spec.template, spec.template)
    return template.format(*operands)


class _Renderer:
    def __init__(self, kernel, graph, dynamic=False):
        self.dynamic = dynamic
        self.k = kernel
        self.by_id = graph.by_id
        space = kernel.space or (1,)
        self.space = space
        self.rank = len(space)
        self.r_dims = set(kernel.reduced) if kernel.space else set()
        self.outer_dims = [d for d in range(self.rank) if d not in self.r_dims]
        self.members = {n.id: n for n in kernel.nodes}
        # Small kernels gain nothing from vectorised math, and its inlined polynomials make
        # large straight-line kernels slow to compile: they call libm instead.
        self.vector_math = int(np.prod(self.space)) >= VECTOR_MATH_THRESHOLD
        self.row_cache = {}   # inner value id -> the pass that computes it into a row buffer
        self.input_index = {r.id: i for i, r in enumerate(kernel.inputs)}
        self.output_index = {r.id: i for i, r in enumerate(kernel.outputs)}
        self.total_index = {r.id: i for i, r in enumerate(kernel.totals)}
        self.column_index = {r.id: i for i, r in enumerate(kernel.columns)}
        self._schedule()

    # -- analysis ---------------------------------------------------------------------------
    def root(self, vid):
        return self.k.aliases.get(vid, vid)

    def vary(self, vid):
        if vid in self.members:
            return self.k.vary[vid]
        shape = (1,) * (self.rank - len(self.by_id[vid].shape)) + tuple(self.by_id[vid].shape)
        return frozenset(d for d, (s, f) in enumerate(zip(shape, self.space))
                         if s != 1 and f != 1)

    def is_inner(self, vid):
        return bool(self.vary(vid) & self.r_dims)

    def _schedule(self):
        ready, compute_pass = {}, {}
        for n in self.k.nodes:
            deps = [ready.get(self.root(r.id), 0) for r in n.refs()]
            if n.id in self.k.aliases:
                ready[n.id] = ready.get(self.root(n.id), 0)
            elif n.id in self.k.row:
                compute_pass[n.id] = max(deps, default=0)
                ready[n.id] = compute_pass[n.id] + 1
            else:
                ready[n.id] = max(deps, default=0)
        self.ready, self.compute_pass = ready, compute_pass
        store_pass = {}
        for ref in self.k.outputs:
            if self.store_is_inner(ref.id):
                store_pass[ref.id] = ready[ref.id]
        # totals and column sums accumulate when their source is ready
        total_pass = {r.id: ready.get(self.root(self.members[r.id].refs()[0].id), 0)
                      for r in self.k.totals + self.k.columns}
        passes = [p + 1 for p in compute_pass.values()] + [p + 1 for p in store_pass.values()]
        passes += [p + 1 for rid, p in total_pass.items()
                   if self.is_inner(self.members[rid].refs()[0].id)]
        self.n_passes = max(passes, default=0) if self.r_dims else 0
        self.store_pass, self.total_pass = store_pass, total_pass

    def aligned(self, vid):
        """The shape to view a value's array with inside the kernel."""
        place = self.k.place.get(vid)
        if place is not None:   # a member: its dims sit where the kernel computed them
            return tuple(f if d in place else 1 for d, f in enumerate(self.space))
        shape = tuple(self.by_id[vid].shape)
        padded = (1,) * (self.rank - len(shape)) + shape
        if len(shape) <= self.rank and all(s == 1 or s == f for s, f in zip(padded, self.space)):
            return padded
        vary = self.vary(vid)
        return tuple(f if d in vary else 1 for d, f in enumerate(self.space))

    def store_is_inner(self, vid):
        return any(s != 1 for d, s in enumerate(self.aligned(vid)) if d in self.r_dims)

    def index(self, vid):
        shape = self.aligned(vid)
        return ", ".join("0" if s == 1 and f != 1 else (f"j{d}" if d in self.r_dims else f"i{d}")
                         for d, (s, f) in enumerate(zip(shape, self.space)))

    # -- emission ---------------------------------------------------------------------------
    def name(self, vid):
        vid = self.root(vid)
        if vid in self.members:
            return f"v{vid}"
        return f"a{self.input_index[vid]}"

    def operands(self, node):
        return [self.name(a.id) if isinstance(a, Ref) else _literal(a, node.dtype)
                for a in node.args]

    def compute(self, node):
        return f"v{node.id} = {_expression(node, self.operands(node), self.vector_math)}"

    def inner_closure(self, targets, p=0):
        """Inner member nodes (and inner loads) needed to compute `targets` in pass p; a value
        an earlier pass kept in a row buffer is a load."""
        needed, loads, stack = set(), set(), [self.root(t) for t in targets]
        while stack:
            vid = stack.pop()
            if vid in needed:
                continue
            if self.row_cache.get(vid, p) < p:
                loads.add(vid)
                continue
            if vid not in self.members:
                if self.is_inner(vid):
                    loads.add(vid)
                continue
            node = self.members[vid]
            if vid in self.k.row or not self.is_inner(vid):
                continue  # row results and outer values are scalars here already
            needed.add(vid)
            stack.extend(self.root(r.id) for r in node.refs())
        return ([n for n in self.k.nodes if n.id in needed and n.id not in self.k.aliases],
                sorted(loads))

    def render(self):
        k = self.k
        out = []
        params = [f"in_{i}" for i in range(len(k.inputs))] + \
                 [f"out_{i}" for i in range(len(k.outputs))] + \
                 [f"part_{i}" for i in range(len(k.totals))] + \
                 [f"col_{i}" for i in range(len(k.columns))] + \
                 [f"s{d}" for d in range(self.rank)] + ["block"]
        out.append(f"def {k.name}({', '.join(params)}):")
        for n in k.nodes:
            kind = " (alias)" if n.id in k.aliases else " (row reduction)" if n.id in k.row \
                else " (total reduction)" if n.id in k.total else \
                " (column sum)" if n.id in k.column else ""
            value = format_value(n)
            if self.dynamic:  # sizes stay out of the source, so every size shares the kernel
                value = value.split("[")[0] + "[" + ",".join("?" for _ in n.shape) + "]"
            out.append(f"    # %{n.id}: {value} = {n.op}{kind}   {n.where}")
        size = int(np.prod(self.space))
        loop = "prange" if size >= PARALLEL_THRESHOLD else "range"
        first = self.outer_dims[0]
        out.append(f"    n_blocks = (s{first} + block - 1) // block")
        out.append(f"    for b in {loop}(n_blocks):")
        ind = "        "
        self.plan_row_cache()
        for vid in self.row_cache:
            out.append(f"{ind}rb{vid} = np.empty(s{min(self.r_dims)}, "
                       f"dtype=np.{self.members[vid].dtype.name})")
        for rid in self.total_index:
            out.append(f"{ind}t{rid} = {self._identity(self.members[rid])}")
        out.append(f"{ind}for i{first} in range(b * block, min(s{first}, b * block + block)):")
        ind += "    "
        for d in self.outer_dims[1:]:
            out.append(f"{ind}for i{d} in range(s{d}):")
            ind += "    "
        outer_loads = [r.id for r in k.inputs if not self.is_inner(r.id)]
        for vid in outer_loads:
            out.append(f"{ind}{self.name(vid)} = in_{self.input_index[vid]}[{self.index(vid)}]")
        self.emit_stage(out, ind, 0)
        for p in range(self.n_passes):
            self.emit_pass(out, ind, p)
            self.emit_stage(out, ind, p + 1)
        for rid, i in self.total_index.items():
            out.append(f"        part_{i}[b] = t{rid}")
        return "\n".join(out) + "\n", loop == "prange"

    def _identity(self, node):
        return _identity(node.op, node.dtype)

    def stage_work(self, stage):
        """Values constant along R ready at `stage`: their computations, and the stores and
        total-reduction contributions that follow them."""
        k = self.k
        computes = [self.compute(n) for n in k.nodes
                    if not (n.id in k.aliases or n.id in k.row or n.id in k.total or
                            n.id in k.column or self.is_inner(n.id)) and
                    self.ready[n.id] == stage]
        stores = [f"out_{self.output_index[r.id]}[{self.index(r.id)}] = {self.name(r.id)}"
                  for r in k.outputs
                  if not self.store_is_inner(r.id) and self.ready[r.id] == stage]
        for rid in list(self.total_index) + list(self.column_index):
            src = self.members[rid].refs()[0].id
            if not self.is_inner(src) and self.total_pass[rid] == stage:
                stores.append(self._accumulate(self.members[rid], self._target(rid), src))
        return computes, stores

    def _target(self, rid):
        """Where a total or column sum accumulates: a per-block scalar, or this block's row of
        the column partials."""
        if rid in self.column_index:
            return f"col_{self.column_index[rid]}[b, {self.index(rid)}]"
        return f"t{rid}"

    def emit_stage(self, out, ind, stage):
        computes, stores = self.stage_work(stage)
        out.extend(f"{ind}{line}" for line in computes + stores)

    def _accumulate(self, node, acc, src):
        return _ACCUMULATE[node.op].format(acc=acc, v=self.name(src))

    def pass_work(self, p):
        """Pass p's row reductions, stores and inner totals, and the inner nodes and loads
        they need (None when the pass has nothing to do)."""
        reductions = [self.members[rid] for rid, q in self.compute_pass.items() if q == p]
        stores = [vid for vid, q in self.store_pass.items() if q == p]
        totals = [rid for rid, q in self.total_pass.items()
                  if q == p and self.is_inner(self.members[rid].refs()[0].id)]
        targets = [n.refs()[0].id for n in reductions] + stores + \
            [self.members[rid].refs()[0].id for rid in totals]
        if not targets:
            return None
        return (reductions, stores, totals) + self.inner_closure(targets, p)

    def load(self, vid):
        if vid in self.row_cache:
            return f"v{vid} = rb{vid}[j{min(self.r_dims)}]"
        return f"{self.name(vid)} = in_{self.input_index[vid]}[{self.index(vid)}]"

    def plan_row_cache(self):
        """Keep expensive inner values that two or more passes need in per-block row buffers
        (one reduced dim only)."""
        if len(self.r_dims) != 1 or self.n_passes < 2:
            return
        first = {}
        for p in range(self.n_passes):
            work = self.pass_work(p)
            for n in (work[3] if work else ()):
                if n.op in _EXPENSIVE:
                    first.setdefault(n.id, []).append(p)
        self.row_cache = {vid: passes[0] for vid, passes in first.items() if len(passes) > 1}

    def pass_body(self, inner, work):
        """The lines inside a pass's loop over R: loads, inner nodes, accumulations, stores."""
        reductions, stores, totals, nodes, loads = work
        lines = [f"{inner}{self.load(vid)}" for vid in loads]
        lines += [f"{inner}{self.compute(n)}" for n in nodes]
        lines += [f"{inner}{self._accumulate(n, f'v{n.id}', n.refs()[0].id)}"
                  for n in reductions]
        lines += [f"{inner}out_{self.output_index[vid]}[{self.index(vid)}] = {self.name(vid)}"
                  for vid in stores]
        lines += [f"{inner}{self._accumulate(self.members[rid], self._target(rid), src)}"
                  for rid in totals for src in [self.members[rid].refs()[0].id]]
        return lines

    def start_pass(self, out, ind, p):
        """Pass p's work (pass_work) with its row reductions' accumulators started, or None
        (the CPU and CUDA renderers' passes begin alike; their loops differ)."""
        work = self.pass_work(p)
        if work is not None:
            out.extend(f"{ind}v{n.id} = {self._identity(n)}" for n in work[0])
        return work

    def emit_pass(self, out, ind, p):
        work = self.start_pass(out, ind, p)
        if work is None:
            return
        reductions, nodes = work[0], work[3]
        inner = ind
        for d in sorted(self.r_dims):
            out.append(f"{inner}for j{d} in range(s{d}):")
            inner += "    "
        out.extend(self.pass_body(inner, work))
        out.extend(f"{inner}rb{n.id}[j{min(self.r_dims)}] = v{n.id}" for n in nodes
                   if self.row_cache.get(n.id) == p)
        for n in reductions:
            if n.op == "mean":
                count = " * ".join(f"s{d}" for d in sorted(self.r_dims))
                out.append(f"{ind}v{n.id} = v{n.id} / ({count})")


def render(kernel, graph, dynamic=False):
    """Python source of one kernel, and whether it runs its outer loop in parallel."""
    return _Renderer(kernel, graph, dynamic).render()


def kernel_views(kernel, graph):
    """The aligned shape each input, output and the space are viewed with at run time."""
    renderer = _Renderer(kernel, graph)
    return ([renderer.aligned(r.id) for r in kernel.inputs],
            [renderer.aligned(r.id) for r in kernel.outputs],
            renderer.space)


def column_views(kernel, graph):
    """The aligned shape of each column sum (its per-block partials add a leading dim)."""
    renderer = _Renderer(kernel, graph)
    return [renderer.aligned(r.id) for r in kernel.columns]


def module_source(kernels):
    """One importable module holding a group of kernels, each njit-compiled with cache=True."""
    header = ['"""Generated by jitgrad\'s compiler; do not edit (the file name is its hash)."""',
              "import numba", "import numpy as np", "from numba import prange",
              "from compiler.codegen import vecmath as vm  # noqa: F401",
              "from compiler.codegen.scalar import *  # noqa: F401,F403", ""]
    body = []
    for source, parallel in kernels:
        # reassoc lets LLVM vectorise reductions and contract fuse multiply-adds; no nnan/ninf,
        # so NaN and inf keep IEEE semantics.
        body.append(f"@numba.njit(cache=True, parallel={parallel}, error_model='numpy', "
                    "fastmath={'reassoc', 'contract'})")
        body.append(source)
    return "\n".join(header + body)
