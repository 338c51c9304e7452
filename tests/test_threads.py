"""Threads (issue "Reliability", item 4): grad mode is per thread, concurrent backward passes on
separate graphs and concurrent calls of one compiled function (its first, compiling call and
later ones) give the single-threaded values and gradients."""
import threading

import numpy as np

import jitgrad

TIMEOUT = 120


def run_threads(targets):
    """Start each callable in its own thread behind a barrier; re-raise the first error."""
    barrier = threading.Barrier(len(targets))
    errors, results = [], [None] * len(targets)

    def body(i, target):
        try:
            barrier.wait(timeout=TIMEOUT)
            results[i] = target()
        except BaseException as error:  # noqa: BLE001 - reported to the main thread
            errors.append(error)
    threads = [threading.Thread(target=body, args=(i, t), daemon=True)
               for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive(), "thread did not finish"
    if errors:
        raise errors[0]
    return results


def test_grad_mode_is_per_thread():
    inside, entered, leave = [], threading.Event(), threading.Event()

    def in_no_grad():
        with jitgrad.no_grad():
            entered.set()
            assert leave.wait(TIMEOUT)
            x = jitgrad.ones(2, requires_grad=True)
            inside.append(((x * 2).requires_grad, jitgrad.is_grad_enabled()))

    t = threading.Thread(target=in_no_grad, daemon=True)
    t.start()
    try:
        assert entered.wait(TIMEOUT)
        # The other thread is inside no_grad; this one is not affected.
        assert jitgrad.is_grad_enabled()
        x = jitgrad.ones(2, requires_grad=True)
        assert (x * 2).requires_grad
        with jitgrad.set_grad_enabled(False):
            assert not jitgrad.is_grad_enabled()
            leave.set()
            t.join(TIMEOUT)
    finally:
        leave.set()
        t.join(TIMEOUT)
    assert not t.is_alive()
    assert inside == [(False, False)]          # ... and this thread's mode did not leak back
    assert jitgrad.is_grad_enabled()


def test_new_thread_starts_with_grad_enabled():
    with jitgrad.no_grad():
        (seen,) = run_threads([jitgrad.is_grad_enabled])
    assert seen is True


def _model(seed):
    rng = np.random.default_rng(seed)
    x = jitgrad.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    w = jitgrad.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    b = jitgrad.tensor(rng.standard_normal(3), requires_grad=True)
    return x, w, b


def _loss(x, w, b):
    h = jitgrad.tanh(x @ w + b)
    return (h * h).sum() + jitgrad.exp(x).mean() * w.sum()


def _grads(seed, repeat=1):
    x, w, b = _model(seed)
    out = []
    for _ in range(repeat):
        x.grad = w.grad = b.grad = None
        loss = _loss(x, w, b)
        loss.backward()
        out.append((loss.item(), x.grad.numpy().copy(), w.grad.numpy().copy(),
                    b.grad.numpy().copy()))
    return out


def _same(got, want):
    for g_run, w_run in zip(got, want):
        assert g_run[0] == w_run[0]
        for g, w in zip(g_run[1:], w_run[1:]):
            np.testing.assert_array_equal(g, w)


def test_concurrent_backward_on_separate_graphs():
    seeds = [1, 2, 3, 4]
    want = [_grads(s, repeat=20) for s in seeds]
    got = run_threads([lambda s=s: _grads(s, repeat=20) for s in seeds])
    for g, w in zip(got, want):
        _same(g, w)


def test_concurrent_backward_through_a_shared_leaf():
    # Two threads, two graphs over one leaf: each uses autograd.grad, so nothing is shared.
    w = jitgrad.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)

    def grad_of(scale):
        out = []
        for _ in range(20):
            (g,) = jitgrad.autograd.grad((jitgrad.sin(w * scale) ** 2).sum(), [w])
            out.append(g.numpy().copy())
        return out
    got = run_threads([lambda: grad_of(1.5), lambda: grad_of(-0.5)])
    for scale, runs in zip((1.5, -0.5), got):
        want = 2 * np.sin(w.detach().numpy() * scale) * np.cos(w.detach().numpy() * scale) * scale
        for g in runs:
            np.testing.assert_allclose(g, want, rtol=1e-12)
    assert w.grad is None


def _compiled_f(x, w):
    return (jitgrad.tanh(jitgrad.exp(jitgrad.sin(x) * w) * x + w) * 0.875).sum()


def _run_compiled(fn, seed, repeat):
    rng = np.random.default_rng(seed)
    xv, wv = rng.standard_normal(7), rng.standard_normal(7)
    out = []
    for _ in range(repeat):
        x = jitgrad.tensor(xv, requires_grad=True)
        w = jitgrad.tensor(wv, requires_grad=True)
        y = fn(x, w)
        y.backward()
        out.append((y.item(), x.grad.numpy(), w.grad.numpy()))
    return out


def _close(got, want):
    for g_run, w_run in zip(got, want):
        np.testing.assert_allclose(g_run[0], w_run[0], rtol=1e-12)
        for g, w in zip(g_run[1:], w_run[1:]):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)


def test_one_compiled_function_from_two_threads():
    compiled = jitgrad.compile(_compiled_f)
    seeds = [10, 11]
    want = [_run_compiled(_compiled_f, s, 1) * 5 for s in seeds]
    # First call compiles in both threads at once; later calls run the cached variant.
    got = run_threads([lambda s=s: _run_compiled(compiled, s, 5) for s in seeds])
    for g, w in zip(got, want):
        _close(g, w)
    assert all(kind != "fallback" for kind, _ in compiled.events), compiled.events
    got = run_threads([lambda s=s: _run_compiled(compiled, s, 5) for s in seeds])
    for g, w in zip(got, want):
        _close(g, w)


def test_compiled_function_in_no_grad_thread_and_grad_thread():
    compiled = jitgrad.compile(_compiled_f)
    want = _run_compiled(_compiled_f, 3, 1)[0]

    def no_grad_caller():
        x = jitgrad.tensor(np.random.default_rng(3).standard_normal(7))
        values = []
        with jitgrad.no_grad():
            for _ in range(5):
                x_rg = jitgrad.tensor(x.numpy(), requires_grad=True)
                w_rg = jitgrad.tensor(np.random.default_rng(3).standard_normal(14)[7:],
                                      requires_grad=True)
                y = compiled(x_rg, w_rg)
                values.append((y.item(), y.requires_grad))
        return values
    got_ng, got_g = run_threads([no_grad_caller, lambda: _run_compiled(compiled, 3, 5)])
    for value, requires_grad in got_ng:
        np.testing.assert_allclose(value, want[0], rtol=1e-12)
        assert requires_grad is False
    _close(got_g, [want] * 5)
