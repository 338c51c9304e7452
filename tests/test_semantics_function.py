"""Semantics: custom autograd.Function (ctx API, grad mode inside forward/backward, naming,
non-tensor arguments and outputs, error contract), autograd.gradcheck, autograd.functional and
the legacy autograd.Variable."""
import re
import warnings

import numpy as np
import pytest


def close(t, expected, tol=1e-5):
    np.testing.assert_allclose(np.asarray(t.detach().numpy(), dtype=np.float64), expected,
                               rtol=tol, atol=tol)


def make_square(T):
    class Square(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    return Square


def test_function_basic_and_name(T):
    Square = make_square(T)
    x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = Square.apply(x)
    assert y.tolist() == [1.0, 4.0, 9.0]
    assert y.requires_grad and not y.is_leaf
    assert type(y.grad_fn).__name__ == "SquareBackward"
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 4.0, 6.0]


def test_function_grad_fn_name_uses_class_name(T):
    class MyFn(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    y = MyFn.apply(T.tensor([1.0], requires_grad=True))
    assert type(y.grad_fn).__name__ == "MyFnBackward"


def test_function_ctx_attributes_and_non_tensor_args(T):
    class Scale(T.autograd.Function):
        @staticmethod
        def forward(ctx, x, factor, name):
            ctx.factor = factor
            ctx.name = name
            ctx.needs = tuple(ctx.needs_input_grad)
            return x * factor

        @staticmethod
        def backward(ctx, g):
            assert ctx.name == "s"
            return g * ctx.factor, None, None

    x = T.tensor([1.0, 2.0], requires_grad=True)
    y = Scale.apply(x, 3.0, "s")
    assert y.grad_fn is not None
    assert y.tolist() == [3.0, 6.0]
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_needs_input_grad(T):
    seen = {}

    class F(T.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, k):
            seen["fwd"] = tuple(ctx.needs_input_grad)
            return a * b * k

        @staticmethod
        def backward(ctx, g):
            seen["bwd"] = tuple(ctx.needs_input_grad)
            return None, None, None

    a = T.tensor([1.0], requires_grad=True)
    b = T.tensor([2.0])
    F.apply(a, b, 2.0).sum().backward()
    assert seen["fwd"] == (True, False, False)
    assert seen["bwd"] == (True, False, False)
    assert a.grad is None  # backward returned None for it


def test_function_forward_runs_without_grad_mode(T):
    state = {}

    class F(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            state["fwd"] = T.is_grad_enabled()
            y = x * 2
            state["inner_requires_grad"] = y.requires_grad
            return y

        @staticmethod
        def backward(ctx, g):
            state["bwd"] = T.is_grad_enabled()
            return g * 2

    x = T.tensor([1.0], requires_grad=True)
    y = F.apply(x)
    assert state["fwd"] is False
    assert state["inner_requires_grad"] is False
    assert T.is_grad_enabled() is True
    y.sum().backward()
    assert state["bwd"] is False
    assert T.is_grad_enabled() is True
    y2 = F.apply(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optional reference-cycle warning
        y2.sum().backward(create_graph=True)
    assert state["bwd"] is True


def test_function_double_backward_with_create_graph(T):
    class Cube(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x ** 2 * g

    x = T.tensor([2.0], requires_grad=True)
    (g1,) = T.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    assert g1.tolist() == [12.0] and g1.requires_grad
    (g2,) = T.autograd.grad(g1.sum(), x)
    assert g2.tolist() == [12.0]


def test_function_all_outputs_require_grad(T):
    class Split(T.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * 2, b * 3, 7

        @staticmethod
        def backward(ctx, ga, gb, gk):
            return ga * 2, gb * 3

    a = T.tensor([1.0], requires_grad=True)
    b = T.tensor([1.0])
    p, q, k = Split.apply(a, b)
    assert k == 7
    assert p.requires_grad and q.requires_grad
    assert p.tolist() == [2.0] and q.tolist() == [3.0]
    (p + q).sum().backward()
    assert a.grad.tolist() == [2.0]
    assert b.grad is None


def test_function_no_input_requires_grad(T):
    Square = make_square(T)
    y = Square.apply(T.tensor([3.0]))
    assert y.requires_grad is False and y.grad_fn is None
    assert y.tolist() == [9.0]


def test_function_under_no_grad(T):
    Square = make_square(T)
    x = T.tensor([3.0], requires_grad=True)
    with T.no_grad():
        y = Square.apply(x)
    assert y.requires_grad is False and y.grad_fn is None


def test_function_saved_tensors_freed(T):
    holder = {}

    class F(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            holder["ctx"] = ctx
            return x * 2

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 2

    x = T.tensor([1.0], requires_grad=True)
    y = F.apply(x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="after they have already been freed"):
        holder["ctx"].saved_tensors
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_function_saved_tensors_retained(T):
    Square = make_square(T)
    x = T.tensor([3.0], requires_grad=True)
    y = Square.apply(x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [12.0]


def test_function_wrong_grad_shape(T):
    class Bad(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g[:1]

    x = T.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="expected shape"):
        Bad.apply(x).sum().backward()


def test_function_wrong_number_of_grads(T):
    class Two(T.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g

    x = T.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=re.escape("returned an incorrect number of gradients (expected 2, got 1)")):
        Two.apply(x, x).sum().backward()


def test_function_exception_in_backward_propagates(T):
    class Boom(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            raise ValueError("boom from backward")

    x = T.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="boom from backward"):
        Boom.apply(x).sum().backward()


def _double_in_place(T):
    """A Function that doubles its input in place and marks it dirty."""
    class Double(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.mul_(2)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 2

    return Double


def test_mark_dirty_on_nonleaf(T):
    Double = _double_in_place(T)
    a = T.tensor([1.0, 2.0], requires_grad=True)
    y = a * 1
    r = Double.apply(y)
    assert r is y
    assert y.tolist() == [2.0, 4.0]
    assert type(y.grad_fn).__name__ == "DoubleBackward"
    (y * y).sum().backward()
    assert a.grad.tolist() == [8.0, 16.0]


def test_mark_dirty_on_leaf_errors(T):
    Double = _double_in_place(T)
    a = T.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=re.escape("a leaf Variable that requires grad has been used in an in-place operation.")):
        Double.apply(a)


def test_function_with_two_tensor_inputs(T):
    class MulAdd(T.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b + a

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return g * (b + 1), g * a

    a = T.tensor([1.0, 2.0], requires_grad=True)
    b = T.tensor([3.0, 4.0], requires_grad=True)
    MulAdd.apply(a, b).sum().backward()
    assert a.grad.tolist() == [4.0, 5.0]
    assert b.grad.tolist() == [1.0, 2.0]


# ----------------------------------------------------------------------------- gradcheck

def test_gradcheck_passes(T):
    Square = make_square(T)
    x = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)
    assert T.autograd.gradcheck(Square.apply, (x,)) is True
    assert T.autograd.gradcheck(lambda a, b: (a * b).sin(), (x, T.tensor([0.5, 0.3], dtype=T.float64, requires_grad=True)))


def test_gradcheck_detects_wrong_backward(T):
    class Wrong(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x ** 2

        @staticmethod
        def backward(ctx, g):
            return 2 * g

    x = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="Jacobian mismatch for output 0 with respect to input 0"):
        T.autograd.gradcheck(Wrong.apply, (x,))
    assert T.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False) is False
    np.testing.assert_allclose(x.detach().numpy(), [1.0, 2.0])


# ----------------------------------------------------------------------------- functional

def test_functional_jacobian(T):
    F = T.autograd.functional
    x = T.tensor([1.0, 2.0])
    close(F.jacobian(lambda v: v ** 3, x), [[3.0, 0.0], [0.0, 12.0]])
    ja, jb = F.jacobian(lambda a, b: a * b, (x, T.tensor([3.0, 4.0])))
    close(ja, [[3.0, 0.0], [0.0, 4.0]])
    close(jb, [[1.0, 0.0], [0.0, 2.0]])
    j = F.jacobian(lambda v: (v ** 2).sum(), x)
    assert tuple(j.shape) == (2,)
    close(j, [2.0, 4.0])


def test_functional_hessian(T):
    F = T.autograd.functional
    h = F.hessian(lambda v: (v ** 3).sum(), T.tensor([1.0, 2.0]))
    close(h, [[6.0, 0.0], [0.0, 12.0]])
    h2 = F.hessian(lambda a, b: (a * a * b).sum(), (T.tensor([1.0]), T.tensor([2.0])))
    close(h2[0][0], [[4.0]])
    close(h2[0][1], [[2.0]])
    close(h2[1][0], [[2.0]])
    close(h2[1][1], [[0.0]])


def test_functional_vjp_jvp_hvp(T):
    F = T.autograd.functional
    x = T.tensor([1.0, 2.0])
    out, v = F.vjp(lambda t: t ** 3, x, T.tensor([1.0, 1.0]))
    close(out, [1.0, 8.0])
    close(v, [3.0, 12.0])
    out, jv = F.jvp(lambda t: t ** 3, x, T.tensor([1.0, 0.0]))
    close(out, [1.0, 8.0])
    close(jv, [3.0, 0.0])
    val, hv = F.hvp(lambda t: (t ** 3).sum(), x, T.tensor([1.0, 1.0]))
    assert val.item() == pytest.approx(9.0)
    close(hv, [6.0, 12.0])


# ----------------------------------------------------------------------------- Variable

def test_variable_legacy(T):
    v = T.autograd.Variable(T.tensor([1.0, 2.0]), requires_grad=True)
    assert v.requires_grad and v.is_leaf
    (v * v).sum().backward()
    assert v.grad.tolist() == [2.0, 4.0]
    w = T.autograd.Variable(T.tensor([3.0]))
    assert w.requires_grad is False
    assert w.tolist() == [3.0]


def test_variable_volatile_warns(T):
    with pytest.warns(UserWarning, match="volatile was removed"):
        v = T.autograd.Variable(T.tensor([1.0]), volatile=True)
    assert v.requires_grad is False
    assert v.tolist() == [1.0]
