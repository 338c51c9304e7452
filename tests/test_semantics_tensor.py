"""Semantics: tensor creation, dtypes and promotion, broadcasting, NumPy interop, attributes,
shape methods, indexing, operators and comparisons (forward values; a few simple gradients)."""
import re

import numpy as np
import pytest


def close(t, expected):
    np.testing.assert_allclose(np.asarray(t.detach().numpy(), dtype=np.float64), expected,
                               rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- creation

def test_tensor_default_dtype_float32(T):
    x = T.tensor([1.0, 2.0])
    assert x.dtype == T.float32
    assert T.tensor(1.5).dtype == T.float32
    assert x.tolist() == [1.0, 2.0]
    assert x.requires_grad is False


def test_tensor_dtype_and_requires_grad_kwargs(T):
    x = T.tensor([1, 2], dtype=T.float64, requires_grad=True)
    assert x.dtype == T.float64
    assert x.requires_grad is True
    assert x.is_leaf
    assert x.grad is None and x.grad_fn is None


def test_integer_and_bool_dtypes(T):
    assert T.tensor([1, 2]).dtype == T.int64
    assert T.arange(3).dtype == T.int64
    assert T.tensor([1, 2]).dtype == T.arange(3).dtype
    assert T.tensor([1, 2]).dtype not in (T.float32, T.float64)
    assert T.tensor([True, False]).dtype == T.bool
    assert T.tensor([1, 2]).tolist() == [1, 2]
    assert isinstance(T.tensor([1, 2]).tolist()[0], int)


def test_Tensor_constructor_list_and_sizes(T):
    a = T.Tensor([1, 2, 3])
    assert a.dtype == T.float32
    assert a.tolist() == [1.0, 2.0, 3.0]
    b = T.Tensor(2, 3)
    assert tuple(b.shape) == (2, 3)
    assert b.dtype == T.float32
    assert b.requires_grad is False


def test_FloatTensor_DoubleTensor(T):
    f = T.FloatTensor([1, 2])
    d = T.DoubleTensor([1, 2])
    assert f.dtype == T.float32 and d.dtype == T.float64
    assert f.tolist() == [1.0, 2.0] and d.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("name,value", [("zeros", 0.0), ("ones", 1.0)])
def test_zeros_ones(T, name, value):
    fn = getattr(T, name)
    a = fn(2, 3)
    b = fn((2, 3))
    assert tuple(a.shape) == (2, 3) and tuple(b.shape) == (2, 3)
    assert a.dtype == T.float32
    assert a.tolist() == [[value] * 3] * 2
    c = fn(2, dtype=T.float64, requires_grad=True)
    assert c.dtype == T.float64 and c.requires_grad and c.is_leaf
    assert fn(3, dtype=T.int64).tolist() == [int(value)] * 3


def test_zeros_like_ones_like(T):
    x = T.tensor([[1.0, 2.0]], dtype=T.float64)
    z = T.zeros_like(x, requires_grad=True)
    assert z.tolist() == [[0.0, 0.0]] and z.dtype == T.float64 and z.requires_grad
    o = T.ones_like(T.tensor([1, 2, 3]))
    assert o.tolist() == [1, 1, 1] and o.dtype == T.int64


@pytest.mark.parametrize("name", ["randn", "rand"])
def test_randn_rand_shapes_dtype_seed(T, name):
    fn = getattr(T, name)
    assert tuple(fn(2, 3).shape) == (2, 3)
    assert tuple(fn((4,)).shape) == (4,)
    assert tuple(fn([]).shape) == ()
    assert fn(2).dtype == T.float32
    x = fn(3, dtype=T.float64, requires_grad=True)
    assert x.dtype == T.float64 and x.requires_grad and x.is_leaf
    T.manual_seed(0)
    a = fn(5).tolist()
    T.manual_seed(0)
    b = fn(5).tolist()
    assert a == b
    T.manual_seed(1)
    assert fn(5).tolist() != a


def test_rand_range(T):
    T.manual_seed(3)
    x = T.rand(1000)
    assert 0.0 <= x.min().item() and x.max().item() < 1.0
    T.manual_seed(3)
    y = T.randn(2000)
    assert abs(y.mean().item()) < 0.15
    assert y.min().item() < 0 < y.max().item()


def test_arange(T):
    assert T.arange(4).tolist() == [0, 1, 2, 3]
    assert T.arange(2, 5).tolist() == [2, 3, 4]
    x = T.arange(0.0, 3.0, requires_grad=True)
    assert x.dtype == T.float32 and x.requires_grad and x.is_leaf
    assert x.tolist() == [0.0, 1.0, 2.0]
    y = T.arange(3.0, requires_grad=True)
    assert y.requires_grad and y.tolist() == [0.0, 1.0, 2.0]


def test_integer_tensor_cannot_require_grad(T):
    with pytest.raises(RuntimeError, match="floating point"):
        T.tensor([1, 2], requires_grad=True)
    x = T.tensor([1, 2])
    with pytest.raises(RuntimeError, match="floating point"):
        x.requires_grad = True
    with pytest.raises(RuntimeError, match="floating point"):
        x.requires_grad_()


# ----------------------------------------------------------------------------- promotion

def test_promotion_tensor_tensor(T):
    i = T.tensor([1, 2])
    f = T.tensor([1.0, 2.0])
    d = T.tensor([1.0, 2.0], dtype=T.float64)
    b = T.tensor([True, False])
    assert (i + f).dtype == T.float32
    assert (f + d).dtype == T.float64
    assert (i * d).dtype == T.float64
    assert (b + b).dtype == T.bool
    assert (b + i).dtype == T.int64
    assert (b * f).dtype == T.float32
    assert (i + f).tolist() == [2.0, 4.0]


def test_promotion_tensor_python_scalar(T):
    i = T.tensor([1, 2])
    f = T.tensor([1.0, 2.0])
    d = T.tensor([1.0, 2.0], dtype=T.float64)
    b = T.tensor([True, False])
    assert (i + 2.5).dtype == T.float32
    assert (i + 2.5).tolist() == [3.5, 4.5]
    assert (i * 2).dtype == T.int64
    assert (f * 2).dtype == T.float32
    assert (d + 1).dtype == T.float64
    assert (d * 2.5).dtype == T.float64
    assert (b + 1).dtype == T.int64
    assert (b + 1).tolist() == [2, 1]
    assert (b + 1.5).dtype == T.float32
    assert (f * True).dtype == T.float32
    assert (2.5 - i).dtype == T.float32
    assert (2 ** i).dtype == T.int64 and (2 ** i).tolist() == [2, 4]


def test_promotion_zero_dim_vs_dimensioned(T):
    f = T.tensor([1.0, 2.0])
    i = T.tensor([1, 2])
    d0 = T.tensor(1.0, dtype=T.float64)
    # a zero-dim tensor of the same category does not promote a dimensioned one
    assert (f + d0).dtype == T.float32
    assert (f * T.tensor(3)).dtype == T.float32
    assert (i + T.tensor(3)).dtype == T.int64
    # a zero-dim tensor of a higher category does: its dtype wins
    assert (i + d0).dtype == T.float64
    assert (i + T.tensor(1.5)).dtype == T.float32
    # two zero-dim tensors promote normally
    assert (T.tensor(1.0) + d0).dtype == T.float64
    # a dimensioned float64 wins over a float32 dimensioned one
    assert (f + T.tensor([1.0], dtype=T.float64)).dtype == T.float64


def test_division_and_pow_dtypes(T):
    i = T.tensor([1, 2])
    assert (i / i).dtype == T.float32
    assert (i / 2).tolist() == [0.5, 1.0]
    assert (i ** 2).dtype == T.int64 and (i ** 2).tolist() == [1, 4]
    assert (i ** 0.5).dtype == T.float32


def test_float32_arithmetic_rounds_to_float32(T):
    x = T.tensor([0.1])
    y = x * 3
    assert y.item() == pytest.approx(float(np.float32(np.float32(0.1) * np.float32(3))), abs=0)
    assert isinstance(T.tensor(1.5).item(), float)
    assert isinstance(T.tensor(3).item(), int)
    assert isinstance(T.tensor(True).item(), bool)


def test_grad_dtype_follows_leaf(T):
    x = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)
    (x * T.tensor([3.0, 4.0])).sum().backward()
    assert x.grad.dtype == T.float64
    assert x.grad.tolist() == [3.0, 4.0]
    f = T.tensor([1.0, 2.0], requires_grad=True)
    y = f * T.tensor([0.1, 0.2], dtype=T.float64)
    assert y.dtype == T.float64
    y.sum().backward()
    assert f.grad.dtype == T.float32  # the gradient is cast back to the leaf's dtype
    np.testing.assert_allclose(f.grad.numpy(), [0.1, 0.2], rtol=1e-6)


# ----------------------------------------------------------------------------- broadcasting

def test_to_and_type_as(T):
    x = T.ones(2)
    d = T.ones(2, dtype=T.float64)
    assert d.type_as(x).dtype == T.float32 and x.type_as(d).dtype == T.float64
    assert d.to(T.float32).dtype == T.float32 and d.to(x).dtype == T.float32
    # Python types: float is double whatever the default dtype, int is int64
    assert (x.to(float).dtype, x.to(int).dtype, x.to(bool).dtype) == (T.float64, T.int64, T.bool)
    assert T.ones(2, dtype=float).dtype == T.float64
    assert x.to(T.float32) is x and x.to(T.float32, copy=True) is not x
    with pytest.raises(TypeError, match=re.escape("to() received an invalid combination of "
                                                  "arguments - got (type)")):
        x.to(np.float64)
    with pytest.raises(TypeError, match="to\\(\\) received an invalid combination"):
        x.to(np.dtype("float64"))


def test_create_graph_casts_gradients_to_each_input_dtype(T):
    # double backward with a float64 weight on a float32 matmul: the gradient reaching the
    # matmul is cast to float32 before its rule runs (found by the long fuzz run)
    a = T.ones(1, 1)
    b = T.ones(1, 4, requires_grad=True)
    w = T.tensor([[0.5, 1.0, 2.0, 3.0]], dtype=T.float64)
    (g,) = T.autograd.grad(((a @ b) * w).sum(), [b], create_graph=True)
    assert g.dtype == T.float32 and g.tolist() == [[0.5, 1.0, 2.0, 3.0]]


def test_broadcasting_values(T):
    a = T.tensor([[1.0], [2.0]])
    b = T.tensor([10.0, 20.0, 30.0])
    c = a + b
    assert tuple(c.shape) == (2, 3)
    assert c.tolist() == [[11.0, 21.0, 31.0], [12.0, 22.0, 32.0]]
    assert tuple((T.ones(2, 1, 3) * T.ones(4, 1)).shape) == (2, 4, 3)


def test_broadcasting_gradients_are_summed(T):
    a = T.tensor([[1.0], [2.0]], requires_grad=True)
    b = T.tensor([10.0, 20.0, 30.0], requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.tolist() == [[60.0], [60.0]]
    assert b.grad.tolist() == [3.0, 3.0, 3.0]
    assert tuple(a.grad.shape) == (2, 1)


def test_broadcasting_with_zero_dim_and_scalar_grad(T):
    s = T.tensor(2.0, requires_grad=True)
    v = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (s * v).sum().backward()
    assert s.grad.item() == 6.0 and tuple(s.grad.shape) == ()
    assert v.grad.tolist() == [2.0, 2.0, 2.0]


def test_broadcast_incompatible_shapes_raise(T):
    with pytest.raises(RuntimeError):
        T.ones(2, 3) + T.ones(4)


# ----------------------------------------------------------------------------- NumPy interop

def test_from_numpy_shares_memory(T):
    a = np.array([1.0, 2.0, 3.0])
    t = T.from_numpy(a)
    assert t.dtype == T.float64
    a[0] = 10.0
    assert t.tolist() == [10.0, 2.0, 3.0]
    t.add_(1)
    assert a.tolist() == [11.0, 3.0, 4.0]
    assert T.from_numpy(np.array([1, 2], dtype=np.int64)).dtype == T.int64
    assert T.from_numpy(np.array([1.0], dtype=np.float32)).dtype == T.float32


def test_numpy_shares_memory(T):
    t = T.tensor([1.0, 2.0])
    n = t.numpy()
    assert isinstance(n, np.ndarray) and n.dtype == np.float32
    n[1] = 5.0
    assert t.tolist() == [1.0, 5.0]
    t.mul_(2)
    assert n.tolist() == [2.0, 10.0]


def test_np_asarray(T):
    t = T.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = np.asarray(t)
    assert a.shape == (2, 2) and a.dtype == np.float32
    assert a.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    a[0, 0] = 9.0
    assert t[0, 0].item() == 9.0
    assert np.asarray(T.tensor([1, 2])).dtype == np.int64


def test_numpy_requires_grad_error(T):
    x = T.tensor([1.0], requires_grad=True)
    msg = "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        x.numpy()
    with pytest.raises(RuntimeError, match=re.escape("Can't call numpy() on Tensor that requires grad")):
        (x * 2).numpy()
    assert x.detach().numpy().tolist() == [1.0]


def test_numpy_allowed_under_no_grad(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    with T.no_grad():
        assert x.numpy().tolist() == [1.0, 2.0]


def test_item_and_tolist(T):
    assert T.tensor([[3.5]]).item() == 3.5
    assert T.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert T.tensor(2.0).tolist() == 2.0
    with pytest.raises(RuntimeError, match=re.escape("a Tensor with 2 elements cannot be converted to Scalar")):
        T.tensor([1.0, 2.0]).item()
    x = T.tensor([2.0], requires_grad=True)
    assert x.item() == 2.0  # item() works on a tensor that requires grad


# ----------------------------------------------------------------------------- attributes & shapes

def test_shape_size_dim(T):
    x = T.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4)
    assert x.size() == (2, 3, 4)
    assert x.size(1) == 3 and x.size(-1) == 4
    assert x.dim() == 3
    assert T.tensor(1.0).dim() == 0 and T.tensor(1.0).shape == ()


def test_T_t_transpose(T):
    x = T.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.T.tolist() == [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
    assert x.t().tolist() == x.T.tolist()
    y = T.arange(6).view(1, 2, 3)
    assert y.transpose(0, 2).shape == (3, 2, 1)
    assert y.transpose(0, 2)[:, 1, 0].tolist() == [3, 4, 5]


def test_view_reshape(T):
    x = T.arange(6)
    assert x.view(2, 3).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert x.view(-1, 2).shape == (3, 2)
    assert x.view(3, -1).shape == (3, 2)
    assert x.reshape(3, 2).tolist() == [[0, 1], [2, 3], [4, 5]]
    assert x.reshape(-1).shape == (6,)


def test_view_shares_storage(T):
    x = T.zeros(2, 3)
    v = x.view(6)
    v[0] = 5.0
    assert x[0, 0].item() == 5.0
    r = x.t().reshape(6)  # non-contiguous: a copy
    assert r.tolist() == [5.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_view_incompatible_stride_error(T):
    x = T.zeros(2, 3).t()
    with pytest.raises(RuntimeError, match=re.escape("view size is not compatible with input tensor's size and stride")):
        x.view(6)
    assert x.reshape(6).shape == (6,)


def test_view_and_reshape_gradient(T):
    x = T.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = x.view(2, 2) * T.tensor([[1.0, 2.0], [3.0, 4.0]])
    z = x.reshape(2, 2).t()
    (y.sum() + (z * T.tensor([[1.0, 0.0], [0.0, 0.0]])).sum()).backward()
    assert x.grad.tolist() == [2.0, 2.0, 3.0, 4.0]


def test_clone(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert not c.is_leaf and type(c.grad_fn).__name__ == "CloneBackward0"
    (c * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    d = T.tensor([1.0, 2.0])
    e = d.clone()
    e[0] = 7.0
    assert d.tolist() == [1.0, 2.0]


def test_mm_matmul(T):
    a = T.tensor([[1.0, 2.0], [3.0, 4.0]])
    b = T.tensor([[5.0], [6.0]])
    assert T.mm(a, b).tolist() == [[17.0], [39.0]]
    assert T.matmul(a, b).tolist() == [[17.0], [39.0]]
    assert (a @ b).tolist() == [[17.0], [39.0]]
    v = T.tensor([1.0, 1.0])
    assert (a @ v).tolist() == [3.0, 7.0]
    assert (v @ v).item() == 2.0
    assert T.matmul(T.ones(3, 2, 2), a).shape == (3, 2, 2)


def test_mm_requires_matrices(T):
    v = T.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="self must be a matrix"):
        T.mm(v, v)


def test_cat_stack(T):
    a = T.tensor([[1.0, 2.0]])
    b = T.tensor([[3.0, 4.0]])
    assert T.cat([a, b], dim=0).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert T.cat([a, b], dim=1).tolist() == [[1.0, 2.0, 3.0, 4.0]]
    assert T.cat([a, b]).shape == (2, 2)
    s = T.stack([T.tensor([1.0, 2.0]), T.tensor([3.0, 4.0])])
    assert s.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_where_clamp_forward(T):
    x = T.tensor([-2.0, 0.5, 3.0])
    assert T.where(x > 0, x, T.zeros(3)).tolist() == [0.0, 0.5, 3.0]
    assert T.where(x > 0, x, 0.0).tolist() == [0.0, 0.5, 3.0]
    assert T.clamp(x, -1.0, 1.0).tolist() == [-1.0, 0.5, 1.0]
    assert x.clamp(min=0.0).tolist() == [0.0, 0.5, 3.0]
    assert x.clamp(max=0.0).tolist() == [-2.0, 0.0, 0.0]
    assert x.clamp(min=-1.0, max=2.0).tolist() == [-1.0, 0.5, 2.0]


# ----------------------------------------------------------------------------- indexing

def test_getitem_forms(T):
    x = T.arange(24).view(2, 3, 4)
    assert x[1, 2, 3].item() == 23
    assert x[-1, -1, -1].item() == 23
    assert x[0, 1].tolist() == [4, 5, 6, 7]
    assert x[:, ::2, 1::2].tolist() == [[[1, 3], [9, 11]], [[13, 15], [21, 23]]]
    assert x[..., 1].shape == (2, 3)
    assert x[0, ..., ::2].tolist() == [[0, 2], [4, 6], [8, 10]]
    assert x[1, ...].shape == (3, 4)
    assert x[[1, 0]].shape == (2, 3, 4)
    assert x[[1, 0]][0, 0, 0].item() == 12
    assert x[0, [0, 2], [1, 3]].tolist() == [1, 11]
    assert x[0, [[0, 1], [2, 2]], 0].tolist() == [[0, 4], [8, 8]]
    assert x[T.tensor([1, 0]), 0, 0].tolist() == [12, 0]
    assert x[T.tensor([[1], [0]]), 0, 0].tolist() == [[12], [0]]
    assert x[x > 20].tolist() == [21, 22, 23]
    assert x[0, 0][T.tensor([True, False, True, False])].tolist() == [0, 2]
    v = T.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    assert v[::2].tolist() == [1.0, 3.0, 5.0]
    assert v[1:-1].tolist() == [2.0, 3.0, 4.0]
    assert v[-2].item() == 4.0


def test_basic_indexing_returns_views(T):
    x = T.zeros(2, 3)
    x[0].fill_(1.0)
    x[1, 1:].add_(2.0)
    x[..., 0].mul_(10.0)
    x.t()[2].sub_(1.0)
    x.transpose(0, 1)[1, 0] = 7.0
    assert x.tolist() == [[10.0, 7.0, 0.0], [0.0, 2.0, 1.0]]
    assert x._version == 5
    y = T.zeros(3)
    y[[0, 1]].fill_(1.0)  # advanced indexing copies
    y[y == 0].fill_(1.0)
    assert y.tolist() == [0.0, 0.0, 0.0]
    assert y._version == 0


def test_getitem_gradients(T):
    x = T.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    y = (x[0, ::2].sum() + x[-1, -1] * 10 + x[:, [1, 1]].sum() + x[x > 4.5].sum() * 100
         + x[..., 0].sum() + x[T.tensor([1]), 0].sum())
    y.backward()
    assert x.grad.tolist() == [[2.0, 2.0, 1.0], [2.0, 102.0, 110.0]]


def test_getitem_repeated_index_accumulates(T):
    x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2]].sum().backward()
    assert x.grad.tolist() == [2.0, 0.0, 1.0]


def test_setitem_forms(T):
    x = T.zeros(3, 4)
    x[0] = 1.0
    x[-1, -1] = 2.0
    x[1, ::2] = T.tensor([3.0, 4.0])
    x[..., 1] = 5.0
    x[[2, 2], [0, 2]] = 6.0
    x[T.tensor([1]), 3] = 7.0
    assert x.tolist() == [[1.0, 5.0, 1.0, 1.0], [3.0, 5.0, 4.0, 7.0], [6.0, 5.0, 6.0, 2.0]]
    x[x > 5.5] = 0.0
    assert x.tolist() == [[1.0, 5.0, 1.0, 1.0], [3.0, 5.0, 4.0, 0.0], [0.0, 5.0, 0.0, 2.0]]
    assert x._version == 7


def test_setitem_drops_leading_unit_dims(T):
    m = T.tensor([[1.0, 2.0]], requires_grad=True)
    (m * m).sum().backward()
    j = T.zeros(2, 3)
    j[:, 0] = m.grad.data  # (1, 2) into a (2,) slot
    assert j.tolist() == [[2.0, 0.0, 0.0], [4.0, 0.0, 0.0]]
    j[1] = T.ones(1, 1, 3)
    assert j[1].tolist() == [1.0, 1.0, 1.0]


# ----------------------------------------------------------------------------- DLPack
def test_dlpack_shares_memory_with_numpy_both_ways(T):
    a = np.arange(6.0).reshape(2, 3)
    t = T.from_dlpack(a)
    a[0, 0] = 10.0
    assert t[0, 0].item() == 10.0 and tuple(t.shape) == (2, 3) and t.dtype == T.float64
    back = np.from_dlpack(t)
    t[1, 2] = -1.0
    assert back[1, 2] == -1.0
    assert t.__dlpack_device__()[0] == 1                    # kDLCPU
    transposed = T.from_dlpack(np.arange(6.0).reshape(2, 3).T)
    assert tuple(transposed.stride()) == (1, 3)


def test_dlpack_capsules_and_errors(T):
    x = T.ones(3)
    y = T.utils.dlpack.from_dlpack(T.utils.dlpack.to_dlpack(x))
    x[1] = 5.0
    assert y[1].item() == 5.0
    with pytest.raises(BufferError, match="Can't export tensors that require gradient"):
        T.ones(2, requires_grad=True).__dlpack__()
    capsule = T.utils.dlpack.to_dlpack(T.ones(2))
    T.from_dlpack(capsule)
    with pytest.raises(RuntimeError, match="from_dlpack received an invalid capsule"):
        T.from_dlpack(capsule)                       # a capsule is consumed once


def test_dlpack_with_torch():
    torch = pytest.importorskip("torch")
    import jitgrad
    a = jitgrad.tensor([1.0, 2.0, 3.0])
    t = torch.from_dlpack(a)
    t[0] = 7.0
    assert a[0].item() == 7.0
    b = jitgrad.from_dlpack(torch.arange(4, dtype=torch.int64))
    assert b.dtype == jitgrad.int64 and b.tolist() == [0, 1, 2, 3]
