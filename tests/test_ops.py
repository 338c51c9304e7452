"""Op-level semantics: every case of tests/op_table.py against PyTorch, plus finite differences.

1. forward:  jitgrad's result equals torch's (values, shape, dtype name);
2. backward: with a random upstream gradient, every input's .grad equals torch's
             (None where torch gives None);
3. finite differences (float64, no torch): jitgrad's analytic vector-Jacobian product equals
             central differences of jitgrad's own forward;
4. coverage: every op in jitgrad.ops.REGISTRY is exercised by some case.
"""
import importlib
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from op_table import (  # noqa: E402
    DOMAINS,
    OP_CASES,
    case_seed,
    dtype_name,
    make_inputs,
    numeric_vjp,
    to_numpy,
    upstream_grad,
)

# Registry ops deliberately not exercised by OP_CASES.  Every entry needs a comment saying why.
NOT_IN_TABLE: set = {
    # The cross-device copy (.cuda() / .cpu()): needs a CUDA device, so its forward and
    # gradient are checked under Numba's CUDA simulator (tests/test_cuda_eager.py, transfers).
    "to_device",
}

# Default tolerances against torch, per dtype.
TOL = {
    "float32": dict(rtol=1e-5, atol=1e-6),
    "float64": dict(rtol=1e-12, atol=1e-12),
}
# Per-case loosening: {(case name, dtype): dict(rtol=..., atol=...)}; each entry with a comment.
LOOSER_TOL: dict = {}

FD_EPS = 1e-6
FD_TOL = dict(rtol=1e-5, atol=1e-7)


def _params(cases):
    return [pytest.param(c, dt, id=f"{c.name}-{dt}") for c in cases for dt in c.dtypes]


ALL = _params(OP_CASES)
DIFFERENTIABLE = _params([c for c in OP_CASES if c.grad])
FD = [pytest.param(c, id=c.name) for c in OP_CASES if c.grad and c.fd and "float64" in c.dtypes]


@pytest.fixture(scope="module")
def jg():
    """jitgrad itself: a missing or broken library fails these tests, it does not skip them."""
    return importlib.import_module("jitgrad")


def _tol(case, dtype):
    return LOOSER_TOL.get((case.name, dtype), TOL.get(dtype, dict(rtol=0, atol=0)))


def _assert_same(actual, expected, case, dtype, what):
    """actual (jitgrad tensor) equals expected (torch tensor): dtype name, shape, values."""
    a, e = to_numpy(actual), to_numpy(expected)
    assert dtype_name(actual.dtype) == dtype_name(expected.dtype), (
        f"{what}: dtype {dtype_name(actual.dtype)} != torch's {dtype_name(expected.dtype)}")
    assert tuple(actual.shape) == tuple(expected.shape), (
        f"{what}: shape {tuple(actual.shape)} != torch's {tuple(expected.shape)}")
    if e.dtype.kind == "f":
        np.testing.assert_allclose(a, e, err_msg=what, **_tol(case, dtype))
    else:
        np.testing.assert_array_equal(a, e, err_msg=what)


# ---- 1. forward ----------------------------------------------------------------------------------

@pytest.mark.parametrize("case,dtype", ALL)
def test_forward(case, dtype, jg, torch):
    seed = case_seed(case)
    out = case.fn(jg, *make_inputs(case, jg, dtype, seed, requires_grad=False))
    ref = case.fn(torch, *make_inputs(case, torch, dtype, seed, requires_grad=False))
    _assert_same(out, ref, case, dtype, f"{case.name} forward")


# ---- 2. backward ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case,dtype", ALL)
def test_backward(case, dtype, jg, torch):
    seed = case_seed(case)
    xs = make_inputs(case, jg, dtype, seed, requires_grad=True)
    rs = make_inputs(case, torch, dtype, seed, requires_grad=True)
    out = case.fn(jg, *xs)
    ref = case.fn(torch, *rs)
    if not case.grad:
        # Non-differentiable result: jitgrad must not record it where torch does not.  (The
        # converse is not required: torch records float floor_divide, whose backward raises.)
        if not ref.requires_grad:
            assert not out.requires_grad, "out.requires_grad is True, torch's is False"
        return
    assert out.requires_grad, "out.requires_grad is False, torch's is True"
    g = upstream_grad(tuple(ref.shape), dtype_name(ref.dtype), seed + 1)
    out.backward(jg.tensor(g))
    ref.backward(torch.tensor(g))
    for i, (spec, x, r) in enumerate(zip(case.inputs, xs, rs)):
        if not spec.is_float:
            continue
        what = f"{case.name}: grad of input {i}"
        if r.grad is None:
            assert x.grad is None, f"{what}: torch gives None, jitgrad gives {x.grad}"
        else:
            assert x.grad is not None, f"{what}: jitgrad gives None"
            _assert_same(x.grad, r.grad, case, dtype, what)


# ---- 3. finite differences -----------------------------------------------------------------------

@pytest.mark.parametrize("case", FD)
def test_finite_differences(case, jg):
    seed = case_seed(case)
    xs = make_inputs(case, jg, "float64", seed, requires_grad=True)
    out = case.fn(jg, *xs)
    g = upstream_grad(tuple(out.shape), "float64", seed + 1)
    out.backward(jg.tensor(g))
    numeric = numeric_vjp(case, jg, seed, g, eps=FD_EPS)
    for i, (spec, x, num) in enumerate(zip(case.inputs, xs, numeric)):
        if not spec.is_float:
            continue
        analytic = np.zeros_like(num) if x.grad is None else to_numpy(x.grad)
        np.testing.assert_allclose(analytic, num, err_msg=f"{case.name}: grad of input {i}",
                                   **FD_TOL)


# ---- 4. coverage and the table itself ------------------------------------------------------------

def test_registry_covered():
    """Every registry op appears as `case.op` of some case (or is listed in NOT_IN_TABLE)."""
    from jitgrad.ops import REGISTRY  # no importorskip: a missing registry is a failure

    covered = {c.op for c in OP_CASES}
    missing = sorted(set(REGISTRY) - covered - NOT_IN_TABLE)
    assert not missing, f"registry ops with no case in tests/op_table.py: {missing}"
    stale = sorted(NOT_IN_TABLE - set(REGISTRY))
    assert not stale, f"NOT_IN_TABLE names not in the registry: {stale}"


def test_table_well_formed():
    """The table itself: unique names, tiny shapes, known domains and dtypes."""
    names = [c.name for c in OP_CASES]
    assert len(names) == len(set(names))
    for c in OP_CASES:
        assert c.dtypes and set(c.dtypes) <= {"float32", "float64", "int64"}, c.name
        for spec in c.inputs:
            assert spec.domain in DOMAINS, (c.name, spec.domain)
            assert all(0 < n <= 4 for n in spec.shape), (c.name, spec.shape)
            if spec.domain == "int":
                assert spec.high is not None and spec.high > spec.low, c.name
        if "int64" in c.dtypes:
            assert not c.grad and all(not s.is_float for s in c.inputs), c.name
