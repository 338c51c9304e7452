"""CUDA tensors, eager ops and autograd on the device, and compiled CUDA functions, through
Numba's CUDA simulator: each case of tests/cuda_eager_cases.py compares the device with the CPU
or checks PyTorch's errors.

The cases run in simulator subprocesses (tests/simulator.py), as in tests/test_cuda_sim.py.
"""
from pathlib import Path

import pytest

import cuda_eager_cases as cases_module
from simulator import ptx_failures, run_cases

SCRIPT = Path(__file__).resolve().parent / "cuda_eager_cases.py"
# The slow (compiled) cases first, dealt round-robin to the workers.
CASES = sorted(cases_module.CASES, key=lambda name: not name.startswith(("compiled", "ops")))


@pytest.fixture(scope="module")
def results():
    return run_cases(SCRIPT, CASES)


@pytest.mark.parametrize("name", CASES)
def test_case(results, name):
    result = results[name]
    assert result["ok"], "\n".join(result["errors"])


def test_without_a_device_cuda_is_refused_clearly():
    """No GPU and no simulator: CUDA is unavailable, and asking for a CUDA tensor says why
    (CPU work never needs numba.cuda: see tests/test_import_boundary.py)."""
    import jitgrad
    if jitgrad.cuda.is_available():
        pytest.skip("a CUDA device is available here")
    assert jitgrad.cuda.device_count() == 0
    with pytest.raises(RuntimeError, match="Found no CUDA device"):
        jitgrad.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match="Found no CUDA device"):
        jitgrad.ones(2).cuda()


def test_eager_kernels_compile_to_ptx_for_the_real_target():
    """The one-op programs of the eager device path (every elementwise op, Python scalars as
    0-d inputs, casts, int / bool / half dtypes, fused reductions) and the copy and fill kernels
    for those dtypes compile with Numba's real CUDA compiler for compute capability 8.0 (the
    simulator checks no typing). Needs libNVVM only, no GPU; skipped where it is missing."""
    failures = ptx_failures(SCRIPT)
    assert not failures, "\n".join(e for v in failures.values() for e in v)
