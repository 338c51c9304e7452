"""The CUDA backend (codegen.numba_cuda, cuda_executor.CudaProgram) through Numba's CUDA
simulator: the fused forward and backward programs of small functions run on the simulated
device and match the CPU programs (rtol 1e-6 in float64, 1e-5 in float32).

The cases (tests/cuda_sim_cases.py) run in simulator subprocesses (tests/simulator.py).
"""
from pathlib import Path

import pytest

import cuda_sim_cases as cases_module
from simulator import ptx_failures, run_cases

SCRIPT = Path(__file__).resolve().parent / "cuda_sim_cases.py"
CASES = list(cases_module._cases()) + ["unsupported", "host_input"]


@pytest.fixture(scope="module")
def results():
    return run_cases(SCRIPT, CASES)


def _check(results, name):
    result = results[name]
    assert result["ok"], "\n".join(result["errors"])
    return result


@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_elementwise_broadcasting(results, dtype):
    result = _check(results, f"elementwise_{dtype}")
    # the backward sums the (5,) and (4,1) operands' gradients: a fused row reduction over
    # dim 1, and a column sum over dim 0 (on the CPU accumulated per block in the kernel; the
    # CUDA program takes it out as a device reduction of the stored value, split_columns)
    assert {tuple(k["reduced"]) for k in result["kernels"]} >= {(), (1,)}
    assert any(k["columns"] for k in result["kernels"])
    assert result["externs"] == []


@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_softmax_row(results, dtype):
    result = _check(results, f"softmax_{dtype}")
    assert result["kernels"][0]["reduced"] == [1] and result["kernels"][0]["rows"] == 2


@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_layer_norm(results, dtype):
    result = _check(results, f"layer_norm_{dtype}")
    assert result["kernels"][0]["rows"] == 2


@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_total_reductions(results, dtype):
    result = _check(results, f"total_{dtype}")
    # sum, mean and amax, each finished from per-block partials
    assert result["kernels"][0]["totals"] == 3


@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_reduction_over_a_middle_dim(results, dtype):
    result = _check(results, f"middle_dim_{dtype}")
    assert [1] in [k["reduced"] for k in result["kernels"]]


@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_mlp_forward_and_backward(results, dtype):
    result = _check(results, f"mlp_{dtype}")
    assert result["externs"].count("matmul") == 6 and "permute" in result["externs"]


def test_row_and_total_in_one_kernel(results):
    result = _check(results, "row_and_total_f64")
    assert result["kernels"][0]["rows"] == 2 and result["kernels"][0]["totals"] == 2


def test_extern_strided_reduction(results):
    result = _check(results, "strided_sum_f32")
    assert {"sum", "mean"} <= set(result["externs"])


def test_batched_broadcast_matmul(results):
    result = _check(results, "batched_matmul_f64")
    assert "matmul" in result["externs"]


def test_cat_getitem_permute(results):
    result = _check(results, "slicing_f64")
    assert {"cat", "getitem", "index_backward", "permute"} <= set(result["externs"])


@pytest.mark.parametrize("name", ["softmax_serial", "middle_dim_serial", "row_and_total_serial",
                                  "pairwise_serial"])
def test_short_rows_one_thread_per_row(results, name):
    result = _check(results, name)
    assert any(k["serial"] and k["reduced"] for k in result["kernels"])


def test_unsupported_extern_raises(results):
    _check(results, "unsupported")


def test_host_input_is_refused(results):
    _check(results, "host_input")


def test_kernels_compile_to_ptx_for_the_real_target():
    """Every generated kernel and runtime kernel compiles with Numba's real CUDA compiler for
    compute capability 8.0 (the simulator runs plain Python and checks no typing). Needs
    libNVVM only, no GPU; skipped where it is missing."""
    failures = ptx_failures(SCRIPT)
    assert not failures, "\n".join(e for v in failures.values() for e in v)
