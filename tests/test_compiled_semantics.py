"""Compiled mode keeps eager semantics: cuts, lifetimes, version checks, hooks, double backward,
guards and graph breaks. Each test compares with eager jitgrad (and literal values)."""
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import jitgrad

ROOT = Path(__file__).resolve().parents[1]


def leaves(*values, dtype=jitgrad.float64):
    return [jitgrad.tensor(v, dtype=dtype, requires_grad=True) for v in values]


def grads_of(fn, *values):
    xs = leaves(*values)
    fn(*xs).backward()
    return [x.grad.numpy() if x.grad is not None else None for x in xs]


def test_values_and_gradients_match_eager():
    def f(x, w):
        return jitgrad.tanh(jitgrad.exp(jitgrad.sin(x) * w) * x + w).sum()
    compiled = jitgrad.compile(f)
    for _ in range(2):  # compile, then run the cached variant
        got = grads_of(compiled, [0.1, 0.2, 0.3], [1.0, -1.0, 0.5])
    want = grads_of(f, [0.1, 0.2, 0.3], [1.0, -1.0, 0.5])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12)
    assert [k for k, _ in compiled.events] == ["compile"]


def test_decorator_forms():
    @jitgrad.compile
    def f(x):
        return x * 2

    @jitgrad.compile(backend="cpu")
    def g(x):
        return x + 1
    x = jitgrad.tensor([1.0, 2.0])
    assert f(x).tolist() == [2.0, 4.0] and g(x).tolist() == [2.0, 3.0]


def test_detach_data_and_no_grad_cut_gradients_inside():
    def f(x):
        with jitgrad.no_grad():
            scale = x * 3
        return (x * x.detach() + x.data * x + scale * x).sum()
    compiled = jitgrad.compile(f)
    (got,) = grads_of(compiled, [1.0, 2.0])
    (want,) = grads_of(f, [1.0, 2.0])
    np.testing.assert_allclose(got, want)
    np.testing.assert_allclose(got, [5.0, 10.0])  # x + x + 3x: detach, .data and no_grad cut


def test_saved_values_freed_after_backward():
    compiled = jitgrad.compile(lambda x: (x * x).sum())
    x, = leaves([1.0, 2.0])
    y = compiled(x)
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_retain_graph_accumulates():
    compiled = jitgrad.compile(lambda x: (x * x).sum())
    x, = leaves([1.0, 2.0])
    y = compiled(x)
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]


def test_inplace_change_of_saved_input_raises():
    compiled = jitgrad.compile(lambda x: (x * x).sum())
    x, = leaves([1.0, 2.0])
    y = compiled(x)
    with jitgrad.no_grad():
        x.add_(1)
    with pytest.raises(RuntimeError, match=re.escape(
            "modified by an inplace operation: [torch.DoubleTensor [2]] is at version 1; "
            "expected version 0 instead")):
        y.backward()


def test_inplace_change_of_unsaved_input_is_fine():
    compiled = jitgrad.compile(lambda x: (x + 1).sum())
    x, = leaves([1.0, 2.0])
    y = compiled(x)
    with jitgrad.no_grad():
        x.mul_(5)
    y.backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_hooks_retain_grad_inputs_and_autograd_grad_on_outputs():
    compiled = jitgrad.compile(lambda x, w: x * w)
    x, w = leaves([1.0, 2.0], [3.0, 4.0])
    y = compiled(x, w)
    y.retain_grad()
    seen = []
    y.register_hook(lambda g: seen.append(g.tolist()) or g * 2)
    y.sum().backward(inputs=[x])
    assert seen == [[1.0, 1.0]]
    assert y.grad.tolist() == [2.0, 2.0]
    assert x.grad.tolist() == [6.0, 8.0] and w.grad is None
    y2 = compiled(x, w)
    (gw,) = jitgrad.autograd.grad(y2.sum(), [w])
    assert gw.tolist() == [1.0, 2.0]


def test_double_backward_through_compiled_function():
    def f(x):
        return (x ** 3).sum()
    compiled = jitgrad.compile(f)
    x, = leaves([1.0, 2.0])
    (g,) = jitgrad.autograd.grad(compiled(x), [x], create_graph=True)
    (h,) = jitgrad.autograd.grad(g.sum(), [x])
    assert g.tolist() == [3.0, 12.0]
    assert h.tolist() == [6.0, 12.0]   # 6x, as eagerly


def test_recompiles_on_new_shape_and_names_the_change():
    compiled = jitgrad.compile(lambda x: (x * 2).sum())
    compiled(jitgrad.ones(3))
    compiled(jitgrad.ones(4))
    assert any(kind == "recompile" and text.startswith("input 0 shape changed [3] -> [4]")
               for kind, text in compiled.events)


def test_variant_limit_warns_once_then_runs_eagerly():
    compiled = jitgrad.compile(lambda x: x + 1, max_variants=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 6):
            assert compiled(jitgrad.ones(n)).tolist() == [2.0] * n
    messages = [str(w.message) for w in caught if "variants" in str(w.message)]
    assert len(messages) == 1 and "input 0 shape changed" in messages[0]


def test_graph_break_falls_back_with_reason_and_fullgraph_raises():
    def f(x):
        if x.sum().item() > 0:   # Python branching on a tensor value
            return x * 2
        return x * 3
    compiled = jitgrad.compile(f)
    x, = leaves([1.0, 2.0])
    compiled(x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    kinds = dict(compiled.events)
    assert "'item' takes a value out of the graph" in kinds["graph break"]
    assert "test_compiled_semantics.py" in kinds["graph break"]
    strict = jitgrad.compile(f, fullgraph=True)
    with pytest.raises(RuntimeError, match="graph break: 'item'.*test_compiled_semantics.py"):
        strict(x)


def test_inplace_inside_function_falls_back_and_mutates_caller_once():
    def f(x):
        x.mul_(2)
        return x + 1
    compiled = jitgrad.compile(f)
    x = jitgrad.tensor([1.0, 2.0])
    out = compiled(x)
    assert x.tolist() == [2.0, 4.0] and x._version == 1
    assert out.tolist() == [3.0, 5.0]


def test_nested_structures_and_constants():
    def f(pair, scale):
        a, b = pair
        return {"sum": (a * scale + b).sum(), "parts": [a * 2, b]}
    compiled = jitgrad.compile(f)
    a, b = leaves([1.0, 2.0], [3.0, 4.0])
    out = compiled((a, b), 10.0)
    assert out["sum"].item() == 37.0
    assert out["parts"][0].tolist() == [2.0, 4.0]
    out["sum"].backward()
    assert a.grad.tolist() == [10.0, 10.0] and b.grad.tolist() == [1.0, 1.0]


def test_warm_cache_new_process_compiles_nothing(tmp_path):
    script = (
        "import sys, jitgrad\n"
        "f = jitgrad.compile(lambda x, w: (jitgrad.tanh(x * w) + w).sum())\n"
        "x = jitgrad.ones(8, requires_grad=True); w = jitgrad.ones(8, requires_grad=True)\n"
        "f(x, w).backward()\n"
        "v = next(iter(f.variants.values()))\n"
        "kernels = list(v.forward.kernels.values()) + list(v.backward.kernels.values())\n"
        "print(sum(k.stats.cache_misses.get(s, 0) for k in kernels for s in k.signatures),"
        " sum(sum(k.stats.cache_hits.values()) for k in kernels))\n")
    env = dict(os.environ, JITGRAD_CACHE_DIR=str(tmp_path))

    def run():
        out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=True)
        return [int(v) for v in out.stdout.split()]
    cold_misses, cold_hits = run()
    warm_misses, warm_hits = run()
    assert cold_misses > 0 and cold_hits == 0
    assert warm_misses == 0 and warm_hits > 0


def test_dynamic_reuses_kernels_for_new_sizes_without_limit():
    from compiler import cache
    compiled = jitgrad.compile(lambda x, w: (jitgrad.tanh(x) * w).sum(), dynamic=True,
                               max_variants=2)
    x, w = leaves(np.linspace(-1, 1, 3), np.ones(3))
    compiled(x, w).backward()
    built = cache.STATS["compiled_modules"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # no variant-limit warning in dynamic mode
        for n in (5, 9, 17, 33):
            x, w = leaves(np.linspace(-1, 1, n), np.ones(n))
            out = compiled(x, w)
            out.backward()
            np.testing.assert_allclose(out.item(), np.tanh(np.linspace(-1, 1, n)).sum(),
                                       atol=1e-12)
            np.testing.assert_allclose(x.grad.numpy(), 1 - np.tanh(np.linspace(-1, 1, n)) ** 2)
    assert cache.STATS["compiled_modules"] == built  # every new size reused the kernels
    assert all("fallback" != kind for kind, _ in compiled.events)


def test_hook_on_intermediate_is_a_graph_break():
    def f(x):
        y = x * 2
        y.register_hook(lambda g: g * 10)
        return (y * y).sum()
    compiled = jitgrad.compile(f)
    x, = leaves([1.0, 2.0])
    compiled(x).backward()
    x_eager, = leaves([1.0, 2.0])
    f(x_eager).backward()
    assert x.grad.tolist() == x_eager.grad.tolist()
    assert "a hook on an intermediate tensor" in dict(compiled.events)["graph break"]


def test_backward_kernel_that_fails_to_build_falls_back_exactly(monkeypatch):
    from compiler.executor import Program
    compiled = jitgrad.compile(lambda x, w: (jitgrad.sin(x) * w).sum())
    x, w = leaves([0.1, 0.2, 0.3], [1.0, 2.0, 3.0])
    y = compiled(x, w)
    variant = next(iter(compiled.variants.values()))

    def broken(self, arrays):
        raise RuntimeError("simulated Numba build failure")
    monkeypatch.setattr(Program, "run", broken)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cos([0.1, 0.2, 0.3]) * [1.0, 2.0, 3.0])
    np.testing.assert_allclose(w.grad.numpy(), np.sin([0.1, 0.2, 0.3]))
    assert variant.backward_failed.startswith("RuntimeError: simulated")
    assert any(kind == "fallback" and "backward runs eagerly" in text
               for kind, text in compiled.events)


def test_buffer_pool_reuses_only_what_nothing_refers_to():
    # Large kernel outputs come from a pool: one a result still refers to is never handed out
    # again (the kept result keeps its values); once dropped, its buffer is reused.
    n = 1 << 19                                   # 2 MiB of float32: above the pool's minimum
    compiled = jitgrad.compile(lambda x, w: jitgrad.tanh(x * w) + x)
    x = jitgrad.tensor(np.linspace(-1, 1, n, dtype=np.float32))
    first = compiled(x, jitgrad.tensor(np.float32(2.0)))
    kept = first.numpy().copy()
    view = first[::2]                             # a view keeps the buffer referenced too
    del first
    second = compiled(x, jitgrad.tensor(np.float32(3.0)))
    np.testing.assert_array_equal(view.numpy(), kept[::2])
    np.testing.assert_allclose(second.numpy(), np.tanh(x.numpy() * 3) + x.numpy(), rtol=1e-6)
    variant = next(iter(compiled.variants.values()))
    pool = variant.forward.pool
    assert sum(len(a) for a in pool.arrays.values()) == 2
    del view, second
    compiled(x, jitgrad.tensor(np.float32(4.0)))
    assert sum(len(a) for a in pool.arrays.values()) == 2     # reused, not grown


# -- .grad takes a compiled backward's fresh gradient without a copy, never a shared one -------
def test_first_grad_is_taken_without_copy_and_accumulates_like_eager():
    def f(x, w):
        return (jitgrad.sin(x) * w).sum()
    compiled = jitgrad.compile(f)
    values = ([0.1, 0.2, 0.3], [1.0, -1.0, 0.5])
    for fn in (f, compiled):
        x, w = leaves(*values)
        loss = fn(x, w)
        loss.backward(retain_graph=True)
        first = x.grad
        first_values = first.numpy().copy()
        loss.backward()                       # accumulates into the same .grad, in place
        assert x.grad is first
        np.testing.assert_allclose(x.grad.numpy(), 2 * first_values, rtol=1e-12)
        np.testing.assert_allclose(first_values, np.cos(values[0]) * values[1], rtol=1e-12)
        np.testing.assert_allclose(w.grad.numpy(), 2 * np.sin(values[0]), rtol=1e-12)


def test_one_gradient_array_for_two_leaves_is_copied_for_each():
    # d/da and d/db of (a + b).sum() are the same value: each .grad must get its own array
    compiled = jitgrad.compile(lambda a, b: (a + b).sum())
    a, b = leaves([1.0, 2.0], [3.0, 4.0])
    compiled(a, b).backward()
    a.grad.add_(10.0)
    np.testing.assert_array_equal(a.grad.numpy(), [11.0, 11.0])
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])


def test_a_gradient_a_hook_kept_is_not_accumulated_into():
    compiled = jitgrad.compile(lambda x: (x * x).sum())
    x, = leaves([1.0, 2.0])
    seen = []
    x.register_hook(seen.append)
    loss = compiled(x)
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(seen[0].numpy(), [2.0, 4.0])    # as PyTorch: unchanged
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])
