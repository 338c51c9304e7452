"""The jitgrad command's inspection verbs, run as a user would: dump, explain, cache."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = '''
import jitgrad
import jitgrad.nn.functional as F


def block(x, g, b):
    y = F.layer_norm(x, (x.shape[-1],), g, b)
    return F.softmax(y * 0.125, dim=-1).sum()


def example_inputs():
    jitgrad.manual_seed(0)
    return (jitgrad.randn(8, 16, requires_grad=True), jitgrad.ones(16, requires_grad=True),
            jitgrad.zeros(16, requires_grad=True))


if __name__ == "__main__":
    compiled = jitgrad.compile(block)
    compiled(*example_inputs()).backward()
'''


def run(args, cwd, cache):
    env = dict(os.environ, PYTHONPATH=str(ROOT), JITGRAD_CACHE_DIR=str(cache))
    env.pop("JITGRAD_DUMP", None)
    return subprocess.run([sys.executable, "-m", "jitgrad", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=True).stdout


def test_dump_explain_and_cache_commands(tmp_path):
    (tmp_path / "model.py").write_text(SCRIPT)
    cache = tmp_path / "cache"
    out = run(["dump", "model.py:block", "--out", "graphs"], tmp_path, cache)
    files = sorted(p.name for p in (tmp_path / "graphs").iterdir())
    assert "block.eager.txt" in files
    assert any(f.endswith("_fused.txt") for f in files)
    assert any(f.endswith("_output_code.py") for f in files)
    assert "wrote" in out and "compile:" in out
    fused = next((tmp_path / "graphs").glob("*_fused.txt")).read_text()
    assert "kernel fwd0" in fused and "model.py:7" in fused

    out = run(["dump", "model.py", "--out", "script_graphs"], tmp_path, cache)
    assert any(p.name.endswith("_joint.txt") for p in (tmp_path / "script_graphs").iterdir())

    out = run(["dump", "model.py:block", "--out", "dot", "--format", "dot"], tmp_path, cache)
    assert (tmp_path / "dot" / "block.fused.dot").read_text().startswith("digraph")

    report = run(["explain", "model.py:block"], tmp_path, cache)
    assert "kernel fwd0: space 8x16 (rows of 16 reduced (dims 1))" in report
    assert "saved for backward" in report

    info = run(["cache", "info"], tmp_path, cache)
    assert str(cache) in info and "kernel module" in info
    cleared = run(["cache", "clear"], tmp_path, cache)
    assert "removed" in cleared
    assert " 0 kernel module" in run(["cache", "info"], tmp_path, cache)
