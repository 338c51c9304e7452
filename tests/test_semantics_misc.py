"""Semantics: operators (incl. reflected and augmented forms), comparisons, math functions and
their method forms, reductions, gradients at kinks and ties, thread-local grad mode,
inference_mode, optim.SGD / optim.Adam, range."""
import math
import threading
import warnings

import numpy as np
import pytest


def close(t, expected, tol=1e-5):
    np.testing.assert_allclose(np.asarray(t.detach().numpy(), dtype=np.float64), expected,
                               rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- operators

def test_binary_operators_values_and_grads(T):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    b = T.tensor([3.0, 4.0], requires_grad=True)
    close(a + b, [4.0, 6.0])
    close(a - b, [-2.0, -2.0])
    close(a * b, [3.0, 8.0])
    close(a / b, [1 / 3, 0.5])
    close(a ** b, [1.0, 16.0])
    close(-a, [-1.0, -2.0])
    assert (a @ b).item() == 11.0
    y = (a + b) + (a - b) * 2 + a * b + a / b + a ** b + (-a) + a @ b
    y.sum().backward()
    # a @ b is a scalar broadcast over both elements, so its gradient counts twice
    ga = [1 + 2 + 3 + 1 / 3 + 3 * 1 ** 2 - 1 + 2 * 3, 1 + 2 + 4 + 1 / 4 + 4 * 2 ** 3 - 1 + 2 * 4]
    gb = [1 - 2 + 1 - 1 / 9 + 0.0 + 2 * 1, 1 - 2 + 2 - 2 / 16 + 16 * math.log(2) + 2 * 2]
    close(a.grad, ga)
    close(b.grad, gb)


def test_reflected_scalar_operators(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    close(2 + x, [3.0, 4.0])
    close(2 - x, [1.0, 0.0])
    close(2 * x, [2.0, 4.0])
    close(2 / x, [2.0, 1.0])
    close(2 ** x, [2.0, 4.0])
    (2 - x).sum().backward()
    assert x.grad.tolist() == [-1.0, -1.0]
    x.grad = None
    (2 ** x).sum().backward()
    close(x.grad, [2 * math.log(2), 4 * math.log(2)])
    x.grad = None
    (2 / x).sum().backward()
    close(x.grad, [-2.0, -0.5])
    assert type((2 - x).grad_fn).__name__ == "RsubBackward1"


def test_zero_pow_tensor(T):
    b = T.tensor([-1.0, 0.0, 1.0], requires_grad=True)
    y = 0 ** b
    assert y.tolist() == [math.inf, 1.0, 0.0]
    y.sum().backward()
    assert b.grad.tolist() == [-math.inf, 0.0, 0.0]
    b2 = T.tensor([-1.0, 0.0, 1.0], requires_grad=True)
    T.pow(0.0, b2).sum().backward()
    assert b2.grad.tolist() == [-math.inf, 0.0, 0.0]


def test_no_numpy_warnings_at_singularities(T):
    # torch computes inf / nan silently; a NumPy RuntimeWarning must not leak out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = T.tensor([-1.0, 0.0, 1.0], requires_grad=True)
        (0 ** b).sum().backward()
        x = T.tensor([0.0, 1.0], requires_grad=True)
        (T.sqrt(x) + T.log(x)).sum().backward()
        assert x.grad.tolist() == [math.inf, 1.5]
        assert (1 / T.tensor([0.0, -0.0])).tolist() == [math.inf, -math.inf]
        assert T.log(T.tensor([0.0])).tolist() == [-math.inf]
        assert math.isnan(T.log(T.tensor([-1.0])).item())


def test_augmented_assignment_on_nonleaf_grad(T):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    y = a * 1
    y += 1
    y *= a
    y -= T.tensor([1.0, 1.0])
    assert y.tolist() == [1.0, 5.0]
    y.sum().backward()
    assert a.grad.tolist() == [3.0, 5.0]


def test_comparisons(T):
    x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    gt = x > 1.5
    eq = x == T.tensor([1.0, 0.0, 3.0])
    assert gt.dtype == T.bool and eq.dtype == T.bool
    assert gt.tolist() == [False, True, True]
    assert eq.tolist() == [True, False, True]
    assert gt.requires_grad is False and gt.grad_fn is None
    assert gt.sum().item() == 2
    assert eq.sum().dtype == T.int64
    assert (x < 2).tolist() == [True, False, False]
    assert (x >= 2).tolist() == [False, True, True]
    assert (x != 2).tolist() == [True, False, True]


# ----------------------------------------------------------------------------- math functions

FUNCS = [
    ("exp", lambda v: math.exp(v), lambda v: math.exp(v)),
    ("log", lambda v: math.log(v), lambda v: 1 / v),
    ("sin", lambda v: math.sin(v), lambda v: math.cos(v)),
    ("cos", lambda v: math.cos(v), lambda v: -math.sin(v)),
    ("tanh", lambda v: math.tanh(v), lambda v: 1 - math.tanh(v) ** 2),
    ("sigmoid", lambda v: 1 / (1 + math.exp(-v)), lambda v: math.exp(-v) / (1 + math.exp(-v)) ** 2),
    ("relu", lambda v: max(v, 0.0), lambda v: 1.0 if v > 0 else 0.0),
    ("sqrt", lambda v: math.sqrt(v), lambda v: 0.5 / math.sqrt(v)),
    ("abs", lambda v: abs(v), lambda v: 1.0 if v > 0 else -1.0),
]


@pytest.mark.parametrize("name,f,df", FUNCS, ids=[f[0] for f in FUNCS])
@pytest.mark.parametrize("form", ["function", "method"])
def test_unary_functions(T, name, f, df, form):
    vals = [0.5, 1.5, 2.0] if name in ("log", "sqrt") else [-1.5, 0.5, 2.0]
    x = T.tensor(vals, requires_grad=True)
    y = getattr(T, name)(x) if form == "function" else getattr(x, name)()
    close(y, [f(v) for v in vals])
    y.sum().backward()
    close(x.grad, [df(v) for v in vals])


def test_grad_fn_names_of_math(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    names = {
        "ExpBackward0": x.exp(), "LogBackward0": x.log(), "TanhBackward0": x.tanh(),
        "ReluBackward0": x.relu(), "PowBackward0": x ** 2, "DivBackward0": x / 2,
        "NegBackward0": -x, "SubBackward0": x - 1, "MeanBackward0": x.mean(),
        "SqrtBackward0": x.sqrt(), "AbsBackward0": x.abs(), "SinBackward0": x.sin(),
        "CosBackward0": x.cos(),
    }
    for name, t in names.items():
        assert type(t.grad_fn).__name__ == name


def test_pow_neg_mul_methods(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    close(x.pow(3), [1.0, 8.0])
    close(T.pow(x, 2), [1.0, 4.0])
    close(x.neg(), [-1.0, -2.0])
    close(x.mul(3), [3.0, 6.0])
    close(x.mul(T.tensor([2.0, 5.0])), [2.0, 10.0])
    (x.pow(3) + x.neg() + x.mul(x)).sum().backward()
    close(x.grad, [3 - 1 + 2, 12 - 1 + 4])


def test_where_and_clamp_gradients(T):
    x = T.tensor([-2.0, 0.5, 3.0], requires_grad=True)
    y = T.tensor([10.0, 20.0, 30.0], requires_grad=True)
    T.where(x > 0, x * 2, y).sum().backward()
    assert x.grad.tolist() == [0.0, 2.0, 2.0]
    assert y.grad.tolist() == [1.0, 0.0, 0.0]
    x.grad = None
    T.where(x > 0, x, 0.0).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0]


def test_matmul_cat_stack_gradients(T):
    a = T.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = T.tensor([[5.0], [6.0]], requires_grad=True)
    T.mm(a, b).sum().backward()
    assert a.grad.tolist() == [[5.0, 6.0], [5.0, 6.0]]
    assert b.grad.tolist() == [[4.0], [6.0]]
    p = T.tensor([1.0, 2.0], requires_grad=True)
    q = T.tensor([3.0], requires_grad=True)
    (T.cat([p, q], dim=0) * T.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert p.grad.tolist() == [1.0, 2.0] and q.grad.tolist() == [3.0]
    p.grad = None
    r = T.tensor([5.0, 6.0], requires_grad=True)
    (T.stack([p, r]) * T.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    assert p.grad.tolist() == [1.0, 2.0] and r.grad.tolist() == [3.0, 4.0]


# ----------------------------------------------------------------------------- reductions

def test_sum_mean(T):
    x = T.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert T.sum(x).item() == 21.0 and x.sum().shape == ()
    assert x.sum(dim=None).item() == 21.0 and x.mean(dim=None, keepdim=False).item() == 3.5
    assert T.sum(x, 0).tolist() == [5.0, 7.0, 9.0]
    assert x.sum(dim=1).tolist() == [6.0, 15.0]
    assert x.sum(dim=1, keepdim=True).shape == (2, 1)
    assert T.mean(x).item() == 3.5
    assert x.mean(dim=0).tolist() == [2.5, 3.5, 4.5]
    assert x.mean(dim=1, keepdim=True).tolist() == [[2.0], [5.0]]
    (x.sum(dim=0) * T.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    x.grad = None
    x.mean().backward()
    close(x.grad, [[1 / 6] * 3] * 2)
    assert T.tensor([1, 2]).sum().dtype == T.int64


def test_max_min_forms(T):
    x = T.tensor([[1.0, 5.0, 2.0], [4.0, 0.0, 6.0]])
    assert T.max(x).item() == 6.0 and x.max().shape == ()
    assert x.min().item() == 0.0
    # note: torch 2.13 rejects an explicit max(dim=None)/min(dim=None) (TypeError), so the
    # full reduction is only tested in the no-argument form
    r = T.max(x, 1)
    assert r.values.tolist() == [5.0, 6.0] and r.indices.tolist() == [1, 2]
    assert r[0].tolist() == [5.0, 6.0] and r[1].tolist() == [1, 2]
    assert r.indices.dtype == T.int64
    vals, idx = x.max(dim=0, keepdim=True)
    assert vals.tolist() == [[4.0, 5.0, 6.0]] and idx.tolist() == [[1, 0, 1]]
    mn = x.min(dim=1)
    assert mn.values.tolist() == [1.0, 0.0] and mn.indices.tolist() == [0, 1]
    assert T.max(x, 1, True).values.shape == (2, 1)
    e = T.max(T.tensor([1.0, 5.0]), T.tensor([3.0, 2.0]))
    assert e.tolist() == [3.0, 5.0]


# ----------------------------------------------------------------------------- kinks and ties

def test_relu_abs_at_zero(T):
    x = T.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    T.relu(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0]
    x.grad = None
    T.abs(x).sum().backward()
    assert x.grad.tolist() == [-1.0, 0.0, 1.0]


def test_clamp_gradient_inclusive_bounds(T):
    x = T.tensor([-2.0, -1.0, 0.0, 1.0, 2.0], requires_grad=True)
    T.clamp(x, -1.0, 1.0).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    x.grad = None
    x.clamp(min=-1.0).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]
    x.grad = None
    x.clamp(max=1.0).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]


def test_sqrt_grad_at_zero_is_inf(T):
    x = T.tensor([0.0, 4.0], requires_grad=True)
    T.sqrt(x).sum().backward()
    assert x.grad.tolist() == [math.inf, 0.25]


def test_full_max_min_split_ties(T):
    x = T.tensor([1.0, 3.0, 3.0], requires_grad=True)
    T.max(x).backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5]
    y = T.tensor([[1.0, 1.0], [1.0, 2.0]], requires_grad=True)
    y.min().backward()
    close(y.grad, [[1 / 3, 1 / 3], [1 / 3, 0.0]])


def test_elementwise_max_tie(T):
    a = T.tensor([1.0, 2.0, 5.0], requires_grad=True)
    b = T.tensor([1.0, 3.0, 4.0], requires_grad=True)
    T.max(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 0.0, 1.0]
    assert b.grad.tolist() == [0.5, 1.0, 0.0]


def test_max_dim_first_index_gets_gradient(T):
    x = T.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    r = T.max(x, 1)
    assert r.indices.tolist() == [1, 0]
    r.values.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    z = T.tensor([[4.0, 4.0]], requires_grad=True)
    z.min(dim=1, keepdim=True)[0].sum().backward()
    assert z.grad.tolist() == [[1.0, 0.0]]


# ----------------------------------------------------------------------------- grad mode threads / inference

def test_grad_mode_is_thread_local(T):
    ready = threading.Event()
    release = threading.Event()
    seen = {}

    def worker():
        with T.no_grad():
            seen["worker_inside"] = T.is_grad_enabled()
            ready.set()
            release.wait(5)

    th = threading.Thread(target=worker)
    th.start()
    assert ready.wait(5)
    try:
        assert T.is_grad_enabled() is True
        x = T.tensor([1.0], requires_grad=True)
        assert (x * 2).requires_grad is True
    finally:
        release.set()
        th.join(5)
    assert seen["worker_inside"] is False

    out = {}

    def worker2():
        out["mode"] = T.is_grad_enabled()
        x = T.tensor([1.0], requires_grad=True)
        out["rg"] = (x * 2).requires_grad

    with T.no_grad():
        th2 = threading.Thread(target=worker2)
        th2.start()
        th2.join(5)
    assert out == {"mode": True, "rg": True}


def test_inference_mode(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    with T.inference_mode():
        assert T.is_grad_enabled() is False
        y = x * 2
    assert T.is_grad_enabled() is True
    assert y.requires_grad is False and y.grad_fn is None
    assert y.tolist() == [2.0, 4.0]

    @T.inference_mode()
    def f(a):
        return a * 3

    assert f(x).requires_grad is False
    with T.inference_mode(False):
        assert T.is_grad_enabled() is True
        assert (x * 2).requires_grad is True


# ----------------------------------------------------------------------------- optim

def _train(T, make, steps=3):
    w = T.tensor([1.0, -2.0], requires_grad=True)
    b = T.tensor([0.5], requires_grad=True)
    opt = make(T, [w, b])
    for _ in range(steps):
        opt.zero_grad()
        loss = (w * w * T.tensor([1.0, 3.0])).sum() + ((b - 2) ** 2).sum()
        loss.backward()
        opt.step()
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    return w, b, opt


@pytest.mark.parametrize("make,w_exp,b_exp", [
    (lambda T, p: T.optim.SGD(p, lr=0.1), [0.512, -0.128], [1.232]),
    (lambda T, p: T.optim.SGD(p, lr=0.1, momentum=0.9), [0.062, 1.708], [1.907]),
    (lambda T, p: T.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
     [0.05819422006607056, 1.7098538875579834], [1.9033374786376953]),
    (lambda T, p: T.optim.Adam(p, lr=0.1),
     [0.7015863060951233, -1.7006233930587769], [0.7990971803665161]),
    (lambda T, p: T.optim.Adam(p, lr=0.1, betas=(0.8, 0.9), weight_decay=0.1),
     [0.7017192244529724, -1.700683355331421], [0.7989256978034973]),
], ids=["sgd", "sgd_momentum", "sgd_momentum_wd", "adam", "adam_betas_wd"])
def test_optimizers(T, make, w_exp, b_exp):
    w, b, opt = _train(T, make)
    close(w, w_exp, tol=2e-6)
    close(b, b_exp, tol=2e-6)
    assert w.grad is not None
    opt.zero_grad()
    # PyTorch >= 2.0: zero_grad() sets grads to None by default
    assert w.grad is None and b.grad is None


def test_optimizer_zero_grad_set_to_none_false(T):
    w = T.tensor([1.0, 2.0], requires_grad=True)
    opt = T.optim.SGD([w], lr=0.5)
    (w * w).sum().backward()
    opt.step()
    assert w.tolist() == [0.0, 0.0]
    opt.zero_grad(set_to_none=False)
    assert w.grad.tolist() == [0.0, 0.0]


# ----------------------------------------------------------------------------- range

def test_range_deprecated_optional(T):
    if not hasattr(T, "range"):
        pytest.skip("range is optional")
    with pytest.warns(UserWarning, match="range is deprecated"):
        r = T.range(0, 3)
    assert r.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert r.dtype == T.float32


def test_no_unexpected_warnings_in_plain_backward(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (x * x).sum().backward()
        assert x.grad.tolist() == [2.0, 4.0]


# ----------------------------------------------------------------------------- graph details

def test_leaf_hook_called_once_with_total_gradient(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    (x * 2 + x * x).sum().backward()
    assert seen == [[4.0, 6.0]]
    assert x.grad.tolist() == [4.0, 6.0]


def test_grad_wrt_intermediate_and_retain_grad_accumulates(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    out = (h * h).sum()
    (gh,) = T.autograd.grad(out, h, retain_graph=True)
    assert gh.tolist() == [6.0, 12.0]
    assert x.grad is None
    out.backward(retain_graph=True)
    out.backward()
    # torch's retain_grad also fires during autograd.grad: three accumulations of [6, 12]
    assert h.grad.tolist() == [18.0, 36.0]
    assert x.grad.tolist() == [36.0, 72.0]


def test_detach_and_requires_grad_propagation(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    c = T.tensor([1.0, 1.0])
    assert (x.detach() * 2).requires_grad is False
    assert (c * 2).requires_grad is False
    assert (c + x).requires_grad is True
    assert T.cat([c, x]).requires_grad is True
    assert T.where(c > 0, c, x).requires_grad is True
    assert (x > 1).requires_grad is False
    assert x.sum().item() == 3.0
