"""Cases for tests/test_cuda_sim.py, run in a subprocess under Numba's CUDA simulator.

NUMBA_ENABLE_CUDASIM must be set before Numba is first imported (Numba reads its config at
import, and the rest of the suite imports Numba normally), so test_cuda_sim.py runs this file
as a script with that variable set. Each case compiles a small function with jitgrad, runs the
variant's forward and backward programs on the CPU (executor.Program) and on the simulated
device (cuda_executor.CudaProgram, fed with the device forward's own saved values), and
compares. One JSON object on stdout: case name -> {"ok", "errors", "kernels", "externs",
"seconds"}.

`python tests/cuda_sim_cases.py [names...]` runs some cases (all by default); with `--ptx` it
instead compiles every generated kernel (and the runtime kernels) to PTX for the real CUDA
target, with Numba's real CUDA compiler (needs libNVVM, e.g. CUDA_HOME; no GPU).
"""
import json
import os
import sys
import time
import traceback

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import jitgrad  # noqa: E402
import jitgrad.nn.functional as F  # noqa: E402

THREADS = 32      # the simulator runs every thread as a Python thread: keep blocks small
MAX_BLOCKS = 4    # few blocks, so grid-stride loops over rows and elements are exercised
TILE = 8          # matmul blocks of 8 x 8 threads
TOLERANCE = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-5}


# -- the functions ---------------------------------------------------------------------------
def elementwise(x, b, c):
    # broadcasting (4,5) with (5,) and (4,1); backward: sum_to_size over dim 0 and dim 1
    return ((x * b + c).tanh() * x.sigmoid() - b.relu() * 0.5).exp() / (1.0 + c * c)


def softmax(x):
    m = x.amax(dim=-1, keepdim=True)
    e = (x - m).exp()
    return e / e.sum(dim=-1, keepdim=True)


def layer_norm(x, w, b):
    return F.layer_norm(x, (x.shape[-1],), w, b)


def total(x, y):
    return (x * y).sum(), (x.tanh() + 1).mean(), (x * 2.0).amax()


def middle_dim(x):
    # (3,4,5).sum(1) and amax(1): a fused row reduction over a non-last dim
    return x.sum(1) * 2.0, x.amax(dim=1)


def row_and_total(x):
    # row reductions, a total of a value varying along the row (inner) and a total of a value
    # constant along it (the expanded row max: only thread 0 may add it)
    m = x.amax(dim=-1, keepdim=True)
    e = (x - m).exp()
    p = e / e.sum(dim=-1, keepdim=True)
    return (p * x).sum() + m.expand(x.shape).sum() * 0.25


def strided_sum(x):
    # a middle-dim reduction with 30 kept inner elements: refused by fusion, an extern sum
    return (x * x).sum(1) + x.mean(1)


def mlp(x, w1, b1, w2, b2, target):
    h = (x @ w1 + b1).tanh()
    out = h @ w2 + b2
    return ((out - target) ** 2).mean()


def batched_matmul(a, b):
    return (a @ b).relu()


def slicing(x, y):
    z = jitgrad.cat([x, y], dim=1)
    return (z[:, 1:6:2] * 2.0).sum(0) + z.permute(1, 0)[0]


def pairwise(pos, mask):
    # W5's Lennard-Jones energy: rows of 3 (the (n, n, 3) difference summed over the last dim)
    diff = pos[:, None, :] - pos[None, :, :]
    r2 = (diff * diff).sum(-1) + 1.0
    inv6 = (1 / r2) ** 3
    return ((inv6 * inv6 - inv6) * mask).sum()


def _rng(seed):
    return np.random.default_rng(seed)


def _cases():
    cases = {}
    for dtype in (np.float64, np.float32):
        tag = "f64" if dtype == np.float64 else "f32"

        def arr(*shape, seed=0, dtype=dtype):
            return _rng(seed + 100 * len(shape)).standard_normal(shape).astype(dtype)

        cases[f"elementwise_{tag}"] = (elementwise, [arr(4, 5), arr(5, seed=1),
                                                     arr(4, 1, seed=2)])
        cases[f"softmax_{tag}"] = (softmax, [arr(6, 7)])
        # rows of 70 > 32 threads: each thread folds several elements before the tree
        cases[f"layer_norm_{tag}"] = (layer_norm, [arr(3, 70), arr(70, seed=1),
                                                   arr(70, seed=2)])
        # 273 elements > 4 blocks x 32 threads: the grid-stride loop goes round three times
        cases[f"total_{tag}"] = (total, [arr(13, 21), arr(21, seed=3)])
        cases[f"middle_dim_{tag}"] = (middle_dim, [arr(3, 4, 5)])
        # hidden 12: with 8 x 8 tiles, a ragged second k-step
        cases[f"mlp_{tag}"] = (mlp, [arr(8, 6), arr(6, 12, seed=1) * 0.5, arr(12, seed=2),
                                     arr(12, 3, seed=3) * 0.5, arr(3, seed=4),
                                     arr(8, 3, seed=5)])
    cases["row_and_total_f64"] = (row_and_total, [_rng(7).standard_normal((5, 7))])
    cases["strided_sum_f32"] = (strided_sum,
                                [_rng(8).standard_normal((4, 5, 30)).astype(np.float32)])
    cases["batched_matmul_f64"] = (batched_matmul, [_rng(9).standard_normal((2, 1, 3, 4)),
                                                    _rng(10).standard_normal((3, 4, 5))])
    cases["slicing_f64"] = (slicing, [_rng(11).standard_normal((3, 4)),
                                      _rng(12).standard_normal((3, 3))])
    # The cases above run their row kernels a block per row (SERIAL_ROWS off); these, one
    # thread per row (codegen.numba_cuda.SERIAL_ROWS, as the real backend does for short rows)
    cases["softmax_serial"] = (softmax, [_rng(13).standard_normal((6, 7)).astype(np.float32)])
    cases["middle_dim_serial"] = (middle_dim, [_rng(14).standard_normal((3, 4, 5))])
    cases["row_and_total_serial"] = (row_and_total, [_rng(15).standard_normal((5, 7))])
    cases["pairwise_serial"] = (pairwise, [_rng(16).standard_normal((9, 3)),
                                           1 - np.eye(9)])
    return cases


def _serial_rows(name):
    """Set codegen.numba_cuda.SERIAL_ROWS for case `name` (off unless it ends in _serial)."""
    from compiler.codegen import numba_cuda
    numba_cuda.SERIAL_ROWS = 16 if name.endswith("_serial") else 0


# -- running ---------------------------------------------------------------------------------
def _compile(fn, arrays):
    tensors = [jitgrad.tensor(a, requires_grad=True) for a in arrays]
    compiled = jitgrad.compile(fn, fullgraph=True)
    compiled(*tensors)
    (variant,) = compiled.variants.values()
    return variant, tensors


def _describe(program):
    from compiler.codegen.numba_cuda import serial_rows
    from compiler.passes.fusion import Finish, Kernel
    kernels, externs = [], []
    for step in program.steps:
        if isinstance(step, Kernel):
            kernels.append({"name": step.name, "space": list(step.space),
                            "reduced": sorted(step.reduced), "rows": len(step.row),
                            "totals": len(step.totals), "columns": len(step.columns),
                            "serial": serial_rows(step)})
        elif not isinstance(step, Finish):
            externs.append(step.node.op)
    return kernels, externs


def _compare(label, cpu, device, errors):
    for k, (want, got) in enumerate(zip(cpu, device)):
        if want is None or got is None:
            if (want is None) != (got is None):
                errors.append(f"{label} output {k}: one side is None")
            continue
        got = got.copy_to_host()
        want = np.asarray(want)
        if got.shape != want.shape or got.dtype != want.dtype:
            errors.append(f"{label} output {k}: {got.dtype}{got.shape} vs "
                          f"{want.dtype}{want.shape}")
            continue
        rtol = TOLERANCE.get(want.dtype, 0)
        if not np.allclose(got, want, rtol=rtol, atol=rtol, equal_nan=True):
            errors.append(f"{label} output {k}: max abs error "
                          f"{np.max(np.abs(got.astype(np.float64) - want)):.3g}")


def run_case(fn, arrays):
    from numba import cuda
    from compiler.cuda_executor import CudaProgram
    variant, tensors = _compile(fn, arrays)
    errors = []
    options = dict(threads=THREADS, max_blocks=MAX_BLOCKS, tile=TILE)
    forward_in = [t._data for t in tensors] + [t._data for t in variant.lifted]
    cpu_fwd = variant.forward.run(forward_in)
    device_fwd = CudaProgram.from_program(variant.forward, **options).run(
        [cuda.to_device(a) for a in forward_in])
    _compare("forward", cpu_fwd, device_fwd, errors)
    kernels, externs = _describe(variant.forward)
    if variant.backward is not None:
        graph = variant.capture.graph
        rng = _rng(42)
        grads = []
        for k in variant.diff_outputs:
            node = graph.by_id[graph.outputs[k].id]
            grads.append(np.asarray(rng.standard_normal(node.shape), dtype=node.dtype))
        cpu_in, device_in = [], []
        for kind, k in variant.backward_sources:
            if kind == "saved":
                cpu_in.append(cpu_fwd[variant.n_outputs + k])
                device_in.append(device_fwd[variant.n_outputs + k])
            elif kind == "grad":
                cpu_in.append(grads[k])
                device_in.append(cuda.to_device(grads[k]))
            else:
                cpu_in.append(variant.lifted[k]._data)
                device_in.append(cuda.to_device(variant.lifted[k]._data))
        cpu_bwd = variant.backward.run(cpu_in)
        device_bwd = CudaProgram.from_program(variant.backward, **options).run(device_in)
        _compare("backward", cpu_bwd, device_bwd, errors)
        bwd_kernels, bwd_externs = _describe(variant.backward)
        kernels += bwd_kernels
        externs += bwd_externs
    return errors, kernels, externs


def unsupported_case():
    """A program with an extern op the device cannot run raises NotImplementedError naming it,
    before anything runs."""
    from compiler.cuda_executor import CudaProgram
    from compiler.ir import Graph, Node, Ref
    from compiler.passes.fusion import Extern
    x = Node(0, "input", (), (("name", "x"),), (4, 3), np.dtype(np.float64))
    y = Node(1, "max_dim", (Ref(0),), (("dim", 1), ("keepdim", False)), (4,),
             np.dtype(np.float64))
    graph = Graph((x, y), (Ref(0),), (Ref(1),))
    try:
        CudaProgram(graph, [Extern(y)], [Ref(0)], [Ref(1)], threads=THREADS)
    except NotImplementedError as error:
        return [] if "'max_dim'" in str(error) else [f"message does not name the op: {error}"]
    return ["no NotImplementedError"]


def host_input_case():
    """A host array is refused, not copied."""
    from compiler.cuda_executor import CudaProgram
    variant, tensors = _compile(softmax, [np.ones((2, 3))])
    program = CudaProgram.from_program(variant.forward, threads=THREADS)
    try:
        program.run([tensors[0]._data])
    except TypeError as error:
        return [] if "device array" in str(error) else [f"unexpected message: {error}"]
    return ["a host input was accepted"]


def main(names):
    import simulator
    simulator.prepare("tests/test_cuda_sim.py")
    cases = _cases()
    results = {}
    for name in names or list(cases) + ["unsupported", "host_input"]:
        start = time.perf_counter()
        kernels, externs = [], []
        try:
            if name == "unsupported":
                errors = unsupported_case()
            elif name == "host_input":
                errors = host_input_case()
            else:
                _serial_rows(name)
                fn, arrays = cases[name]
                errors, kernels, externs = run_case(fn, arrays)
        except Exception:  # noqa: BLE001 - reported per case
            errors = [traceback.format_exc()]
        results[name] = {"ok": not errors, "errors": errors, "kernels": kernels,
                         "externs": externs, "seconds": round(time.perf_counter() - start, 2)}
    report(results)


# -- PTX for the real target -----------------------------------------------------------------
def ptx_setup():
    """Numba's real CUDA compiler for compute capability 8.0 without a GPU: True, or False when
    libNVVM is missing (a JSON skip report is then printed)."""
    import numba.cuda.dispatcher as cuda_dispatcher
    from numba.cuda.cudadrv import nvvm
    if not nvvm.is_available():
        report({"__skip__": "libNVVM not found (set CUDA_HOME)"})
        return False

    class _Device:           # device functions ask the current device for its capability
        compute_capability = (8, 0)
    cuda_dispatcher.get_current_device = lambda: _Device()
    try:                     # numba-cuda also asks NVRTC for the supported architectures
        from numba import cuda
        cuda.compile_ptx(_probe, (arr(np.float32),), cc=(8, 0))
    except Exception as exc:  # noqa: BLE001 - only a missing NVRTC is a reason to skip
        if "nvrtc" not in str(exc).lower():
            raise
        report({"__skip__": f"NVRTC not found (pip install nvidia-cuda-nvrtc): {exc}"[:300]})
        return False
    return True


def _probe(a):
    a[0] = 1.0


def compile_ptx(fn, types):
    from numba import cuda
    cuda.compile_ptx(fn.py_func, tuple(types), cc=(8, 0))


def arr(dtype, ndim=1):
    import numba
    return numba.types.Array(numba.from_dtype(np.dtype(dtype)), ndim, "C")


def ptx_program(graph, steps):
    """Compile to PTX every kernel of a program's steps (column sums taken out, as
    CudaProgram does), typed as CudaProgram launches them."""
    import numba
    from compiler import cache
    from compiler.codegen import numba_cuda
    from compiler.passes.fusion import Kernel, split_columns
    steps = [s for s in split_columns(steps, graph) if isinstance(s, Kernel)]
    if not steps:
        return
    by_id = graph.by_id
    source = numba_cuda.module_source([numba_cuda.render(s, graph) for s in steps])
    module = cache.load_module(source, target="cuda")
    for step in steps:
        ins, outs, space = numba_cuda.kernel_views(step, graph)
        types = [arr(by_id[r.id].dtype, len(v)) for r, v in zip(step.inputs, ins)]
        types += [arr(by_id[r.id].dtype, len(v)) for r, v in zip(step.outputs, outs)]
        types += [arr(by_id[r.id].dtype) for r in step.totals]
        types += [numba.int64] * len(space)
        compile_ptx(getattr(module, step.name), types)


def _reduce_types(src, dst):
    """reduce_dims's argument types (cuda_executor.CudaProgram._fold)."""
    import numba
    i64 = numba.int64
    return ([arr(src), arr(dst)] + [arr(np.int64)] * 2 + [i64] + [arr(np.int64)] * 2 +
            [i64, i64, numba.from_dtype(np.dtype(dst)), i64, i64, i64, i64, i64])


def ptx_main(names):
    """Compile every generated kernel, and the runtime kernels, with Numba's real CUDA compiler
    for compute capability 8.0 (needs libNVVM, no GPU). JSON: name -> errors."""
    import numba
    if not ptx_setup():
        return
    from compiler.codegen import cuda_runtime

    results = {}
    cases = _cases()
    # float32 variants (and the float64-only cases): float64 kernels type the same way
    default = [n for n in cases if n.endswith("f32") or f"{n[:-4]}_f32" not in cases]
    for name in names or default:
        errors = []
        try:
            _serial_rows(name)
            fn, arrays = cases[name]
            variant, _ = _compile(fn, arrays)
            for program in (variant.forward, variant.backward):
                if program is not None:
                    ptx_program(program.graph, program.steps)
        except Exception:  # noqa: BLE001 - reported per case
            errors.append(traceback.format_exc())
        results[name] = errors
    errors = []
    try:
        i64 = numba.int64
        for dtype in (np.float32, np.float64):
            t = numba.from_dtype(np.dtype(dtype))
            compile_ptx(cuda_runtime.matmul_kernel(dtype),
                        [arr(dtype)] * 3 + [arr(np.int64)] * 2 + [i64] * 4)
            compile_ptx(cuda_runtime.strided_copy, [arr(dtype)] * 2 + [arr(np.int64)] * 3 +
                        [i64] * 4)
            compile_ptx(cuda_runtime.fill, [arr(dtype), t, i64])
            for op in ("sum", "mean", "prod", "amax", "amin"):
                compile_ptx(cuda_runtime.reduce_kernel(op, dtype), _reduce_types(dtype, dtype))
        compile_ptx(cuda_runtime.reduce_kernel("sum", np.int64),
                    _reduce_types(np.bool_, np.int64))
    except Exception:  # noqa: BLE001
        errors.append(traceback.format_exc())
    results["runtime"] = errors
    report(results)


def report(results):
    """The one JSON line the test reads (tests/simulator.py)."""
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


def script(main, ptx_main):
    """A case script's command line: case names, or --ptx and labels."""
    if "--ptx" in sys.argv[1:]:
        ptx_main([a for a in sys.argv[1:] if a != "--ptx"])
    else:
        main(sys.argv[1:])


if __name__ == "__main__":
    script(main, ptx_main)
