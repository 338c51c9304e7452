"""The fused-kernel benchmark suite (`jitgrad bench`, benchmarks/suite.py) on tiny sizes: every
workload on every installed peer is correct, the JSON has its structure, WRONG results and eager
fallbacks show in the table. No timing assertions."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import suite  # noqa: E402
from benchmarks.workloads import WORKLOADS, W1  # noqa: E402
from jitgrad.cli import build_parser  # noqa: E402

INSTALLED = {"numpy (by hand)", "jitgrad eager", "jitgrad compiled"}
if importlib.util.find_spec("torch") is not None:
    INSTALLED |= {"torch eager", "torch.compile"}
if importlib.util.find_spec("jax") is not None:
    INSTALLED |= {"jax.jit"}


def _kernel_cache():
    """The kernel cache the other compiled tests use, so reruns load instead of compiling."""
    root = os.environ.get("JITGRAD_CACHE_DIR")
    if root:
        return root
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jitgrad")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    args = build_parser().parse_args(["bench", "--size", "tiny", "--repeats", "1",
                                      "--json", str(path), "--cache-dir", _kernel_cache()])
    lines = []
    # inductor's compiles take minutes on a small machine: the torch.compile peer uses
    # dynamo + AOT autograd with the aot_eager backend here (the real run uses inductor)
    status = suite.run(args, pin=False, torch_compile_backend="aot_eager", out=lines.append)
    return status, "\n".join(lines), json.loads(path.read_text())


def test_every_workload_on_every_installed_peer_is_correct(tiny_run):
    status, text, report = tiny_run
    assert status == 0, text
    rows = [line for line in text.splitlines()
            if any(line.strip().startswith(name) for name in suite.PEERS)]
    assert rows and not [row for row in rows if "WRONG" in row or "ERROR" in row], text
    assert list(report["workloads"]) == list(WORKLOADS)
    for key, entry in report["workloads"].items():
        assert set(entry["peers"]) == set(suite.PEERS)
        for name, result in entry["peers"].items():
            if name in INSTALLED:
                assert result["status"] == "ok", (key, name, result)
                assert result["error"] <= entry["tolerance"], (key, name)
            else:
                assert result["status"] == "skipped" and result["reason"], (key, name)
        assert f"{key}  {entry['title']}" in text


def test_json_structure(tiny_run):
    _, _, report = tiny_run
    assert report["schema"] == suite.SCHEMA
    assert report["settings"]["size"] == "tiny" and report["settings"]["threads"] == 2
    assert report["bandwidth_Bps"] > 0
    assert {"platform", "cpu_count", "numpy", "jitgrad"} <= set(report["machine"])
    assert set(report["peers"]) == set(suite.PEERS)
    for key, entry in report["workloads"].items():
        assert {"title", "description", "dtype", "params", "min_bytes", "bound_s",
                "tolerance", "reference_dtype", "repeats", "fastest", "peers"} <= set(entry)
        assert entry["min_bytes"] > 0 and entry["bound_s"] > 0
        assert entry["fastest"] in INSTALLED
        for name in INSTALLED:
            result = entry["peers"][name]
            assert len(result["times_s"]) == 1
            assert result["median_s"] > 0 and result["first_call_s"] > 0
            assert result["ratio_fastest"] >= 1 and result["ratio_bound"] > 0
        compiled = entry["peers"]["jitgrad compiled"]
        assert compiled["warm_first_call_s"] > 0
        assert any(kind == "compile" for kind, _ in compiled["events"]) or compiled["fallback"]
    assert report["warm_process"]["startup_s"] > 0


def test_results_folder_is_git_ignored():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", "benchmarks/results/latest.json"],
                             cwd=ROOT)
    assert ignored.returncode == 0


class _Broken(suite.NumpyPeer):
    """The by-hand step with one gradient off by 1%."""

    def setup(self, workload, data):
        def step():
            out = workload.by_hand(data, workload.dtype)
            out["w.grad"] = out["w.grad"] * np.float32(1.01)
            return out
        return step


def test_a_wrong_peer_shows_wrong_instead_of_a_time():
    peers = {"numpy (by hand)": suite.NumpyPeer("numpy (by hand)"), "broken": _Broken("broken")}
    entry = suite.run_workload(W1("tiny"), peers, repeats=1, bandwidth=1e10)
    assert entry["peers"]["broken"]["status"] == "wrong"
    assert "w.grad" in entry["peers"]["broken"]["reason"]
    assert entry["fastest"] == "numpy (by hand)"
    row = next(line for line in suite.format_table("W1", entry, 1e10).splitlines()
               if line.strip().startswith("broken"))
    assert "WRONG" in row and " us" not in row.split("WRONG")[0]


class _BreaksGraph(W1):
    @staticmethod
    def loss(T, x, w):
        if x.sum().item() > -1e30:           # .item(): a graph break
            return T.tanh(T.exp(T.sin(x) * w) * x + w).sum()


def test_an_eager_fallback_is_shown_not_hidden():
    import jitgrad
    peers = {"jitgrad compiled": suite.JitgradCompiledPeer(jitgrad)}
    entry = suite.run_workload(_BreaksGraph("tiny"), peers, repeats=1, bandwidth=1e10)
    result = entry["peers"]["jitgrad compiled"]
    assert result["status"] == "ok" and "'item'" in result["fallback"]
    assert "eager fallback: " in suite.format_table("W1", entry, 1e10)


def test_cli_bench_help_and_bad_workload():
    out = subprocess.run([sys.executable, "-m", "jitgrad", "bench", "--help"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    for option in ("--quick", "--workload", "--repeats", "--json", "--threads", "--device"):
        assert option in out.stdout
    lines = []
    args = build_parser().parse_args(["bench", "--workload", "W9"])
    assert suite.run(args, pin=False, out=lines.append) == 2
    assert "W9" in lines[0]


def test_gpu_suite_under_the_simulator(tmp_path):
    # `jitgrad bench --device cuda` (W4 only: the simulator runs every CUDA thread as a Python
    # thread, so the larger workloads take minutes even at tiny sizes). jitgrad's peers run on
    # the device and are checked against the CPU reference; CPU-only peers say why they skip.
    sys.path.insert(0, str(ROOT / "tests"))
    import simulator
    path = tmp_path / "gpu.json"
    # every process of the run (the suite re-executes itself pinned) gets the simulator's
    # shared-array fix (tests/simulator.py) through a sitecustomize
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'tests')!r})\nimport simulator\n"
        "if not simulator.ON_GPU:\n    simulator._patch_shared_arrays()\n")
    env = simulator.env(NUMBA_ENABLE_CUDASIM="1")
    env["PYTHONPATH"] = str(site) + os.pathsep + env["PYTHONPATH"]
    done = subprocess.run([sys.executable, "-m", "jitgrad", "bench", "--device", "cuda",
                           "--size", "tiny", "--workload", "W4", "--repeats", "1",
                           "--json", str(path), "--cache-dir", str(tmp_path / "cache")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(path.read_text())
    assert report["settings"]["device"] == "cuda"
    peers = report["workloads"]["W4"]["peers"]
    assert peers["jitgrad eager"]["status"] == "ok" and peers["jitgrad compiled"]["status"] == "ok"
    assert peers["numpy (by hand)"]["reason"] == "runs on the CPU only"
    assert "device-to-device copy" in done.stdout
