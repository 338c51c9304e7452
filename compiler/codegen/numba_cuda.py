"""The Numba CUDA backend: render a fused kernel (passes.fusion.Kernel) as a `numba.cuda` kernel.

The same Kernel objects the CPU backend renders, with the same analysis (numba_cpu._Renderer:
the schedule of passes, which values vary along the reduced dims, how each array is viewed,
`Kernel.place`) and the same expression templates (numba_cpu._expression, with libm-style
`math.*` calls instead of vecmath, and float literals kept in their dtype by numba_cpu._literal).
Only the loop structure differs:

- Elementwise kernels (no reduced dims): a grid-stride loop over the flattened iteration space;
  each index is decomposed into one index per dim.
- Kernels with row reductions: one thread block per row (a flattened index over the outer,
  kept dims; blocks stride over rows when there are more rows than blocks). In each pass over
  the reduced dims R, the block's threads stride over the flattened R and each accumulates its
  own partial; a shared-memory tree reduction (blockDim.x must be a power of two) combines the
  partials and every thread reads the row's value. Values constant along R are computed by
  every thread (cheap arithmetic, no broadcast through memory); stores of such values and
  total-reduction contributions of them are done by thread 0 only.
  Rows that reduce only a few elements (SERIAL_ROWS, at the captured sizes: W5's (n, n, 3))
  instead go one per thread, grid-stride over rows like an elementwise kernel, each thread
  folding its row's elements in turn (no shared arrays, no barriers).
- Total reductions: every thread accumulates its share, then a shared-memory tree reduction per
  block writes one partial per block (`part_i[blockIdx.x]`), and the Finish step combines the
  partials (cuda_executor). Per-block partials rather than `cuda.atomic.add`: the result is
  deterministic (no order-dependent float rounding between runs), amax/amin keep the helpers'
  NaN propagation (atomic max/min do not), integer and float dtypes work alike, and it is the
  CPU backend's own Finish model, so the step lists are shared unchanged.

Loop bounds (`s0, s1, ...`) are kernel arguments and the thread count is a launch parameter, so
the source does not depend on sizes; THREADS (the shared-memory size, an upper bound on
blockDim.x) is one module constant.
"""
import numpy as np

from ..ir import format_value
from . import numba_cpu
from .numba_cpu import _ACCUMULATE, _expression

DEFAULT_THREADS = 128
# Row kernels whose rows reduce at most this many elements (at the captured sizes) give each
# thread whole rows instead of a block per row: a block of >= 32 threads for 3 elements, with
# a shared-memory tree and its barriers per row, was 1.3 ms of W5's 2.3 ms on an H100.
SERIAL_ROWS = 16


def serial_rows(kernel):
    """Whether a row kernel runs one thread per row (see SERIAL_ROWS)."""
    reduced = kernel.reduced if kernel.space else ()
    return bool(reduced) and int(np.prod([kernel.space[d] for d in reduced])) <= SERIAL_ROWS


def _numba_type(dtype):
    return "bool_" if np.dtype(dtype).kind == "b" else np.dtype(dtype).name


class _CudaRenderer(numba_cpu._Renderer):
    def __init__(self, kernel, graph, dynamic=False):
        super().__init__(kernel, graph, dynamic)
        self.rows = bool(self.r_dims)
        self.red_dims = sorted(self.r_dims)
        self.serial = serial_rows(kernel)    # one thread per row: no shared arrays, no barriers

    def compute(self, node):
        # The CPU backend's templates and literals; math.* (libdevice), never vecmath.
        return f"v{node.id} = {_expression(node, self.operands(node), vector_math=False)}"

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _decompose(out, ind, flat, dims, prefix):
        """Lines setting `{prefix}{d}` for each of `dims` from a flat C-order index."""
        if len(dims) == 1:
            out.append(f"{ind}{prefix}{dims[0]} = {flat}")
            return
        out.append(f"{ind}rem = {flat}")
        for d in reversed(dims[1:]):
            out.append(f"{ind}{prefix}{d} = rem % s{d}")
            out.append(f"{ind}rem = rem // s{d}")
        out.append(f"{ind}{prefix}{dims[0]} = rem")

    @staticmethod
    def _product(dims):
        return " * ".join(f"s{d}" for d in dims) if dims else "1"

    def _tree_reduce(self, out, ind, pairs):
        """Combine each shared array's blockDim.x partials into element 0 (all threads then
        read it). `pairs`: (reduction op, shared array name)."""
        out.append(f"{ind}cuda.syncthreads()")
        out.append(f"{ind}step = nthreads // 2")
        out.append(f"{ind}while step > 0:")
        out.append(f"{ind}    if tid < step:")
        for op, sh in pairs:
            line = _ACCUMULATE[op].format(acc=f"{sh}[tid]", v=f"{sh}[tid + step]")
            out.append(f"{ind}        {line}")
        out.append(f"{ind}    cuda.syncthreads()")
        out.append(f"{ind}    step = step // 2")

    # -- emission ---------------------------------------------------------------------------
    def render(self):
        k = self.k
        out = []
        params = [f"in_{i}" for i in range(len(k.inputs))] + \
                 [f"out_{i}" for i in range(len(k.outputs))] + \
                 [f"part_{i}" for i in range(len(k.totals))] + \
                 [f"s{d}" for d in range(self.rank)]
        out.append(f"def {k.name}({', '.join(params)}):")
        for n in k.nodes:
            kind = " (alias)" if n.id in k.aliases else " (row reduction)" if n.id in k.row \
                else " (total reduction)" if n.id in k.total else ""
            value = format_value(n)
            if self.dynamic:
                value = value.split("[")[0] + "[" + ",".join("?" for _ in n.shape) + "]"
            out.append(f"    # %{n.id}: {value} = {n.op}{kind}   {n.where}")
        ind = "    "
        out.append(f"{ind}tid = cuda.threadIdx.x")
        out.append(f"{ind}nthreads = cuda.blockDim.x")
        # Shared arrays first, each on its own line, executed once per thread.
        for rid in self.total_index:
            dt = _numba_type(self.members[rid].dtype)
            out.append(f"{ind}sh_t{rid} = cuda.shared.array(THREADS, numba.{dt})")
        if self.rows and not self.serial:
            for rid in self.compute_pass:
                dt = _numba_type(self.members[rid].dtype)
                out.append(f"{ind}sh_v{rid} = cuda.shared.array(THREADS, numba.{dt})")
        for rid in self.total_index:
            out.append(f"{ind}t{rid} = {self._identity(self.members[rid])}")
        outer_loads = [r.id for r in k.inputs if not self.is_inner(r.id)]
        if self.rows:
            out.append(f"{ind}n_rows = {self._product(self.outer_dims)}")
            out.append(f"{ind}n_red = {self._product(self.red_dims)}")
            rows = "cuda.grid(1), n_rows, cuda.gridsize(1)" if self.serial else \
                "cuda.blockIdx.x, n_rows, cuda.gridDim.x"
            out.append(f"{ind}for row in range({rows}):")
            ind += "    "
            self._decompose(out, ind, "row", self.outer_dims, "i")
        else:
            out.append(f"{ind}n = {self._product(self.outer_dims)}")
            out.append(f"{ind}for lin in range(cuda.grid(1), n, cuda.gridsize(1)):")
            ind += "    "
            self._decompose(out, ind, "lin", self.outer_dims, "i")
        for vid in outer_loads:
            out.append(f"{ind}{self.name(vid)} = in_{self.input_index[vid]}[{self.index(vid)}]")
        self.emit_stage(out, ind, 0)
        for p in range(self.n_passes):
            self.emit_pass(out, ind, p)
            self.emit_stage(out, ind, p + 1)
        if self.total_index:
            ind = "    "
            for rid in self.total_index:
                out.append(f"{ind}sh_t{rid}[tid] = t{rid}")
            self._tree_reduce(out, ind, [(self.members[rid].op, f"sh_t{rid}")
                                         for rid in self.total_index])
            out.append(f"{ind}if tid == 0:")
            for rid, i in self.total_index.items():
                out.append(f"{ind}    part_{i}[cuda.blockIdx.x] = sh_t{rid}[0]")
        return "\n".join(out) + "\n"

    def emit_stage(self, out, ind, stage):
        """Values constant along R (all values of an elementwise kernel) ready at `stage`,
        their stores and their total-reduction contributions. In a row kernel every thread
        computes them; only thread 0 stores or accumulates them."""
        computes, once = self.stage_work(stage)
        out.extend(f"{ind}{line}" for line in computes)
        if once and self.rows and not self.serial:
            out.append(f"{ind}if tid == 0:")
            out.extend(f"{ind}    {line}" for line in once)
        else:
            out.extend(f"{ind}{line}" for line in once)

    def emit_pass(self, out, ind, p):
        work = self.start_pass(out, ind, p)
        if work is None:
            return
        reductions = work[0]
        red = "n_red" if self.serial else "tid, n_red, nthreads"
        out.append(f"{ind}for red in range({red}):")
        inner = ind + "    "
        self._decompose(out, inner, "red", self.red_dims, "j")
        out.extend(self.pass_body(inner, work))
        if not reductions:
            return
        if self.serial:
            self._mean(out, ind, reductions)
            return
        for n in reductions:
            out.append(f"{ind}sh_v{n.id}[tid] = v{n.id}")
        self._tree_reduce(out, ind, [(n.op, f"sh_v{n.id}") for n in reductions])
        for n in reductions:
            out.append(f"{ind}v{n.id} = sh_v{n.id}[0]")
        # Every thread has read the row's values before any thread writes the arrays again.
        out.append(f"{ind}cuda.syncthreads()")
        self._mean(out, ind, reductions)

    @staticmethod
    def _mean(out, ind, reductions):
        for n in reductions:
            if n.op == "mean":
                # The count in the value's dtype: a float32 mean stays float32.
                out.append(f"{ind}v{n.id} = v{n.id} / np.{n.dtype.name}(n_red)")


def render(kernel, graph, dynamic=False):
    """Python source of one `@cuda.jit` kernel (without its decorator) for a fusion Kernel."""
    return _CudaRenderer(kernel, graph, dynamic).render()


def launch(kernel, space, threads, max_blocks):
    """(blocks, threads per block) for a kernel over `space` (its runtime sizes).

    Row kernels: one block per row (at most max_blocks, striding over the rest), with the
    fewest threads (a power of two, at least a warp) that cover the reduced extent. Elementwise
    kernels and serial row kernels (one thread per row): enough blocks of `threads` to cover
    the space (the rows), at most max_blocks."""
    reduced = set(kernel.reduced) if kernel.space else set()
    outer = int(np.prod([s for d, s in enumerate(space) if d not in reduced]))
    if reduced and not serial_rows(kernel):
        n_red = int(np.prod([space[d] for d in reduced]))
        per_block = min(threads, max(32, 1 << max(0, n_red - 1).bit_length()))
        return max(1, min(outer, max_blocks)), per_block
    per_block = min(threads, max(32, 1 << max(0, outer - 1).bit_length()))
    return max(1, min(-(-outer // per_block), max_blocks)), per_block


def kernel_views(kernel, graph):
    """The aligned shape each input and output is viewed with, and the space (as numba_cpu)."""
    return numba_cpu.kernel_views(kernel, graph)


def module_source(kernels, threads=DEFAULT_THREADS):
    """One importable module holding rendered kernels (sources from `render`), each a
    `@cuda.jit(cache=True)` kernel. `threads` (a power of two) sizes the shared arrays: the
    kernels must be launched with at most that many threads per block (see `launch`)."""
    if threads < 1 or threads & (threads - 1):
        raise ValueError(f"threads must be a power of two, got {threads}")
    header = [('"""Generated by jitgrad\'s compiler (CUDA); do not edit (the file name is its '
               'hash)."""'),
              "import math  # noqa: F401", "import numba", "import numpy as np",
              "from numba import cuda",
              "from compiler.codegen.cuda_runtime import *  # noqa: F401,F403", "",
              f"THREADS = {int(threads)}", ""]
    body = []
    for source in kernels:
        # No fastmath: it would flush denormals and approximate division and sqrt. Contraction
        # into FMAs is on by default in NVVM (the CPU kernels' 'contract').
        body.append("@cuda.jit(cache=True)")
        body.append(source)
    return "\n".join(header + body)
