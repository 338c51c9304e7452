"""The fused-kernel benchmark suite: `jitgrad bench` (or `python benchmarks/suite.py`).

Runs each workload of `workloads.py` (one step = forward + backward, results materialised) on
every peer that is installed:

    numpy (by hand)   NumPy with the backward written out by hand
    jitgrad eager     `import jitgrad as torch`
    jitgrad compiled  jitgrad.compile(loss_fn); first call cold (fresh kernel cache) and warm
                      (a new process reusing the same JITGRAD_CACHE_DIR)
    torch eager       PyTorch
    torch.compile     PyTorch's compiler (inductor)
    jax.jit           JAX (jax.jit of value_and_grad)

Every peer's results are checked against a high-precision reference (the by-hand NumPy step in
float64; np.longdouble for the float64 workload): a peer outside the tolerance shows WRONG
instead of a time. All peers run pinned to the same number of threads (thread variables are set
before NumPy, Numba and torch load: the suite re-executes itself when NumPy was already loaded).
Each peer's steps are timed in blocks after an untimed settling step, in two passes (the second
in reverse order).

The results go to a JSON file (benchmarks/results/latest.json by default; that folder is
git-ignored) and, when matplotlib is installed, a bar chart next to it.
"""
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:           # `python benchmarks/suite.py` from anywhere
    sys.path.insert(0, str(ROOT))

DEFAULT_JSON = ROOT / "benchmarks" / "results" / "latest.json"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
PEERS = ("numpy (by hand)", "jitgrad eager", "jitgrad compiled", "torch eager",
         "torch.compile", "jax.jit")
COMPILERS = ("jitgrad compiled", "torch.compile", "jax.jit")
# Normwise error max|result - reference| / (max|reference| + FLOOR) allowed per result dtype.
# FLOOR treats values far below the dtype's range as zero (W4's x.grad is ~1e-66).
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}
FLOOR = {"float32": 1e-19, "float64": 1e-150}
QUICK_TORCH_COMPILE_BUDGET_S = 20.0
SLOWER = 1.10       # "compiled slower than eager" is worth a look beyond this ratio
SCHEMA = 1


def _say(message):
    """Progress: stderr, so stdout carries only the report."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- thread pinning --
def _thread_env(threads):
    env = {var: str(threads) for var in THREAD_VARS}
    # Every peer's OpenMP threads sleep when idle instead of spinning: with several runtimes in
    # one process (Numba's, torch's, OpenBLAS's), spinning threads starve each other (measured
    # here: W2's matmuls 2x slower after a Numba parallel kernel; torch.compile's W5 backward
    # 0.3-12 s a step). The same setting for all peers keeps the comparison fair.
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def _needs_reexec(threads):
    """NumPy's BLAS reads its thread count when NumPy is imported (and `jitgrad` imports NumPy):
    if that already happened with another setting, only a new process can pin it."""
    loaded = any(m in sys.modules for m in ("numpy", "torch", "numba"))
    return loaded and any(os.environ.get(k) != v for k, v in _thread_env(threads).items())


def _pin_cpus(threads):
    """Restrict this process to `threads` CPUs when it may use more, so that runtimes that size
    their pools by the CPUs they can run on (XLA, inductor's compile workers) get the same
    cores as the others. Returns the CPU set, or None where affinity is not available."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
        if threads < len(allowed):
            os.sched_setaffinity(0, allowed[:threads])
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _cpu_list(cpus):
    cpus = sorted(cpus)
    if cpus == list(range(cpus[0], cpus[-1] + 1)) and len(cpus) > 2:
        return f"{cpus[0]}-{cpus[-1]}"
    return ",".join(map(str, cpus))


def _argv(args):
    argv = ["--threads", str(args.threads), "--device", args.device]
    if args.quick:
        argv.append("--quick")
    for flag, value in (("--workload", args.workload), ("--repeats", args.repeats),
                        ("--json", args.json), ("--size", args.size),
                        ("--cache-dir", args.cache_dir)):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def _child_env(threads, **extra):
    env = dict(os.environ, **_thread_env(threads), **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


# ------------------------------------------------------------------------------ measurement --
def measure_gpu_bandwidth(nbytes):
    """GPU memory bandwidth (bytes/s) of a device-to-device copy: read + write, the best of 5
    driver copies (cuMemcpyDtoD), 5 launches of a grid-stride numba copy kernel that fills the
    device and 5 PyTorch tensor copies when torch has CUDA (on an H100 here the driver's copy
    measured 1.49 TB/s, the numba kernel 2.10 and the best of the three 2.73), each timed with
    CUDA events (the simulator: host clock)."""
    import numpy as np
    from numba import config, cuda
    src = cuda.to_device(np.ones(nbytes // 8))
    dst = cuda.device_array_like(src)
    copies = [lambda: dst.copy_to_device(src)]
    if not config.ENABLE_CUDASIM:     # the simulator would run every thread in Python
        kernel = _copy_kernel()
        device = cuda.get_current_device()
        blocks = device.MULTIPROCESSOR_COUNT * 8
        copies.append(lambda: kernel[blocks, 256](src, dst))
        torch_copy = _torch_copy(src.nbytes)
        if torch_copy is not None:
            copies.append(torch_copy)
    best = math.inf
    for copy in copies:
        copy()
        cuda.synchronize()
        for _ in range(5):
            if config.ENABLE_CUDASIM:       # its event timings are zero
                start = time.perf_counter()
                copy()
                best = min(best, time.perf_counter() - start)
                continue
            start, end = cuda.event(), cuda.event()
            start.record()
            copy()
            end.record()
            end.synchronize()
            best = min(best, start.elapsed_time(end) / 1e3)
    return 2 * src.nbytes / best


def _torch_copy(nbytes):
    """PyTorch's device-to-device tensor copy of `nbytes`, when torch has CUDA (its copy kernel
    moves more than numba's: 16-byte accesses); None otherwise."""
    try:
        import torch
        if not torch.cuda.is_available():
            return None
        src = torch.ones(nbytes // 4, device="cuda")
        dst = torch.empty_like(src)
    except Exception:  # noqa: BLE001 - not installed, or no usable CUDA for it
        return None
    return lambda: dst.copy_(src)


def _copy_kernel():
    from numba import cuda

    @cuda.jit
    def copy(src, dst):
        for i in range(cuda.grid(1), src.size, cuda.gridsize(1)):
            dst[i] = src[i]
    return copy


def measure_bandwidth(nbytes):
    """Memory bandwidth (bytes/s) of a large NumPy copy: read + write, best of 5."""
    import numpy as np
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


def _to_numpy(value):
    import numpy as np
    if hasattr(value, "detach"):
        value = value.detach()
    if callable(getattr(value, "cpu", None)) and not isinstance(value, np.ndarray):
        value = value.cpu()          # a GPU tensor: copy to the host first
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        try:
            return np.asarray(value.numpy())
        except Exception:  # noqa: BLE001 - e.g. JAX arrays: np.asarray below
            pass
    return np.asarray(value)


def check(results, reference, dtype):
    """(ok, max error, message): every result against the reference, normwise, per dtype."""
    import numpy as np
    name = np.dtype(dtype).name
    tolerance, floor = TOLERANCE[name], FLOOR[name]
    worst, worst_key = 0.0, None
    if set(results) != set(reference):
        return False, math.inf, f"results {sorted(results)} != expected {sorted(reference)}"
    for key, ref in reference.items():
        got = _to_numpy(results[key])
        if got.shape != ref.shape:
            return False, math.inf, f"{key}: shape {got.shape}, expected {ref.shape}"
        if got.dtype != np.dtype(dtype):
            return False, math.inf, f"{key}: dtype {got.dtype}, expected {name}"
        ref = ref.astype(np.longdouble) if ref.dtype == np.longdouble else ref.astype(np.float64)
        if not np.all(np.isfinite(got)):
            return False, math.inf, f"{key}: non-finite values"
        error = float(np.max(np.abs(got - ref), initial=0) /
                      (np.max(np.abs(ref), initial=0) + floor))
        if error > worst or worst_key is None:
            worst, worst_key = error, key
    if worst > tolerance:
        return False, worst, f"{worst_key}: error {worst:.1e} > tolerance {tolerance:.0e}"
    return True, worst, ""


def _timed(step, materialise):
    start = time.perf_counter()
    out = step()
    materialise(out)
    return time.perf_counter() - start, out


def _no_sync(out):
    return out


# ------------------------------------------------------------------------------------ peers --
class Peer:
    """One implementation of the workloads. `available` is None or why it is skipped."""

    def __init__(self, name):
        self.name = name
        self.available = None
        self.materialise = _no_sync
        self.compiled = []           # jitgrad CompiledFunctions made by the last setup

    def setup(self, workload, data):
        raise NotImplementedError


class NumpyPeer(Peer):
    def setup(self, workload, data):
        return lambda: workload.by_hand(data, workload.dtype)


class AutogradPeer(Peer):
    def __init__(self, name, module, wrap=None):
        super().__init__(name)
        self.module = module
        self.wrap = wrap or (lambda fn: fn)

    def setup(self, workload, data):
        return workload.setup(self.module, data, self.wrap)


class JitgradCompiledPeer(AutogradPeer):
    def __init__(self, jitgrad):
        super().__init__("jitgrad compiled", jitgrad, self._compile)

    def _compile(self, fn):
        compiled = self.module.compile(fn)
        self.compiled.append(compiled)
        return compiled

    def setup(self, workload, data):
        self.compiled = []
        return super().setup(workload, data)

    def events(self):
        return [tuple(e) for c in self.compiled for e in c.events]


class TorchCompilePeer(AutogradPeer):
    def __init__(self, torch, backend):
        self.backend = backend
        super().__init__("torch.compile", torch, self._compile)

    def _compile(self, fn):
        return self.module.compile(fn, backend=self.backend, dynamic=False)

    def setup(self, workload, data):
        self.module._dynamo.reset()      # no shape history from an earlier workload or probe
        return super().setup(workload, data)

    def graph_breaks(self):
        try:
            from torch._dynamo.utils import counters
            return dict(counters["graph_break"])
        except Exception:  # noqa: BLE001 - private API: best effort
            return {}


class JaxPeer(Peer):
    def __init__(self, jax):
        super().__init__("jax.jit")
        self.jax = jax
        self.materialise = jax.block_until_ready
        # float32 matmuls in float32, as every other peer computes them: on a GPU JAX's default
        # precision is TF32 (10-bit mantissas), whose W2 gradients miss the 1e-4 check (6e-4
        # on an H100); on the CPU this is already the default
        jax.config.update("jax_default_matmul_precision", "highest")

    def setup(self, workload, data):
        return workload.jax_step(self.jax, self.jax.numpy, data)


class OnDevice:
    """A framework module whose `tensor(...)` puts tensors on `device`: the workloads' own
    code then runs there unchanged (`T.tensor(data, requires_grad=True)`)."""

    def __init__(self, module, device):
        self._module = module
        self._device = device

    def __getattr__(self, name):
        return getattr(self._module, name)

    def tensor(self, *args, **kwargs):
        kwargs.setdefault("device", self._device)
        return self._module.tensor(*args, **kwargs)


def _synchronizer(sync):
    def materialise(out):
        sync()          # GPU work is asynchronous: a step ends when the device is done
        return out
    return materialise


def make_peers(threads, torch_compile_backend="inductor", device="cpu"):
    import jitgrad
    on = (lambda module: OnDevice(module, device)) if device != "cpu" else (lambda m: m)
    peers = {"numpy (by hand)": NumpyPeer("numpy (by hand)"),
             "jitgrad eager": AutogradPeer("jitgrad eager", on(jitgrad)),
             "jitgrad compiled": JitgradCompiledPeer(on(jitgrad))}
    if device != "cpu":
        from numba import cuda
        peers["numpy (by hand)"].available = "runs on the CPU only"
        for name in ("jitgrad eager", "jitgrad compiled"):
            peers[name].materialise = _synchronizer(cuda.synchronize)
    if importlib.util.find_spec("torch") is not None:
        import torch
        torch.set_num_threads(threads)
        peers["torch eager"] = AutogradPeer("torch eager", on(torch))
        peers["torch.compile"] = TorchCompilePeer(on(torch), torch_compile_backend)
        if device != "cpu":
            for name in ("torch eager", "torch.compile"):
                if torch.cuda.is_available():
                    peers[name].materialise = _synchronizer(torch.cuda.synchronize)
                else:
                    peers[name].available = "this torch has no CUDA device"
    else:
        for name in ("torch eager", "torch.compile"):
            peers[name] = Peer(name)
            peers[name].available = "torch is not installed"
    if importlib.util.find_spec("jax") is not None:
        if device == "cpu":
            os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax
        jax.config.update("jax_enable_x64", True)      # W5 is float64
        peers["jax.jit"] = JaxPeer(jax)
        if device != "cpu" and jax.default_backend() != "gpu":
            peers["jax.jit"].available = f"jax runs on {jax.default_backend()}, not a GPU"
    else:
        peers["jax.jit"] = Peer("jax.jit")
        peers["jax.jit"].available = "jax is not installed"
    return peers


def _warm_numba():
    """Import the compiler and start Numba (LLVM) once, so first-call figures measure
    jitgrad's capture + kernel build (or cache load), not process start-up."""
    import numba
    import compiler  # noqa: F401
    numba.njit(lambda a: a + 1)(1)


def probe_torch_compile(threads, n_workloads, backend="inductor"):
    """--quick: time torch.compile on one tiny workload in a new process (killed past the
    budget, so a slow compiler costs at most that). Returns (why it is skipped or None, the
    probe's compile seconds or None)."""
    budget = QUICK_TORCH_COMPILE_BUDGET_S
    command = [sys.executable, "-m", "benchmarks.suite", "--probe-torch-compile", backend]
    try:
        done = subprocess.run(command, cwd=ROOT, env=_child_env(threads), capture_output=True,
                              text=True, timeout=budget + 15)      # + importing torch
        seconds = float(done.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return (f"skipped in --quick: compiling one tiny workload took more than "
                f"{budget:.0f} s here; run without --quick to include it"), None
    except (ValueError, IndexError):
        return "skipped in --quick: the torch.compile probe failed", None
    estimate = seconds * n_workloads
    if estimate <= budget:
        return None, seconds
    return (f"skipped in --quick: compiling one tiny workload took {seconds:.1f} s here, so "
            f"{n_workloads} would take about {estimate:.0f} s (> {budget:.0f} s); run without "
            "--quick to include it"), seconds


def _probe_child(backend):
    import torch
    from benchmarks.workloads import W1
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    workload = W1("tiny")
    step = TorchCompilePeer(torch, backend).setup(workload, workload.data())
    seconds, _ = _timed(step, _no_sync)
    print(seconds)


# --------------------------------------------------------------------------- warm process --
def warm_first_calls(keys, size, threads, cache_dir, device="cpu", timeout=600):
    """First-call latency of the compiled peer in a new process that finds the kernels of this
    run in `cache_dir`: {key: seconds, "startup_s": ..., "kernel_modules_written": ...}."""
    command = [sys.executable, "-m", "benchmarks.suite", "--first-calls",
               json.dumps({"keys": keys, "size": size, "device": device})]
    env = _child_env(threads, JITGRAD_CACHE_DIR=str(cache_dir))
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def _first_calls_child(spec):
    start = time.perf_counter()
    import jitgrad
    from compiler import cache
    from benchmarks.workloads import WORKLOADS
    _warm_numba()
    out = {"startup_s": time.perf_counter() - start}
    device = spec.get("device", "cpu")
    module, sync = jitgrad, _no_sync
    if device != "cpu":
        from numba import cuda
        module, sync = OnDevice(jitgrad, device), _synchronizer(cuda.synchronize)
    for key in spec["keys"]:
        workload = WORKLOADS[key](spec["size"])
        peer = JitgradCompiledPeer(module)
        step = peer.setup(workload, workload.data())
        out[key], _ = _timed(step, sync)
    out["kernel_modules_written"] = cache.STATS["compiled_modules"]
    print(json.dumps(out))


# ------------------------------------------------------------------------------ one workload --
def _dtype_label(dtype):
    import numpy as np
    if np.dtype(dtype) == np.dtype(np.longdouble) and np.finfo(np.longdouble).nmant == 63:
        return "longdouble (80-bit)"
    return np.dtype(dtype).name


def run_workload(workload, peers, repeats, bandwidth):
    import numpy as np
    key = workload.key
    data = workload.data()
    ref_dtype = np.longdouble if workload.dtype == np.float64 else np.float64
    _say(f"[{key}] reference: by-hand NumPy in {_dtype_label(ref_dtype)}")
    reference = workload.by_hand(data, ref_dtype)
    min_bytes = workload.min_bytes(data, reference)
    bound = min_bytes / bandwidth
    dtype_name = np.dtype(workload.dtype).name
    entry = {"title": workload.title, "description": workload.describe(), "size": workload.size,
             "params": workload.params, "dtype": dtype_name,
             "reference_dtype": _dtype_label(ref_dtype), "tolerance": TOLERANCE[dtype_name],
             "min_bytes": min_bytes, "bound_s": bound, "repeats": repeats, "peers": {}}
    live = {}
    for name, peer in peers.items():
        result = {"status": "skipped", "reason": peer.available}
        if peer.available and getattr(peer, "short_reason", None):
            result["short_reason"] = peer.short_reason
        entry["peers"][name] = result
        if peer.available:
            continue
        _say(f"[{key}] {name}: first call" + (" (compiles)" if name in COMPILERS else ""))
        try:
            before = peer.graph_breaks() if isinstance(peer, TorchCompilePeer) else None
            step = peer.setup(workload, data)
            seconds, out = _timed(step, peer.materialise)
            ok, error, message = check(out, reference, workload.dtype)
        except Exception as exc:  # noqa: BLE001 - one failing peer must not end the run
            result.update(status="error", reason=f"{type(exc).__name__}: {exc}".splitlines()[0])
            _say(f"[{key}] {name}: ERROR {result['reason']}")
            continue
        result.update(status="ok" if ok else "wrong", reason=message or None, error=error,
                      first_call_s=seconds, times_s=[])
        if isinstance(peer, JitgradCompiledPeer):
            result["events"] = [list(e) for e in peer.events()]
            fallback = [text for kind, text in peer.events()
                        if kind in ("graph break", "fallback")]
            result["fallback"] = fallback[0] if fallback else None
        if before is not None:
            after = peer.graph_breaks()
            breaks = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
            result["graph_breaks"] = breaks
        live[name] = (peer, step)
    # Timing: per peer, a block of steps after one untimed settling step (it absorbs the
    # previous peer's thread pools still spinning: OpenBLAS, OpenMP); two passes, the second in
    # reverse order, so that drift on a shared machine hits every peer alike.
    _say(f"[{key}] timing {len(live)} peers x {repeats} steps, two passes")
    for order, count in ((list(live), (repeats + 1) // 2), (list(live)[::-1], repeats // 2)):
        for name in order:
            if name not in live or count == 0:
                continue
            peer, step = live[name]
            try:
                _timed(step, peer.materialise)
                for _ in range(count):
                    seconds, _ = _timed(step, peer.materialise)
                    entry["peers"][name]["times_s"].append(seconds)
            except Exception as exc:  # noqa: BLE001 - one failing peer must not end the run
                entry["peers"][name].update(status="error",
                                            reason=f"{type(exc).__name__}: {exc}".splitlines()[0])
                del live[name]
    # correctness again, warm: from the initial state (stateful steps reset) after timing
    for name, (peer, step) in live.items():
        result = entry["peers"][name]
        try:
            if hasattr(step, "reset"):
                step.reset()
            ok, error, message = check(step(), reference, workload.dtype)
        except Exception as exc:  # noqa: BLE001
            ok, error, message = False, math.inf, f"{type(exc).__name__}: {exc}"
        result["error"] = max(result["error"], error)
        if not ok and result["status"] == "ok":
            result.update(status="wrong", reason=f"after timing: {message}")
        if isinstance(peer, JitgradCompiledPeer):
            result["events"] = [list(e) for e in peer.events()]
            fallback = [text for kind, text in peer.events()
                        if kind in ("graph break", "fallback")]
            result["fallback"] = fallback[0] if fallback else None
    # statistics
    medians = {}
    for name, result in entry["peers"].items():
        if result.get("error") is not None and math.isinf(result["error"]):
            result["error"] = None           # JSON has no infinity: the reason says what failed
        if result.get("times_s"):
            result["median_s"] = statistics.median(result["times_s"])
            if result["status"] == "ok":
                medians[name] = result["median_s"]
    fastest = min(medians.values()) if medians else None
    entry["fastest"] = min(medians, key=medians.get) if medians else None
    for name, result in entry["peers"].items():
        if name in medians:
            result["ratio_fastest"] = medians[name] / fastest
            result["ratio_bound"] = medians[name] / bound if bound > 0 else None
    return entry


# ----------------------------------------------------------------------------------- report --
def _fmt_time(seconds):
    if seconds is None:
        return ""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def _fmt_ratio(ratio):
    if ratio is None:
        return ""
    return f"{ratio:.2f}x" if ratio < 100 else f"{ratio:,.0f}x"


def _fmt_bytes(nbytes):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes} B"


def format_table(key, entry, bandwidth):
    lines = [f"{key}  {entry['title']}  (size {entry['size']})",
             f"    {entry['description']}",
             f"    bound: at least {_fmt_bytes(entry['min_bytes'])} to move = "
             f"{_fmt_time(entry['bound_s'])} at {bandwidth / 1e9:.1f} GB/s;  check: "
             f"error vs {entry['reference_dtype']} reference <= {entry['tolerance']:.0e}"]
    header = ("peer", "median step", "vs fastest", "vs bound", "first call", "error", "notes")
    rows = []
    for name, result in entry["peers"].items():
        status = result["status"]
        notes = []
        if status == "skipped":
            rows.append((name, "skipped", "", "", "", "",
                         result.get("short_reason") or result["reason"]))
            continue
        if status == "error":
            rows.append((name, "ERROR", "", "", "", "", result["reason"]))
            continue
        cell = "WRONG" if status == "wrong" else _fmt_time(result.get("median_s"))
        first = ""
        if name in COMPILERS:
            first = _fmt_time(result.get("first_call_s"))
            warm = result.get("warm_first_call_s")
            if name == "jitgrad compiled":
                first = f"cold {first}" + (f", warm {_fmt_time(warm)}" if warm is not None
                                           else "")
        if status == "wrong":
            notes.append(result["reason"])
        if result.get("fallback"):
            notes.append(f"eager fallback: {result['fallback']}")
        if result.get("graph_breaks"):
            count = sum(result["graph_breaks"].values())
            notes.append(f"{count} graph break(s): {next(iter(result['graph_breaks']))}")
        times = result.get("times_s") or []
        if len(times) >= 3 and min(times) > 0 and max(times) / min(times) > 5:
            notes.append(f"unstable: steps from {_fmt_time(min(times))} to "
                         f"{_fmt_time(max(times))}")
        if entry.get("fastest") == name:
            notes.append("fastest")
        error = result.get("error")
        rows.append((name, cell, _fmt_ratio(result.get("ratio_fastest")),
                     _fmt_ratio(result.get("ratio_bound")), first,
                     "" if error is None else f"{error:.0e}",
                     "; ".join(notes)))
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header) - 1)]
    align = ["<", ">", ">", ">", "<", ">"]

    def line(row):
        cells = [f"{c:{a}{w}}" for c, a, w in zip(row, align, widths)]
        return ("    " + "  ".join(cells) + "  " + row[-1]).rstrip()
    lines.append(line(header))
    lines.append("    " + "-" * (sum(widths) + 2 * len(widths) + 5))
    lines += [line(r) for r in rows]
    return "\n".join(lines)


LEGEND = """\
median step  median wall time of one step (forward + backward, results materialised)
vs fastest   median / the fastest correct peer's median (1.00x = fastest)
vs bound     median / memory-bandwidth bound (bytes the step must at least move / measured
             bandwidth); large on compute- or overhead-bound workloads (W2, W4, W5)
first call   compilers only: first call in this process, capture + compile + run (imports
             and Numba start-up excluded); jitgrad "cold" = empty kernel cache, "warm" = a
             new process loading this run's kernels from the same JITGRAD_CACHE_DIR
error        max |result - reference| / max |reference| over the step's results; WRONG if
             above the tolerance"""


def draw_chart(report, path):
    """A bar chart of every workload's medians relative to its fastest peer (matplotlib only;
    returns None without it)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    keys = list(report["workloads"])
    names = [p for p in PEERS if any(
        report["workloads"][k]["peers"].get(p, {}).get("ratio_fastest") for k in keys)]
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(keys), 4))
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        values = [report["workloads"][k]["peers"].get(name, {}).get("ratio_fastest") or 0
                  for k in keys]
        ax.bar([j + i * width for j in range(len(keys))], values, width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(keys))], keys)
    ax.set_yscale("log")
    ax.set_ylabel("median step / fastest peer (log)")
    ax.set_title(f"jitgrad bench ({report['settings']['size']}, "
                 f"{report['settings']['threads']} threads)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------- main --
def _load_average():
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _versions():
    versions = {"python": platform.python_version()}
    for name in ("numpy", "numba", "jitgrad", "torch", "jax", "matplotlib"):
        if importlib.util.find_spec(name) is None:
            versions[name] = None
            continue
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001
            versions[name] = "?"
    return versions


def run(args, *, pin=True, torch_compile_backend="inductor", out=print):
    """Run the suite for the parsed `jitgrad bench` arguments; returns the exit status (0 when
    every peer that ran was correct). `pin=False` (tests) skips the re-exec that pins BLAS
    threads; `torch_compile_backend` exists for tests (inductor compiles take minutes)."""
    from benchmarks.workloads import SIZES, WORKLOADS
    if args.device not in ("cpu", "cuda"):
        out(f"jitgrad bench: --device must be cpu or cuda (got {args.device!r})")
        return 2
    if args.device == "cuda":
        import jitgrad
        if not jitgrad.cuda.is_available():
            out("jitgrad bench: --device cuda needs a CUDA GPU (numba.cuda finds none; "
                "NUMBA_ENABLE_CUDASIM=1 runs Numba's simulator, for tests only)")
            return 2
    keys = [k.strip().upper() for k in (args.workload or ",".join(WORKLOADS)).split(",")
            if k.strip()]
    unknown = [k for k in keys if k not in WORKLOADS]
    if unknown:
        out(f"jitgrad bench: unknown workload(s) {', '.join(unknown)}; choose from "
            f"{', '.join(WORKLOADS)}")
        return 2
    size = args.size or ("quick" if args.quick else "full")
    if size not in SIZES:
        out(f"jitgrad bench: unknown size {size!r}; choose from {', '.join(SIZES)}")
        return 2
    threads = args.threads
    if pin and _needs_reexec(threads):
        # a new process with every thread variable set before NumPy loads
        command = [sys.executable, "-m", "jitgrad", "bench", *_argv(args)]
        return subprocess.call(command, env=_child_env(threads), cwd=os.getcwd())
    cpus = _pin_cpus(threads) if pin else None
    saved_env = {k: os.environ.get(k)
                 for k in THREAD_VARS + ("JITGRAD_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR")}
    os.environ.update(_thread_env(threads))
    cache_dir = Path(args.cache_dir) if args.cache_dir else Path(
        tempfile.mkdtemp(prefix="jitgrad-bench-cache-"))
    os.environ["JITGRAD_CACHE_DIR"] = str(cache_dir)
    # torch.compile's first call is cold too: its own fresh on-disk cache
    inductor_dir = tempfile.mkdtemp(prefix="jitgrad-bench-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = inductor_dir
    saved_torch_threads = None
    try:
        if importlib.util.find_spec("torch") is not None:
            import torch
            saved_torch_threads = torch.get_num_threads()
        return _run(args, keys, size, threads, cache_dir, torch_compile_backend, out, cpus)
    finally:
        if saved_torch_threads is not None:
            import torch
            torch.set_num_threads(saved_torch_threads)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if not args.cache_dir:
            shutil.rmtree(cache_dir, ignore_errors=True)
        shutil.rmtree(inductor_dir, ignore_errors=True)


def _run(args, keys, size, threads, cache_dir, torch_compile_backend, out, cpus):
    from benchmarks.workloads import WORKLOADS
    started = time.perf_counter()
    workloads = [WORKLOADS[k](size) for k in keys]
    out(f"jitgrad bench: {len(keys)} workload(s) {', '.join(keys)}, size {size}, "
        f"{threads} thread(s)" + (f" on CPUs {_cpu_list(cpus)}" if cpus else "") +
        f", {args.device}")
    load = _load_average()
    if load is not None and load > 0.25 * (os.cpu_count() or 1):
        out(f"note: this machine is busy (1-minute load average {load:.1f} on {os.cpu_count()} "
            "cores before the run): other processes compete for the cores, so timings are "
            "noisy")
    copy_bytes = (32 << 20) if size == "tiny" else (256 << 20)
    if args.device == "cuda":
        _say("measuring GPU memory bandwidth (device-to-device copy)")
        copy_bytes = (1 << 20) if size == "tiny" else copy_bytes
        bandwidth = measure_gpu_bandwidth(copy_bytes)
        how = "device-to-device copy"
    else:
        _say("measuring memory bandwidth (NumPy copy)")
        bandwidth = measure_bandwidth(copy_bytes)
        how = "NumPy copy"
    out(f"memory bandwidth: {bandwidth / 1e9:.1f} GB/s ({how} of {copy_bytes >> 20} MB, "
        "read + write, best of 5)")
    _say("loading peers (jitgrad, compiler + Numba, torch, jax if installed)")
    peers = make_peers(threads, torch_compile_backend, args.device)
    _warm_numba()
    settings = {"size": size, "quick": bool(args.quick), "threads": threads,
                "cpu_affinity": sorted(cpus) if cpus else None,
                "device": args.device, "repeats": args.repeats,
                "torch_compile_backend": torch_compile_backend,
                "jitgrad_cache_dir": str(cache_dir) if args.cache_dir else "(fresh, temporary)"}
    tc = peers["torch.compile"]
    if args.quick and tc.available is None:
        _say("[--quick] probing torch.compile's compile time on a tiny workload")
        reason, seconds = probe_torch_compile(threads, len(keys), torch_compile_backend)
        settings["torch_compile_probe_s"] = seconds
        if reason:
            tc.available = reason
            tc.short_reason = "skipped in --quick: its compiles take too long here (see above)"
            out(f"torch.compile {reason}")
    out("")
    report = {"schema": SCHEMA, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": "jitgrad bench " + " ".join(_argv(args)),
              "machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cpu_count": os.cpu_count(), "load_average_start": load,
                          **_versions()},
              "settings": settings, "bandwidth_Bps": bandwidth,
              "peers": {name: peer.available for name, peer in peers.items()},
              "workloads": {}}
    all_ok = True
    for workload in workloads:
        repeats = args.repeats or workload.repeats[size]
        entry = run_workload(workload, peers, repeats, bandwidth)
        report["workloads"][workload.key] = entry
        all_ok &= all(r["status"] in ("ok", "skipped") for r in entry["peers"].values())
        if entry["fastest"]:
            _say(f"[{workload.key}] done: fastest {entry['fastest']} "
                 f"{_fmt_time(entry['peers'][entry['fastest']]['median_s'])}")
    # warm first call: one new process for all workloads, loading this run's kernel cache
    compiled_keys = [k for k in keys if report["workloads"][k]["peers"]["jitgrad compiled"]
                     .get("first_call_s") is not None]
    if compiled_keys:
        _say("[warm] jitgrad compiled: first calls in a new process, same JITGRAD_CACHE_DIR")
        warm = warm_first_calls(compiled_keys, size, threads, cache_dir, args.device)
        report["warm_process"] = warm
        for k in compiled_keys:
            if k in warm:
                report["workloads"][k]["peers"]["jitgrad compiled"]["warm_first_call_s"] = warm[k]
    out(LEGEND + "\n")
    for key, entry in report["workloads"].items():
        out(format_table(key, entry, bandwidth) + "\n")
    out(summarise(report))
    path = Path(args.json) if args.json else DEFAULT_JSON
    path.parent.mkdir(parents=True, exist_ok=True)
    report["elapsed_s"] = time.perf_counter() - started
    report["machine"]["load_average_end"] = _load_average()
    path.write_text(json.dumps(report, indent=1, default=str, allow_nan=False) + "\n")
    out(f"results: {path}")
    chart = draw_chart(report, path.with_suffix(".png"))
    if chart:
        out(f"chart: {chart}")
    out(f"finished in {report['elapsed_s']:.0f} s" + ("" if all_ok else
        "; some peers were WRONG or failed (see the tables)"))
    return 0 if all_ok else 1


def summarise(report):
    """The overview (median / fastest per workload and peer) and what looks off."""
    keys = list(report["workloads"])
    names = [n for n in PEERS if report["peers"].get(n) is None]
    width = max(len(n) for n in PEERS)
    lines = ["summary: median step / fastest correct peer (WRONG: failed the check)",
             "    " + " " * width + "".join(f"{k:>9}" for k in keys)]
    for name in names:
        cells = []
        for k in keys:
            result = report["workloads"][k]["peers"][name]
            cell = {"wrong": "WRONG", "error": "ERROR", "skipped": "-"}.get(result["status"])
            cells.append(cell or _fmt_ratio(result.get("ratio_fastest")))
        lines.append(f"    {name:<{width}}" + "".join(f"{c:>9}" for c in cells))
    for name, reason in report["peers"].items():
        if reason:
            lines.append(f"    {name}: {reason}")
    notes = []
    for k, entry in report["workloads"].items():
        peers = entry["peers"]
        for name, result in peers.items():
            if result["status"] in ("wrong", "error"):
                notes.append(f"{k}: {name} {result['status'].upper()}: {result['reason']}")
        compiled = peers.get("jitgrad compiled", {})
        if compiled.get("fallback"):
            notes.append(f"{k}: jitgrad compiled ran eagerly (eager fallback: "
                         f"{compiled['fallback']})")
        for fast, slow in (("jitgrad compiled", "jitgrad eager"), ("torch.compile", "torch eager")):
            a, b = peers.get(fast, {}).get("median_s"), peers.get(slow, {}).get("median_s")
            if (a and b and a > SLOWER * b and peers[fast]["status"] == "ok"
                    and not peers[fast].get("fallback")):
                notes.append(f"{k}: {fast} is slower than {slow} ({_fmt_time(a)} vs "
                             f"{_fmt_time(b)}, {a / b:.2f}x)")
    warm = report.get("warm_process", {})
    if "error" in warm:
        notes.append(f"the warm first-call process failed: {warm['error']}")
    elif warm:
        lines.append(f"    warm first calls: a new process (its start-up, {warm['startup_s']:.2f} s "
                     "of imports and Numba, not counted)")
        if warm["kernel_modules_written"]:
            notes.append(f"the warm first-call process wrote {warm['kernel_modules_written']} "
                         "kernel module(s): it did not find them all in the cache")
    if notes:
        lines += ["", "worth a look:"] + [f"  - {n}" for n in notes]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--first-calls":
        _first_calls_child(json.loads(sys.argv[2]))
    elif len(sys.argv) > 2 and sys.argv[1] == "--probe-torch-compile":
        _probe_child(sys.argv[2])
    else:
        from jitgrad.cli import main
        sys.exit(main(["bench", *sys.argv[1:]]))
