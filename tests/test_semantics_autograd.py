"""Semantics: backward / autograd.grad, the graph error contract, retain_grad, hooks, higher
order gradients and grad mode (no_grad / enable_grad / set_grad_enabled)."""
import re
import warnings

import numpy as np
import pytest


def close(t, expected, tol=1e-5):
    np.testing.assert_allclose(np.asarray(t.detach().numpy(), dtype=np.float64), expected,
                               rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- backward

def test_backward_simple_and_accumulates(T):
    x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0, 6.0]
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0, 9.0]
    assert x.grad.requires_grad is False
    assert x.grad.grad_fn is None


def test_backward_with_gradient_argument(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    y = x * T.tensor([3.0, 5.0])
    y.backward(T.tensor([1.0, 10.0]))
    assert x.grad.tolist() == [3.0, 50.0]
    x.grad = None
    y2 = x * 2
    y2.backward(gradient=T.tensor([1.0, 1.0]))
    assert x.grad.tolist() == [2.0, 2.0]


def test_float64_gradient_cast_to_float32_output(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.backward(T.tensor([1.0, 1.0], dtype=T.float64))
    assert x.grad.dtype == T.float32
    assert x.grad.tolist() == [2.0, 2.0]


def test_backward_one_element_any_dims(T):
    x = T.tensor([3.0], requires_grad=True)
    (x * 2).backward()
    assert x.grad.tolist() == [2.0]
    w = T.tensor([[4.0]], requires_grad=True)
    (w * w).backward()
    assert w.grad.tolist() == [[8.0]]


def test_backward_non_scalar_raises(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        T.autograd.grad(x * 2, x)


def test_backward_no_grad_fn_raises(T):
    c = T.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad and does not have a grad_fn"):
        c.sum().backward()
    x = T.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="element 1 of tensors does not require grad and does not have a grad_fn"):
        T.autograd.backward([x.sum(), c.sum()])
    with T.no_grad():
        y = x * 2
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad"):
        y.backward()


def test_backward_twice(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    y = (x ** 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time") as ei:
        y.backward()
    assert "Specify retain_graph=True" in str(ei.value)


@pytest.mark.parametrize("fn,grad", [
    (lambda a: a + 1, [1.0, 1.0]),
    (lambda a: a - 2, [1.0, 1.0]),
    (lambda a: -a, [-1.0, -1.0]),
    (lambda a: a.clone(), [1.0, 1.0]),
    (lambda a: a.view(2, 1), [1.0, 1.0]),
    (lambda a: a[0], [1.0, 0.0]),
    (lambda a: a[1:], [0.0, 1.0]),
], ids=["add", "sub", "neg", "clone", "view", "int_index", "slice"])
def test_second_backward_without_saved_values_is_fine(T, fn, grad):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    c = fn(a).sum()
    c.backward()
    c.backward()
    assert a.grad.tolist() == [2 * g for g in grad]


@pytest.mark.parametrize("fn", [
    lambda T, a: a ** 2,
    lambda T, a: a * 1,  # torch's MulBackward0 saves the wrapped scalar
    lambda T, a: a[[0, 1]],
    lambda T, a: a[T.tensor([0])],
    lambda T, a: a[a > 1],
], ids=["pow", "mul_scalar", "list_index", "tensor_index", "mask_index"])
def test_second_backward_with_saved_values_raises(T, fn):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    c = fn(T, a).sum()
    c.backward()
    with pytest.raises(RuntimeError, match=re.escape("Trying to backward through the graph a second time")):
        c.backward()


def test_retain_graph(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    y = (x ** 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]


def test_backward_shape_mismatch(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(T.ones(3))
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        T.autograd.grad(x * 2, x, grad_outputs=T.ones(3))


def test_backward_inputs_argument(T):
    a = T.tensor([1.0], requires_grad=True)
    b = T.tensor([2.0], requires_grad=True)
    (a * b).sum().backward(inputs=[a])
    assert a.grad.tolist() == [2.0]
    assert b.grad is None
    (a * b).sum().backward(inputs=b)
    assert b.grad.tolist() == [1.0]
    with pytest.raises(RuntimeError, match="cannot be empty"):
        (a * b).sum().backward(inputs=[])


def test_autograd_backward_function(T):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    b = T.tensor([3.0], requires_grad=True)
    T.autograd.backward([a * 2, (b * b).sum()], grad_tensors=[T.tensor([1.0, 1.0]), T.tensor(1.0)])
    assert a.grad.tolist() == [2.0, 2.0]
    assert b.grad.tolist() == [6.0]
    T.autograd.backward((a ** 2).sum(), inputs=[a])
    assert a.grad.tolist() == [4.0, 6.0]
    y = (b ** 3).sum()
    T.autograd.backward(y, retain_graph=True)
    T.autograd.backward(y)
    assert b.grad.tolist() == [60.0]


def test_retain_variables_is_a_type_error(T):
    x = T.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'retain_variables'"):
        (x * 2).sum().backward(retain_variables=True)


# ----------------------------------------------------------------------------- autograd.grad

def test_grad_basic(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    y = T.tensor([3.0], requires_grad=True)
    gx, gy = T.autograd.grad((x * x).sum() * y.sum(), [x, y])
    assert gx.tolist() == [6.0, 12.0] and gy.tolist() == [5.0]
    assert x.grad is None and y.grad is None
    (g,) = T.autograd.grad(x * 3, x, grad_outputs=T.tensor([1.0, 2.0]))
    assert g.tolist() == [3.0, 6.0]
    (g,) = T.autograd.grad([x.sum(), (x * x).sum()], x)
    assert g.tolist() == [3.0, 5.0]


def test_grad_does_not_require_grad(T):
    x = T.tensor([1.0], requires_grad=True)
    c = T.tensor([1.0])
    with pytest.raises(RuntimeError, match="One of the differentiated Tensors does not require grad"):
        T.autograd.grad(x.sum(), [c])
    with pytest.raises(RuntimeError, match="does not require grad"):
        T.autograd.grad(c.sum(), [x])


def test_grad_allow_unused(T):
    x = T.tensor([1.0], requires_grad=True)
    z = T.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Set allow_unused=True"):
        T.autograd.grad((x * 2).sum(), [x, z])
    gx, gz = T.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)
    assert gx.tolist() == [2.0] and gz is None


def test_grad_empty_inputs(T):
    x = T.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=re.escape("`inputs` argument to `grad()` cannot be empty.")):
        T.autograd.grad((x * 2).sum(), [])


def test_grad_retain_graph(T):
    x = T.tensor([2.0], requires_grad=True)
    y = (x ** 3).sum()
    (g1,) = T.autograd.grad(y, x, retain_graph=True)
    (g2,) = T.autograd.grad(y, x)
    assert g1.tolist() == [12.0] and g2.tolist() == [12.0]
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        T.autograd.grad(y, x)


def test_grad_create_graph_third_order(T):
    x = T.tensor([2.0], requires_grad=True)
    y = (x ** 4).sum()
    (g1,) = T.autograd.grad(y, x, create_graph=True)
    assert g1.tolist() == [32.0] and g1.requires_grad
    (g2,) = T.autograd.grad(g1.sum(), x, create_graph=True)
    assert g2.tolist() == [48.0]
    (g3,) = T.autograd.grad(g2.sum(), x, create_graph=True)
    assert g3.tolist() == [48.0]
    (g4,) = T.autograd.grad(g3.sum(), x)
    assert g4.tolist() == [24.0]
    assert g4.requires_grad is False


def test_grad_create_graph_mixed_functions(T):
    x = T.tensor(0.5, requires_grad=True)
    y = T.sin(x) * T.exp(x)
    (d1,) = T.autograd.grad(y, x, create_graph=True)
    (d2,) = T.autograd.grad(d1, x, create_graph=True)
    (d3,) = T.autograd.grad(d2, x)
    e, s, c = np.exp(0.5), np.sin(0.5), np.cos(0.5)
    assert d1.item() == pytest.approx(e * (s + c), rel=1e-5)
    assert d2.item() == pytest.approx(2 * e * c, rel=1e-5)
    assert d3.item() == pytest.approx(2 * e * (c - s), rel=1e-5)


def test_backward_create_graph_double_backward(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optional reference-cycle warning
        (x ** 3).sum().backward(create_graph=True)
    g = x.grad
    assert g.tolist() == [3.0, 12.0] and g.requires_grad
    (h,) = T.autograd.grad(g.sum(), x)
    assert h.tolist() == [6.0, 12.0]


def test_backward_create_graph_warning_optional(T):
    x = T.tensor([1.0], requires_grad=True)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        (x * x).sum().backward(create_graph=True)
    # optional in jitgrad; when emitted it must be a UserWarning about a reference cycle
    for w in rec:
        if "reference cycle" in str(w.message):
            assert issubclass(w.category, UserWarning)
    assert x.grad.tolist() == [2.0]


def test_autograd_backward_create_graph(T):
    x = T.tensor([2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        T.autograd.backward([(x ** 3).sum()], create_graph=True)
    assert x.grad.tolist() == [12.0] and x.grad.requires_grad
    (h,) = T.autograd.grad(x.grad.sum(), x)
    assert h.tolist() == [12.0]


# ----------------------------------------------------------------------------- retain_grad / .grad

def test_retain_grad(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    assert y.retains_grad is False and x.retains_grad is False
    y.retain_grad()
    assert y.retains_grad is True
    z = (y * y).sum()
    z.backward()
    assert y.grad.tolist() == [4.0, 8.0]
    assert x.grad.tolist() == [8.0, 16.0]
    x.retain_grad()  # no-op on a leaf
    assert x.retains_grad is False


def test_retain_grad_error(T):
    c = T.tensor([1.0])
    with pytest.raises(RuntimeError, match="can't retain_grad on Tensor that has requires_grad=False"):
        c.retain_grad()


def test_nonleaf_grad_warns(T):
    x = T.tensor([1.0], requires_grad=True)
    y = x * 2
    with pytest.warns(UserWarning, match="is not a leaf Tensor is being accessed"):
        assert y.grad is None


def test_is_leaf_and_grad_fn(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    c = T.tensor([1.0])
    y = x * 2
    assert x.is_leaf and c.is_leaf and not y.is_leaf
    assert x.grad_fn is None and c.grad_fn is None
    assert type(y.grad_fn).__name__ == "MulBackward0"
    assert type(T.sigmoid(x).grad_fn).__name__ == "SigmoidBackward0"
    assert type((x + 1).grad_fn).__name__ == "AddBackward0"
    assert type(x.sum().grad_fn).__name__ == "SumBackward0"
    m = T.ones(3, 4, requires_grad=True) * 1
    names = [type(m[key].grad_fn).__name__ for key in
             (0, (slice(None), 1), (slice(0, 2), 0), (0, slice(0, 2)), (0, None), None,
              (Ellipsis,), ([0, 1],), (0, [0, 1]))]
    assert names == ["SelectBackward0", "SelectBackward0", "SelectBackward0", "SliceBackward0",
                     "UnsqueezeBackward0", "UnsqueezeBackward0", "AliasBackward0",
                     "IndexBackward0", "IndexBackward0"]
    d = y.detach()
    assert d.grad_fn is None and d.is_leaf and d.requires_grad is False
    with T.no_grad():
        n = x * 2
    assert n.grad_fn is None and n.is_leaf and n.requires_grad is False


# ----------------------------------------------------------------------------- hooks

def test_hooks_order_and_replacement(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    calls = []

    def h1(g):
        calls.append(("h1", g.tolist()))
        return g * 10

    def h2(g):
        calls.append(("h2", g.tolist()))

    def h3(g):
        calls.append(("h3", g.tolist()))
        return g + 1

    x.register_hook(h1)
    x.register_hook(h2)
    x.register_hook(h3)
    (x * 3).sum().backward()
    assert calls == [("h1", [3.0, 3.0]), ("h2", [30.0, 30.0]), ("h3", [30.0, 30.0])]
    assert x.grad.tolist() == [31.0, 31.0]


def test_hook_handle_remove(T):
    x = T.tensor([1.0], requires_grad=True)
    h = x.register_hook(lambda g: g * 100)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [200.0]
    h.remove()
    x.grad = None
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0]


def test_hook_on_intermediate(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    seen = []
    y.register_hook(lambda g: seen.append(g.tolist()))
    y.register_hook(lambda g: g * 2)
    (y * T.tensor([1.0, 3.0])).sum().backward()
    assert seen == [[1.0, 3.0]]
    assert x.grad.tolist() == [4.0, 24.0]


def test_hook_with_retain_grad_sees_hooked_value(T):
    x = T.tensor([1.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.register_hook(lambda g: g * 5)
    (y * 3).sum().backward()
    assert y.grad.tolist() == [15.0]
    assert x.grad.tolist() == [30.0]


def test_hook_on_non_requires_grad_errors(T):
    c = T.tensor([1.0])
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require gradient"):
        c.register_hook(lambda g: g)


# ----------------------------------------------------------------------------- grad mode

def test_no_grad_context(T):
    x = T.tensor([1.0], requires_grad=True)
    assert T.is_grad_enabled() is True
    with T.no_grad():
        assert T.is_grad_enabled() is False
        y = x * 2
    assert T.is_grad_enabled() is True
    assert y.requires_grad is False and y.grad_fn is None
    assert (x * 2).requires_grad


def test_no_grad_decorator_and_call(T):
    x = T.tensor([1.0], requires_grad=True)

    @T.no_grad()
    def f(a):
        return a * 2, T.is_grad_enabled()

    y, mode = f(x)
    assert mode is False and y.requires_grad is False
    g = T.no_grad(lambda a: (a * 3, T.is_grad_enabled()))
    y2, mode2 = g(x)
    assert mode2 is False and y2.requires_grad is False
    assert y2.tolist() == [3.0]
    assert T.is_grad_enabled() is True


def test_enable_grad_forms(T):
    x = T.tensor([1.0], requires_grad=True)

    @T.enable_grad()
    def f(a):
        return a * 2

    @T.enable_grad
    def g(a):
        return a * 3

    with T.no_grad():
        with T.enable_grad():
            assert T.is_grad_enabled() is True
            y = x * 2
        assert T.is_grad_enabled() is False
        assert f(x).requires_grad is True
        assert g(x).requires_grad is True
        assert (x * 2).requires_grad is False
    assert y.requires_grad is True


def test_set_grad_enabled_forms(T):
    x = T.tensor([1.0], requires_grad=True)
    try:
        T.set_grad_enabled(False)
        assert T.is_grad_enabled() is False
        assert (x * 2).requires_grad is False
        T.set_grad_enabled(True)
        assert T.is_grad_enabled() is True
        with T.set_grad_enabled(False):
            assert (x * 2).requires_grad is False
        assert T.is_grad_enabled() is True
        with T.no_grad():
            with T.set_grad_enabled(True):
                assert (x * 2).requires_grad is True
            assert T.is_grad_enabled() is False

        @T.set_grad_enabled(False)
        def f(a):
            return a * 2

        assert f(x).requires_grad is False
        assert T.is_grad_enabled() is True
    finally:
        T.set_grad_enabled(True)


def test_grad_mode_restored_after_exception(T):
    with pytest.raises(ValueError):
        with T.no_grad():
            raise ValueError("x")
    assert T.is_grad_enabled() is True

    @T.no_grad()
    def f():
        raise KeyError("k")

    with pytest.raises(KeyError):
        f()
    assert T.is_grad_enabled() is True
    with T.no_grad():
        with pytest.raises(ValueError):
            with T.enable_grad():
                raise ValueError("y")
        assert T.is_grad_enabled() is False
    assert T.is_grad_enabled() is True


def test_grad_mode_decorators_on_generators(T):
    @T.no_grad()
    def gen():
        for _ in range(2):
            yield T.is_grad_enabled()

    @T.enable_grad()
    def gen2():
        yield T.is_grad_enabled()

    it = gen()
    assert next(it) is False
    assert T.is_grad_enabled() is True  # restored between steps
    assert next(it) is False
    assert list(it) == []
    with T.no_grad():
        assert list(gen2()) == [True]
        assert T.is_grad_enabled() is False
    assert T.is_grad_enabled() is True
