"""Bad input catalogue (issue "Reliability", item 5): one entry per bad input, each raising
PyTorch's exception type with PyTorch's message prefix (checked against torch too) and leaving
the caller's tensors unchanged (values and _version). Entries where jitgrad differs from torch
are strict xfails with the repro in the reason."""
import warnings

import numpy as np
import pytest

import jitgrad


def _mods():
    return ["jitgrad", "torch"]


def _module(name):
    if name == "torch":
        return pytest.importorskip("torch")
    return jitgrad


def snapshot(tensors):
    return [(t.detach().numpy().copy(), t._version, tuple(t.shape), t.requires_grad)
            for t in tensors]


def assert_unchanged(tensors, before):
    for t, (values, version, shape, requires_grad) in zip(tensors, before):
        assert tuple(t.shape) == shape and t.requires_grad == requires_grad
        assert t._version == version
        np.testing.assert_array_equal(t.detach().numpy(), values)


F = dict(requires_grad=True)

# id -> (make inputs(T), op(T, *inputs), exception type(s), message prefix, bug or None)
CASES = {
    # shape mismatches
    "mm_shapes": (lambda T: [T.ones(2, 3, **F), T.ones(2, 3)],
                  lambda T, a, b: T.mm(a, b), RuntimeError,
                  "mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)", None),
    "matmul_shapes": (lambda T: [T.ones(2, 3), T.ones(4, 5, **F)],
                      lambda T, a, b: T.matmul(a, b), RuntimeError,
                      "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)", None),
    "matmul_1d_sizes": (lambda T: [T.ones(3), T.ones(4)],
                        lambda T, a, b: a @ b, RuntimeError,
                        "inconsistent tensor size, expected tensor [3] and src [4]", None),
    "add_broadcast": (lambda T: [T.ones(2, 3, **F), T.ones(4, 3)],
                      lambda T, a, b: a + b, RuntimeError,
                      "The size of tensor a (2) must match the size of tensor b (4) at "
                      "non-singleton dimension 0", None),
    "add_inplace_broadcast": (lambda T: [T.ones(3), T.ones(2, 3)],
                              lambda T, a, b: a.add_(b), RuntimeError,
                              "output with shape [3] doesn't match the broadcast shape [2, 3]",
                              None),
    "cat_sizes": (lambda T: [T.ones(2, 3), T.ones(2, 4, **F)],
                  lambda T, a, b: T.cat([a, b]), RuntimeError,
                  "Sizes of tensors must match except in dimension 0. Expected size 3 but got "
                  "size 4 for tensor number 1 in the list.", None),
    "cat_ndims": (lambda T: [T.ones(2, 3), T.ones(3)],
                  lambda T, a, b: T.cat([a, b]), RuntimeError,
                  "Tensors must have same number of dimensions: got 2 and 1", None),
    "view_size": (lambda T: [T.ones(2, 3, **F)], lambda T, a: a.view(4), RuntimeError,
                  "shape '[4]' is invalid for input of size 6", None),
    "view_strides": (lambda T: [T.ones(2, 3)], lambda T, a: a.t().view(6), RuntimeError,
                     "view size is not compatible with input tensor's size and stride", None),
    "reshape_size": (lambda T: [T.ones(2, 3)], lambda T, a: a.reshape(4, 2), RuntimeError,
                     "shape '[4, 2]' is invalid for input of size 6", None),
    "expand_fewer_dims": (lambda T: [T.ones(2, 3)], lambda T, a: a.expand(4), RuntimeError,
                          "expand(torch.FloatTensor{[2, 3]}, size=[4]): the number of sizes "
                          "provided (1) must be greater or equal", None),
    "bool_mask_shape": (lambda T: [T.ones(3), T.tensor([True, False])],
                        lambda T, a, m: a[m], IndexError,
                        "The shape of the mask [2] at index 0 does not match the shape of the "
                        "indexed tensor [3] at index 0", None),
    "bool_mask_after_select": (lambda T: [T.ones(3, 2), T.tensor([True, False, True])],
                               lambda T, a, m: a[1, m], IndexError,
                               "The shape of the mask [3] at index 0 does not match the shape "
                               "of the indexed tensor [2] at index 0", None),
    "bool_mask_2d": (lambda T: [T.ones(3, 2), T.ones(3, 3, dtype=T.bool)],
                     lambda T, a, m: a[m], IndexError,
                     "The shape of the mask [3, 3] at index 1 does not match the shape of the "
                     "indexed tensor [3, 2] at index 1", None),
    # integer tensors asking for grad
    "int_tensor_requires_grad": (lambda T: [], lambda T: T.tensor([1, 2], requires_grad=True),
                                 RuntimeError, "Only Tensors of floating point and complex "
                                 "dtype can require gradients", None),
    "int_factory_requires_grad": (lambda T: [],
                                  lambda T: T.ones(2, dtype=T.int64, requires_grad=True),
                                  RuntimeError, "Only Tensors of floating point and complex "
                                  "dtype can require gradients", None),
    "int_requires_grad_method": (lambda T: [T.tensor([1, 2])], lambda T, a: a.requires_grad_(),
                                 RuntimeError,
                                 "only Tensors of floating point dtype can require gradients",
                                 None),
    "int_requires_grad_setter": (lambda T: [T.tensor([1, 2])],
                                 lambda T, a: setattr(a, "requires_grad", True), RuntimeError,
                                 "only Tensors of floating point and complex dtype can require "
                                 "gradients", None),
    # wrong dtypes
    "float_index": (lambda T: [T.ones(3, **F), T.tensor([0.0, 1.0])], lambda T, a, i: a[i],
                    IndexError, "tensors used as indices must be long, int, byte or bool "
                    "tensors", None),
    "where_float_condition": (lambda T: [T.tensor([1.0, 0.0]), T.ones(2, **F), T.zeros(2)],
                              lambda T, c, a, b: T.where(c, a, b), RuntimeError,
                              "where expected condition to be a boolean tensor, but got a "
                              "tensor with dtype Float", None),
    "where_int_condition": (lambda T: [T.tensor([1, 0]), T.ones(2), T.zeros(2)],
                            lambda T, c, a, b: T.where(c, a, b), RuntimeError,
                            "where expected condition to be a boolean tensor, but got a "
                            "tensor with dtype Long", None),
    "int_add_float_inplace": (lambda T: [T.tensor([1, 2])], lambda T, a: a.add_(1.5),
                              RuntimeError,
                              "result type Float can't be cast to the desired output type Long",
                              None),
    "int_mul_float_tensor_inplace": (lambda T: [T.tensor([1, 2]), T.tensor([0.5, 1.0])],
                                     lambda T, a, b: a.mul_(b), RuntimeError,
                                     "result type Float can't be cast to the desired output "
                                     "type Long", None),
    "bool_add_int_inplace": (lambda T: [T.tensor([True, False])], lambda T, a: a.add_(1),
                             RuntimeError,
                             "result type Long can't be cast to the desired output type Bool",
                             None),
    # empty tensors and zero-size dims
    "max_of_empty": (lambda T: [T.ones(0, **F)], lambda T, a: a.max(), RuntimeError,
                     "max(): Expected reduction dim to be specified for input.numel() == 0.",
                     None),
    "min_of_empty": (lambda T: [T.ones(0)], lambda T, a: a.min(), RuntimeError,
                     "min(): Expected reduction dim to be specified for input.numel() == 0.",
                     None),
    "amax_of_empty": (lambda T: [T.ones(0)], lambda T, a: a.amax(), RuntimeError,
                      "amax(): Expected reduction dim to be specified for input.numel() == 0.",
                      None),
    "argmax_of_empty": (lambda T: [T.ones(0)], lambda T, a: a.argmax(), IndexError,
                        "argmax(): Expected reduction dim to be specified for input.numel() "
                        "== 0.", None),
    "argmin_over_empty_dim": (lambda T: [T.ones(0, 3)], lambda T, a: a.argmin(0), IndexError,
                              "argmin(): Expected reduction dim 0 to have non-zero size.", None),
    "amin_over_empty_dim": (lambda T: [T.ones(0, 3)], lambda T, a: a.amin((1, 0)), IndexError,
                            "amin(): Expected reduction dim 0 to have non-zero size.", None),
    "max_over_empty_dim": (lambda T: [T.ones(0, 3, **F)], lambda T, a: a.max(dim=0),
                           IndexError, "max(): Expected reduction dim 0 to have non-zero size.",
                           None),
    "item_of_empty": (lambda T: [T.ones(0)], lambda T, a: a.item(), RuntimeError,
                      "a Tensor with 0 elements cannot be converted to Scalar", None),
    # 0-d tensors
    "index_0d": (lambda T: [T.tensor(3.0, **F)], lambda T, a: a[0], IndexError,
                 "invalid index of a 0-dim tensor. Use `tensor.item()` in Python", None),
    "item_of_many": (lambda T: [T.ones(2)], lambda T, a: a.item(), RuntimeError,
                     "a Tensor with 2 elements cannot be converted to Scalar", None),
    "backward_non_scalar": (lambda T: [T.ones(2, **F)], lambda T, a: (a * 2).backward(),
                            RuntimeError, "grad can be implicitly created only for scalar "
                            "outputs", None),
    "backward_without_grad": (lambda T: [T.tensor(2.0)], lambda T, a: a.backward(),
                              RuntimeError, "element 0 of tensors does not require grad and "
                              "does not have a grad_fn", None),
    "index_out_of_range": (lambda T: [T.ones(3)], lambda T, a: a[5], IndexError,
                           "index 5 is out of bounds for dimension 0 with size 3", None),
    "dim_out_of_range": (lambda T: [T.ones(3)], lambda T, a: a.sum(2), IndexError,
                         "Dimension out of range (expected to be in range of [-1, 0], but got "
                         "2)", None),
    # sizes
    "negative_size": (lambda T: [], lambda T: T.zeros(-1), RuntimeError,
                      "zeros: Dimension size must be non-negative.", None),
}


def _params():
    for name, case in CASES.items():
        for module in _mods():
            marks = []
            if case[4] and module == "jitgrad":
                marks = [pytest.mark.xfail(strict=True, reason=case[4])]
            yield pytest.param(name, module, id=f"{name}-{module}", marks=marks)


@pytest.mark.parametrize("name,module", list(_params()))
def test_bad_input(name, module):
    T = _module(module)
    make, op, exc, prefix, _ = CASES[name]
    inputs = make(T)
    before = snapshot(inputs)
    with pytest.raises(exc) as info:
        op(T, *inputs)
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"
    assert str(info.value).startswith(prefix), str(info.value)
    assert_unchanged(inputs, before)


@pytest.mark.parametrize("factory", ["zeros", "ones", "empty"])
@pytest.mark.parametrize("module", _mods())
def test_huge_allocation_fails_cleanly(module, factory):
    # 2**60 elements: NumPy raises MemoryError at once, torch RuntimeError ("can't allocate
    # memory"); both name the allocation and neither hangs nor crashes the process.
    T = _module(module)
    with pytest.raises((MemoryError, RuntimeError)) as info:
        getattr(T, factory)(2 ** 40, 2 ** 20)
    assert "allocate" in str(info.value)
    if module == "jitgrad":
        big = jitgrad.ones(1).expand(2 ** 40, 2 ** 20)     # a view: no allocation
        with pytest.raises(MemoryError, match="allocate"):
            big + 1


def test_compile_rejects_non_callable():
    for bad in (42, "f", [lambda x: x]):
        with pytest.raises(TypeError, match="^jitgrad.compile expects a callable, got"):
            jitgrad.compile(bad)


def test_compile_rejects_unknown_backend():
    with pytest.raises(ValueError,
                       match="^unknown backend 'nope'; expected 'cpu', 'cuda' or 'eager'"):
        jitgrad.compile(lambda x: x, backend="nope")
    with pytest.raises(ValueError, match="^unknown backend 'nope'"):
        jitgrad.compile(backend="nope")(lambda x: x)    # decorator form: at decoration


# Non-finite values: NaN and inf pass through ops and gradients without errors or warnings,
# with torch's values.
NONFINITE = [float("nan"), float("inf"), -float("inf"), 0.0, -1.0, 2.0]


def _nonfinite_fn(T, x):
    return (T.sqrt(x) + T.log(x) + 1 / x + T.exp(x) + T.relu(x) * x + T.tanh(x)
            + T.maximum(x, T.zeros(6, dtype=x.dtype)) + x.clamp(-1, 1) * 3)


def _run_nonfinite(T, fn, dtype):
    x = T.tensor(NONFINITE, dtype=dtype, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = fn(x)
        y.sum().backward()
    return y.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_non_finite_values_and_gradients_match_torch(torch, dtype):
    got = _run_nonfinite(jitgrad, lambda x: _nonfinite_fn(jitgrad, x), getattr(jitgrad, dtype))
    want = _run_nonfinite(torch, lambda x: _nonfinite_fn(torch, x), getattr(torch, dtype))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, equal_nan=True)


def test_non_finite_values_through_compile():
    compiled = jitgrad.compile(lambda x: _nonfinite_fn(jitgrad, x))
    got = _run_nonfinite(jitgrad, compiled, jitgrad.float64)
    want = _run_nonfinite(jitgrad, lambda x: _nonfinite_fn(jitgrad, x), jitgrad.float64)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("module", _mods())
def test_non_finite_reductions(module):
    T = _module(module)
    x = T.tensor([1.0, float("nan"), 3.0])
    assert np.isnan(x.max().item()) and np.isnan(x.sum().item())
    assert x.argmax().item() == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # NumPy warns here; torch is silent
        assert T.tensor([float("inf"), -float("inf")]).sum().isnan().item()
        assert T.tensor([1e30, 1e30]).prod().isinf().item()


# Empty tensors: values, shapes and gradients as torch's, no warnings.
@pytest.mark.parametrize("module", _mods())
def test_empty_reductions(module):
    T = _module(module)
    e = T.ones(0, requires_grad=True)
    assert e.sum().item() == 0.0 and e.prod().item() == 1.0
    assert np.isnan(T.ones(0).mean().item())   # silent: see test_mean_of_empty_is_silent
    e.sum().backward()
    assert tuple(e.grad.shape) == (0,)
    z = T.ones(2, 0, requires_grad=True)
    assert z.sum(1).tolist() == [0.0, 0.0]
    (z.sum(1) * 2).sum().backward()
    assert tuple(z.grad.shape) == (2, 0)
    assert tuple((T.ones(0, 3) @ T.ones(3, 4)).shape) == (0, 4)
    assert (T.ones(3, 0) @ T.ones(0, 4)).tolist() == [[0.0] * 4] * 3


@pytest.mark.parametrize("module", ["jitgrad", "torch"])
def test_max_over_non_empty_dim_of_empty_tensor(module):
    T = _module(module)
    z = T.ones(2, 0, requires_grad=True)
    assert tuple(z.amax(dim=0).shape) == (0,)
    values, indices = z.max(dim=0)
    assert tuple(values.shape) == (0,) and tuple(indices.shape) == (0,)
    values.sum().backward()
    assert tuple(z.grad.shape) == (2, 0)


@pytest.mark.parametrize("module", _mods())
def test_mean_of_empty_is_silent(module):
    T = _module(module)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(T.ones(0).mean().item())
        e = T.ones(0, 3, requires_grad=True)
        assert np.isnan(e.mean(0).detach().numpy()).all()
        e.mean(0).sum().backward()
    assert tuple(e.grad.shape) == (0, 3)


# 0-d tensors: indexing that works, .item(), backward without a gradient argument.
@pytest.mark.parametrize("module", _mods())
def test_zero_dim_tensors(module):
    T = _module(module)
    s = T.tensor(3.0, requires_grad=True)
    assert s[()].item() == 3.0 and tuple(s[None].shape) == (1,) and tuple(s[...].shape) == ()
    assert s.item() == 3.0 and isinstance(s.item(), float)
    assert T.tensor(7).item() == 7 and isinstance(T.tensor(7).item(), int)
    (s * s).backward()
    assert s.grad.item() == 6.0 and tuple(s.grad.shape) == ()
    assert s._version == 0
