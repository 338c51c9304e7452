"""Kernel-cache faults (issue "Reliability", item 3): a corrupted, truncated or foreign cache
file, unreadable Numba index/data files, two processes compiling at once, and an unusable cache
directory all still give eager-exact results, with at most one UserWarning naming the problem
and the path, and a corrupted entry is rebuilt (the next process runs warning-free)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Compiles one function (forward and backward kernels), checks values and gradients against
# eager, and prints the UserWarnings raised.
SCRIPT = r"""
import json, sys, warnings
import numpy as np
import jitgrad

def f(x, w):
    return (jitgrad.tanh(jitgrad.exp(jitgrad.sin(x) * w) * x + w) * 1.25).sum()

def run(fn):
    x = jitgrad.tensor([0.1, 0.2, 0.3, -0.4], dtype=jitgrad.float64, requires_grad=True)
    w = jitgrad.tensor([1.0, -1.0, 0.5, 2.0], dtype=jitgrad.float64, requires_grad=True)
    y = fn(x, w)
    y.backward()
    return [y.item(), x.grad.tolist(), w.grad.tolist()]

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    compiled = jitgrad.compile(f)
    got = [run(compiled), run(compiled)]
want = run(f)
for g in got:
    np.testing.assert_allclose(g[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(g[1], want[1], rtol=1e-12)
    np.testing.assert_allclose(g[2], want[2], rtol=1e-12)
print(json.dumps({"warnings": [str(w.message) for w in caught
                               if issubclass(w.category, UserWarning)],
                  "events": [k for k, _ in compiled.events]}))
"""


def _env(cache):
    return dict(os.environ, JITGRAD_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))


def run(cache):
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=_env(cache),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def compiled_ok(result):
    """Ran compiled (no eager fallback)."""
    return "fallback" not in result["events"] and "compile" in result["events"]


def kernel_files(cache):
    return sorted((Path(cache) / "kernels").glob("jitgrad_kernels_*.py"))


def numba_files(cache, ext):
    return sorted((Path(cache) / "kernels" / "__pycache__").glob(f"jitgrad_kernels_*.{ext}"))


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """A cache dir after one clean run: its kernel files, to copy per test."""
    cache = tmp_path_factory.mktemp("warm")
    first = run(cache)
    assert first["warnings"] == [] and compiled_ok(first)
    assert len(kernel_files(cache)) >= 2 and numba_files(cache, "nbi")
    return cache


def copy_cache(warm, tmp_path):
    import shutil
    target = tmp_path / "cache"
    shutil.copytree(warm, target)
    return target


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "foreign"])
def test_corrupted_kernel_module_is_rebuilt(warm, tmp_path, damage):
    cache = copy_cache(warm, tmp_path)
    victim = kernel_files(cache)[0]
    good = victim.read_text()
    if damage == "garbage":
        victim.write_bytes(b"\x00\xff garbage (((\n" * 50)
    elif damage == "truncated":
        victim.write_text(good[:len(good) // 2])
    elif damage == "empty":
        victim.write_text("")
    else:
        # A file with the right name but another version's (valid, wrong) kernels: every
        # kernel returns without writing its outputs.
        import re
        victim.write_text(re.sub(r"(\ndef \w+\([^)]*\):\n)", r"\1    return\n", good))
    result = run(cache)
    assert len(result["warnings"]) == 1, result
    assert str(victim) in result["warnings"][0] and "corrupted" in result["warnings"][0]
    assert compiled_ok(result)
    assert victim.read_text() == good                   # rebuilt in place
    again = run(cache)
    assert again["warnings"] == [] and compiled_ok(again)


@pytest.mark.parametrize("ext,damage", [("nbi", "garbage"), ("nbc", "truncated")])
def test_unreadable_numba_cache_file_is_rebuilt(warm, tmp_path, ext, damage):
    cache = copy_cache(warm, tmp_path)
    victims = numba_files(cache, ext)
    assert victims
    for victim in victims:
        data = victim.read_bytes()
        victim.write_bytes(b"not a pickle" * 10 if damage == "garbage" else data[:len(data) // 3])
    result = run(cache)
    assert 1 <= len(result["warnings"]) <= len(victims), result
    assert all("Numba cache entry" in w and str(cache) in w for w in result["warnings"])
    assert compiled_ok(result)
    again = run(cache)
    assert again["warnings"] == [] and compiled_ok(again)


def test_numba_cache_from_another_numba_version_is_ignored(warm, tmp_path):
    import pickle
    cache = copy_cache(warm, tmp_path)
    for index in numba_files(cache, "nbi"):
        data = index.read_bytes()
        with open(index, "rb") as handle:
            pickle.load(handle)
            rest = handle.read()
        index.write_bytes(pickle.dumps("0.1.0-other", protocol=-1) + rest)
        assert index.read_bytes() != data
    result = run(cache)       # Numba itself treats another version's index as empty
    assert result["warnings"] == [] and compiled_ok(result)


def test_stale_numba_files_for_a_replaced_module_are_dropped(warm, tmp_path):
    # A planted module text with old Numba files beside it: the rewrite drops those files.
    cache = copy_cache(warm, tmp_path)
    victim = kernel_files(cache)[0]
    victim.write_text(victim.read_text() + "\n# planted\n")
    result = run(cache)
    assert len(result["warnings"]) == 1 and compiled_ok(result)


def test_two_processes_compiling_at_once(tmp_path):
    cache = tmp_path / "cache"
    for _ in range(2):
        procs = [subprocess.Popen([sys.executable, "-c", SCRIPT], cwd=ROOT, env=_env(cache),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 0, stderr[-3000:]
            result = json.loads(stdout.strip().splitlines()[-1])
            assert result["warnings"] == [] and compiled_ok(result)
    assert not list((cache / "kernels").glob("*.tmp"))
    assert run(cache)["warnings"] == []


def _is_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.mark.parametrize("how", ["under_a_file", "kernels_is_a_file", "read_only"])
def test_unusable_cache_directory_compiles_elsewhere(tmp_path, how):
    if how == "under_a_file":
        blocker = tmp_path / "plain_file"
        blocker.write_text("x")
        cache = blocker / "cache"
        bad = cache / "kernels"
    elif how == "kernels_is_a_file":
        cache = tmp_path / "cache"
        cache.mkdir()
        bad = cache / "kernels"
        bad.write_text("not a directory")
    else:
        if _is_root():
            pytest.skip("root writes through chmod 0o555; the other cases cover it")
        cache = tmp_path / "cache"
        cache.mkdir()
        os.chmod(cache, 0o555)
        bad = cache / "kernels"
    try:
        result = run(cache)
    finally:
        if how == "read_only":
            os.chmod(cache, 0o755)
    assert len(result["warnings"]) == 1, result
    assert str(bad) in result["warnings"][0] and "cannot use the cache directory" \
        in result["warnings"][0]
    assert compiled_ok(result)


def test_missing_cache_directory_is_created(tmp_path):
    cache = tmp_path / "does" / "not" / "exist"
    result = run(cache)
    assert result["warnings"] == [] and compiled_ok(result)
    assert kernel_files(cache)


def test_cache_directory_removed_while_running(tmp_path, monkeypatch):
    # In process: the kernels directory disappears between two compiles.
    import shutil
    import jitgrad
    from compiler import cache
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path / "c"))
    f = jitgrad.compile(lambda x: jitgrad.cos(x * 1.5) + 0.25)
    x = jitgrad.tensor([0.5, 1.0])
    np.testing.assert_allclose(f(x).numpy(), (jitgrad.cos(x * 1.5) + 0.25).numpy(), rtol=1e-6)
    shutil.rmtree(tmp_path / "c")
    g = jitgrad.compile(lambda x: jitgrad.sin(x * 2.5) - 0.75)
    np.testing.assert_allclose(g(x).numpy(), (jitgrad.sin(x * 2.5) - 0.75).numpy(), rtol=1e-6)
    assert cache.cache_info()["kernel_modules"] >= 1


def test_in_memory_when_no_file_can_be_written(tmp_path, monkeypatch):
    import warnings
    import jitgrad
    from compiler import cache
    blocker = tmp_path / "f"
    blocker.write_text("x")
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(blocker / "c"))
    monkeypatch.setattr(cache, "_temporary_directory", lambda: blocker / "t")
    monkeypatch.setattr(cache, "_fallback", {})
    monkeypatch.setattr(cache, "_warned", set())
    f = jitgrad.compile(lambda x: jitgrad.tanh(x * 0.625) * 3.0)
    x = jitgrad.tensor([0.5, -1.0, 2.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = f(x).numpy()
    np.testing.assert_allclose(got, (jitgrad.tanh(x * 0.625) * 3.0).numpy(), rtol=1e-6)
    assert ("fallback", ) not in [(k,) for k, _ in f.events]
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert 1 <= len(messages) <= 2 and all(str(blocker) in m for m in messages)
