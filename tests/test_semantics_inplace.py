"""Semantics: in-place methods, the version counter, in-place ops on views (rebasing the base's
graph), .data / detach, requires_grad flags and assignment to .grad."""
import math
import re

import numpy as np
import pytest


def close(t, expected, tol=1e-5):
    np.testing.assert_allclose(np.asarray(t.detach().numpy(), dtype=np.float64), expected,
                               rtol=tol, atol=tol)


def sig(v):
    return 1.0 / (1.0 + math.exp(-v))


# ----------------------------------------------------------------------------- in-place methods

@pytest.mark.parametrize("op,expected", [
    (lambda T, x: x.add_(1), [2.0, 3.0, 4.0]),
    (lambda T, x: x.add_(T.tensor([1.0, 2.0, 3.0])), [2.0, 4.0, 6.0]),
    (lambda T, x: x.mul_(2), [2.0, 4.0, 6.0]),
    (lambda T, x: x.sub_(T.tensor([1.0, 1.0, 1.0])), [0.0, 1.0, 2.0]),
    (lambda T, x: x.div_(2), [0.5, 1.0, 1.5]),
    (lambda T, x: x.zero_(), [0.0, 0.0, 0.0]),
    (lambda T, x: x.fill_(7), [7.0, 7.0, 7.0]),
    (lambda T, x: x.copy_(T.tensor([9.0, 8.0, 7.0])), [9.0, 8.0, 7.0]),
    (lambda T, x: x.clamp_(1.5, 2.5), [1.5, 2.0, 2.5]),
    (lambda T, x: x.sigmoid_(), [sig(1.0), sig(2.0), sig(3.0)]),
    (lambda T, x: x.exp_(), [math.e, math.e ** 2, math.e ** 3]),
], ids=["add_", "add_t", "mul_", "sub_", "div_", "zero_", "fill_", "copy_", "clamp_",
        "sigmoid_", "exp_"])
def test_inplace_returns_self_and_bumps_version(T, op, expected):
    x = T.tensor([1.0, 2.0, 3.0])
    v0 = x._version
    r = op(T, x)
    assert r is x
    assert x._version == v0 + 1
    close(x, expected)


def test_augmented_assignment_is_inplace(T):
    x = T.tensor([1.0, 2.0])
    ref = x
    x += 1
    assert x is ref and x._version == 1
    x -= T.tensor([0.5, 0.5])
    x *= 2
    assert x is ref and x._version == 3
    assert x.tolist() == [3.0, 5.0]


def test_fresh_tensor_version_zero(T):
    assert T.tensor([1.0])._version == 0
    assert (T.tensor([1.0]) * 2)._version == 0


@pytest.mark.parametrize("op,grad", [
    (lambda T, y: y.add_(T.tensor([1.0, 1.0])), [2.0, 2.0]),
    (lambda T, y: y.mul_(T.tensor([3.0, 4.0])), [6.0, 8.0]),
    (lambda T, y: y.sub_(5), [2.0, 2.0]),
    (lambda T, y: y.div_(4), [0.5, 0.5]),
    (lambda T, y: y.zero_(), [0.0, 0.0]),
    (lambda T, y: y.fill_(3.0), [0.0, 0.0]),
    (lambda T, y: y.exp_(), [2 * math.exp(2.0), 2 * math.exp(4.0)]),
    (lambda T, y: y.sigmoid_(), [2 * sig(2.0) * (1 - sig(2.0)), 2 * sig(4.0) * (1 - sig(4.0))]),
    (lambda T, y: y.clamp_(2.0, 3.0), [2.0, 0.0]),
], ids=["add_", "mul_", "sub_", "div_", "zero_", "fill_", "exp_", "sigmoid_", "clamp_"])
def test_inplace_gradients_on_nonleaf(T, op, grad):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    y = a * 2
    op(T, y)
    assert y.requires_grad and not y.is_leaf
    y.sum().backward()
    close(a.grad, grad)


def test_copy_gradient(T):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    c = T.tensor([5.0, 6.0], requires_grad=True)
    y = a * 3
    y.copy_(c * c)
    assert y.tolist() == [25.0, 36.0]
    y.sum().backward()
    assert a.grad.tolist() == [0.0, 0.0]
    assert c.grad.tolist() == [10.0, 12.0]


def test_inplace_on_plain_tensor_with_grad_operand(T):
    c = T.tensor([2.0], requires_grad=True)
    x = T.tensor([3.0])
    x.mul_(c)
    assert x.requires_grad and x.grad_fn is not None and not x.is_leaf
    x.sum().backward()
    assert c.grad.tolist() == [3.0]


# ----------------------------------------------------------------------------- version errors

def test_modified_saved_tensor_error(T):
    a = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = a.sigmoid()
    y.mul_(2)
    with pytest.raises(RuntimeError) as ei:
        y.sum().backward()
    msg = str(ei.value)
    assert msg.startswith("one of the variables needed for gradient computation has been modified by an inplace operation")
    assert "is at version 1; expected version 0 instead" in msg


def test_modified_input_error_version_2(T):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    b = a * 1
    c = b * b
    b.add_(1)
    b.add_(1)
    with pytest.raises(RuntimeError, match="is at version 2; expected version 0 instead"):
        c.sum().backward()


def test_leaf_inplace_errors(T):
    a = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=re.escape("a leaf Variable that requires grad is being used in an in-place operation.")):
        a.add_(1)
    with pytest.raises(RuntimeError, match=re.escape("a leaf Variable that requires grad is being used in an in-place operation.")):
        a += 1
    with pytest.raises(RuntimeError, match=re.escape("a view of a leaf Variable that requires grad is being used in an in-place operation.")):
        a[0].mul_(2)
    with pytest.raises(RuntimeError, match=re.escape("a view of a leaf Variable that requires grad is being used in an in-place operation.")):
        a.view(3).zero_()
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad|a leaf Variable that requires grad"):
        a[0] = 5.0
    assert a._version == 0 and a.tolist() == [1.0, 2.0, 3.0]


def test_leaf_inplace_allowed_under_no_grad_and_bumps_version(T):
    w = T.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    with T.no_grad():
        w -= 0.5 * w.grad
        assert w._version == 1
        w.grad.zero_()
    assert w.requires_grad and w.is_leaf and w.grad_fn is None
    assert w.tolist() == [0.0, 0.0]
    assert w.grad.tolist() == [0.0, 0.0]


def test_no_grad_inplace_bumps_version_and_breaks_backward(T):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    y = a.exp()
    with T.no_grad():
        y.mul_(1)
    assert y._version == 1
    with pytest.raises(RuntimeError, match="is at version 1; expected version 0 instead"):
        y.sum().backward()


# ----------------------------------------------------------------------------- views

def test_views_and_detach_share_version(T):
    a = T.tensor([1.0, 2.0, 3.0])
    v = a[1:]
    d = a.detach()
    v.mul_(2)
    assert a._version == 1 and v._version == 1 and d._version == 1
    d.add_(1)
    assert a._version == 2 and v._version == 2
    assert a.tolist() == [2.0, 5.0, 7.0]


def test_data_has_its_own_version(T):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    d = a.data
    assert d.requires_grad is False
    d.add_(1)
    assert d._version == 1
    assert a._version == 0
    assert a.tolist() == [2.0, 3.0]


def test_zeroing_data_of_saved_output_is_silently_wrong(T):
    a = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    s = T.sigmoid(a)
    s.data.zero_()
    assert s._version == 0
    s.sum().backward()
    assert a.grad.tolist() == [0.0, 0.0, 0.0]


def test_zeroing_detach_of_saved_output_raises(T):
    a = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    s = T.sigmoid(a)
    s.detach().zero_()
    assert s._version == 1
    with pytest.raises(RuntimeError, match="is at version 1; expected version 0 instead"):
        s.sum().backward()


def test_data_assignment_update(T):
    w = T.tensor([1.0, 2.0], requires_grad=True)
    (w * 3).sum().backward()
    w.data -= 0.1 * w.grad.data
    close(w, [0.7, 1.7])
    assert w.requires_grad and w.is_leaf and w._version == 0
    w.data = T.tensor([5.0, 6.0])
    assert w.tolist() == [5.0, 6.0] and w.requires_grad


def test_inplace_on_view_rebases_base_graph(T):
    a = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = a.clone()
    b[0].mul_(2)
    assert b._version == 1
    assert b.tolist() == [2.0, 2.0, 3.0]
    (b * b).sum().backward()
    assert a.grad.tolist() == [8.0, 4.0, 6.0]


def test_inplace_exp_on_slice_view(T):
    a = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = a.clone()
    v = b[1:]
    v.exp_()
    assert b._version == 1 and v._version == 1
    close(b, [1.0, math.exp(2.0), math.exp(3.0)])
    b.sum().backward()
    close(a.grad, [1.0, math.exp(2.0), math.exp(3.0)])


def test_inplace_on_view_then_backward_through_view(T):
    a = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = a.clone()
    v = b[1:]
    v.mul_(T.tensor([10.0, 100.0]))
    (v * v).sum().backward()
    assert a.grad.tolist() == [0.0, 400.0, 60000.0]


def test_inplace_on_view_grad_fn_is_copyslices(T):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    b = a.clone()
    b[0].mul_(2)
    # PyTorch's node name for the base after an in-place op through a view
    assert type(b.grad_fn).__name__ == "CopySlices"


def test_inplace_on_view_of_saved_output_raises(T):
    a = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = a.sigmoid()
    y[0].mul_(2)
    with pytest.raises(RuntimeError, match="is at version 1; expected version 0 instead"):
        y.sum().backward()


def test_setitem_on_nonleaf_gradients(T):
    a = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    c = T.tensor([5.0, 6.0], requires_grad=True)
    b = a.clone()
    b[1:] = c * 2
    assert b.tolist() == [1.0, 10.0, 12.0]
    b.sum().backward()
    assert a.grad.tolist() == [1.0, 0.0, 0.0]
    assert c.grad.tolist() == [2.0, 2.0]


def test_setitem_into_plain_tensor_makes_it_require_grad(T):
    c = T.tensor([5.0, 6.0], requires_grad=True)
    x = T.zeros(3)
    x[1:] = c
    assert x.requires_grad and not x.is_leaf
    (x * T.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert c.grad.tolist() == [2.0, 3.0]


def test_detach_inplace(T):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    y = a * 2
    r = y.detach_()
    assert r is y
    assert y.requires_grad is False and y.grad_fn is None and y.is_leaf
    z = a * 2
    v = z[1:]
    with pytest.raises(RuntimeError, match=re.escape("Can't detach views in-place. Use detach() instead.")):
        v.detach_()


def test_detach_shares_storage(T):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    d = a.detach()
    d[0] = 10.0
    assert a.tolist() == [10.0, 2.0]


# ----------------------------------------------------------------------------- requires_grad flags

def test_requires_grad_setter_on_leaf(T):
    x = T.tensor([1.0])
    x.requires_grad = True
    assert x.requires_grad
    x.requires_grad = False
    assert not x.requires_grad
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad


def test_requires_grad_on_nonleaf(T):
    a = T.tensor([1.0], requires_grad=True)
    y = a * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
        y.requires_grad = True
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
        y.requires_grad = False
    assert y.requires_grad_() is y
    assert y.requires_grad_(True) is y
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
        y.requires_grad_(False)


# ----------------------------------------------------------------------------- assigning .grad

def test_grad_assignment_checks(T):
    a = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(TypeError, match="expected to be a Tensor or None"):
        a.grad = 0
    with pytest.raises(RuntimeError, match="attempting to assign a gradient of size"):
        a.grad = T.zeros(2)
    with pytest.raises(RuntimeError, match="attempting to assign a gradient with dtype"):
        a.grad = T.zeros(3, dtype=T.float64)
    with pytest.raises(RuntimeError, match="can't assign Variable as its own grad"):
        a.grad = a
    assert a.grad is None
    a.grad = T.ones(3)
    assert a.grad.tolist() == [1.0, 1.0, 1.0]
    (a * 2).sum().backward()
    assert a.grad.tolist() == [3.0, 3.0, 3.0]
    a.grad = None
    assert a.grad is None


def test_grad_zero_inplace_then_accumulate(T):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    (a * a).sum().backward()
    a.grad.zero_()
    (a * 3).sum().backward()
    assert a.grad.tolist() == [3.0, 3.0]


def test_leaf_modified_under_no_grad_after_use_raises(T):
    w = T.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    with T.no_grad():
        w.add_(1)
    assert w._version == 1
    with pytest.raises(RuntimeError, match="is at version 1; expected version 0 instead"):
        loss.backward()
    w2 = T.tensor([1.0, 2.0], requires_grad=True)
    loss2 = (w2 + 1).sum()  # AddBackward0 saves nothing: modifying w2 is harmless
    with T.no_grad():
        w2.mul_(5)
    loss2.backward()
    assert w2.grad.tolist() == [1.0, 1.0]


# ------------------------------------------------------------- views made under no_grad

NO_GRAD_VIEW = "A view was created in no_grad mode and is being modified inplace"


def test_view_made_under_no_grad(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    with T.no_grad():
        v = x.unsqueeze(0)
        s = x[0:1]
    # it requires grad through its base and is a leaf whose gradient goes nowhere
    assert (v.requires_grad, v.is_leaf, v.grad_fn) == (True, True, None)
    y = v * 2
    assert y.requires_grad and not y.is_leaf
    y.sum().backward()
    assert x.grad is None and v.grad is None
    with pytest.raises(RuntimeError, match=re.escape(NO_GRAD_VIEW)):
        v.mul_(2)
    with T.no_grad():
        vv = v.unsqueeze(0)        # a view of it, also under no_grad (found by the fuzzer)
    assert (vv.requires_grad, vv.is_leaf) == (True, True)
    (vv * 2).sum().backward()
    w = s[0:1]                     # a view of it, made with grad mode on
    assert (w.requires_grad, w.is_leaf) == (True, False)
    with pytest.raises(RuntimeError, match=re.escape(
            "Output 0 of Slice is a view of a view which was created in no_grad mode")):
        w.mul_(2)
    with T.no_grad():
        v.mul_(2)                  # both under no_grad: allowed
    assert x.tolist() == [2.0, 4.0]
    with pytest.raises(RuntimeError, match="its base or another view of its base has been "
                       "modified inplace"):
        v * 3


def test_view_made_under_no_grad_of_plain_tensor(T):
    x = T.tensor([1.0, 2.0])
    with T.no_grad():
        v = x[0:1]
    v.mul_(2)
    assert x.tolist() == [2.0, 2.0] and v.requires_grad is False
