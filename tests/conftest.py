"""Shared fixtures: every semantics test runs against jitgrad and, when installed, PyTorch."""
import importlib.util

import pytest

HAVE_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(params=["jitgrad", "torch"])
def T(request):
    """The module under test: `jitgrad`, or `torch` as the oracle (skipped when absent).

    Tests written against `T` carry their own expected values, so they mean something without
    torch, and running them with T=torch checks those expectations against the oracle.
    """
    if request.param == "torch":
        if not HAVE_TORCH:
            pytest.skip("torch is not installed")
        import torch
        return torch
    import jitgrad
    return jitgrad


@pytest.fixture
def torch():
    """PyTorch itself, for tests that compare jitgrad with it directly."""
    return pytest.importorskip("torch")


def pytest_addoption(parser):
    parser.addoption("--fuzz-long", action="store_true", default=False,
                     help="tests/test_fuzz.py: run 10,000+ random programs instead of the CI few "
                          "hundred")
