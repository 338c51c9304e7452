"""Running case scripts under Numba's CUDA simulator, for tests/test_cuda_sim.py,
tests/test_cuda_eager.py and the GPU benchmark test (JITGRAD_TEST_CUDA=gpu: on a real GPU).

NUMBA_ENABLE_CUDASIM is read when Numba is first imported (and the rest of the suite imports
Numba normally), so a case script runs in subprocesses with that variable set: `WORKERS` of
them, each with a share of the cases, to use both cores (the simulator runs every CUDA thread as
a Python thread, on one core per process). A script takes case names as arguments and prints
one JSON object (name -> result) as its last line.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKERS = int(os.environ.get("JITGRAD_TEST_WORKERS", "2"))


# JITGRAD_TEST_CUDA=gpu runs the same case scripts on a real GPU (a lent GPU machine) instead.
ON_GPU = os.environ.get("JITGRAD_TEST_CUDA") == "gpu"


def env(**extra):
    """The environment for a case script: the repository importable, plus `extra` (without the
    simulator switch when ON_GPU)."""
    out = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out.update(extra)
    if ON_GPU:
        out.pop("NUMBA_ENABLE_CUDASIM", None)
    return out


def run_cases(script, names, workers=WORKERS, timeout=300):
    """{name: result} from `script` run on `names`, dealt round-robin to `workers` simulator
    subprocesses."""
    procs = [subprocess.Popen([sys.executable, str(script), *names[k::workers]], cwd=ROOT,
                              env=env(NUMBA_ENABLE_CUDASIM="1"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for k in range(workers)]
    merged = {}
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, err[-4000:]
            merged.update(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return merged


def ptx_failures(script):
    """Run `script --ptx` (Numba's real CUDA compiler, no simulator, no GPU): the labels whose
    kernels failed to compile, with their errors; pytest.skip where libNVVM is missing."""
    import pytest
    out = subprocess.run([sys.executable, str(script), "--ptx"], cwd=ROOT, env=env(),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    if "__skip__" in report:
        pytest.skip(report["__skip__"])
    return {k: v for k, v in report.items() if v}


def prepare(test_file):
    """Called first by a case script: check it runs under the simulator (or on a real GPU with
    JITGRAD_TEST_CUDA=gpu) and, when simulating, make the simulator fit for the cases."""
    from numba import config
    if not config.ENABLE_CUDASIM:
        if ON_GPU:
            return
        raise SystemExit(f"run with NUMBA_ENABLE_CUDASIM=1 (see {test_file})")
    # The simulator's block manager polls its threads for syncthreads(); with the default 5 ms
    # switch interval every barrier costs milliseconds. This process only runs simulations.
    sys.setswitchinterval(0.0005)
    _patch_shared_arrays()


def _patch_shared_arrays():
    """Numba's simulator creates a block's shared array on the first thread that reaches the
    `cuda.shared.array` line, by an unlocked get-or-create: two threads switched between the
    get and the create get different arrays, and the block's reduction silently loses partials
    (seen once in CI, a wrong total). The same lookup, under a lock."""
    import threading
    from numba.core import types
    from numba.cuda.simulator import kernelapi
    from numba.np import numpy_support
    original = kernelapi.FakeCUDAShared.array
    lock = threading.Lock()

    def array(self, shape, dtype):
        if shape == 0:
            return original(self, shape, dtype)     # dynamic shared memory: one buffer
        if isinstance(dtype, types.Type):
            dtype = numpy_support.as_dtype(dtype)
        frame = sys._getframe(1)
        caller = (frame.f_code.co_filename, frame.f_lineno)   # the simulator's own key
        with lock:
            result = self._allocations.get(caller)
            if result is None:
                import numpy as np
                result = self._allocations[caller] = np.empty(shape, dtype)
        return result
    kernelapi.FakeCUDAShared.array = array
