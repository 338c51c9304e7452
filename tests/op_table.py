"""The op table: one list of op cases that drives every op-level suite.

Each `OpCase` names a registry op (PyTorch's name for it), a function written against the
torch-style API of a module `T` (so the same function runs on `jitgrad` and on `torch`), and one
`InputSpec` per tensor argument.  `make_inputs` turns the specs into deterministic tensors of
either module.  Suites that use the table:

* tests/test_ops.py: forward and backward against torch, finite differences;
* later: the graph compiler's compiled-equals-eager suite and the CUDA suite.

This module imports neither jitgrad nor torch: everything that touches a module takes it as `T`.

Domains (`InputSpec.domain`):
    "real"          standard normal
    "positive"      uniform in [0.5, 2)           (log, sqrt, rsqrt, pow bases)
    "unit"          uniform in (-0.9, 0.9)        (log1p and friends)
    "nonzero"       +-uniform in [0.3, 2)         (divisors, reciprocal)
    "awayfromzero"  +-uniform in [0.5, 2)         (kinks at 0: abs, relu, sign; clamp at +-0.25 or 0)
    "distinct"      shuffled, evenly spaced values at least ~0.06 apart (max/min without ties)
    "ties"          integers in [-2, 2] stored as floats: ties and exact zeros, for the fd=False
                    cases that check tie and kink conventions against torch
    "int"           int64 in [low, high)          (targets, index tensors; never requires grad)
    "bool"          bool, about half True         (masks, where conditions; never requires grad)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

FLOAT_DOMAINS = ("real", "positive", "unit", "nonzero", "awayfromzero", "distinct", "ties")
DOMAINS = FLOAT_DOMAINS + ("int", "bool")
FLOAT_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class InputSpec:
    shape: tuple
    domain: str = "real"
    low: int = 0                 # "int" only: inclusive lower bound
    high: int | None = None      # "int" only: exclusive upper bound

    @property
    def is_float(self) -> bool:
        return self.domain in FLOAT_DOMAINS


@dataclass(frozen=True)
class OpCase:
    name: str                    # unique id, e.g. "add", "add_scalar_rhs", "max_dim_keepdim"
    op: str                      # the registry op it exercises (PyTorch's name): "add", "max", ...
    fn: Callable                 # fn(T, *tensors) -> tensor, written against module T
    inputs: tuple                # one InputSpec per tensor argument of fn
    grad: bool = True            # False where the result is not differentiable
    fd: bool = True              # False where finite differences are ill-posed (kinks, ties)
    dtypes: tuple = FLOAT_DTYPES # float dtype of the float inputs; ("int64",) for int-only cases


# --------------------------------------------------------------------------------------------
# Input construction
# --------------------------------------------------------------------------------------------

def _sample(spec: InputSpec, rng: np.random.Generator) -> np.ndarray:
    shape = tuple(spec.shape)
    n = int(np.prod(shape, dtype=np.int64))
    d = spec.domain
    if d == "real":
        return rng.standard_normal(shape)
    if d == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if d == "unit":
        return rng.uniform(-0.9, 0.9, shape)
    if d in ("nonzero", "awayfromzero"):
        lo = 0.3 if d == "nonzero" else 0.5
        sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        return sign * rng.uniform(lo, 2.0, shape)
    if d == "distinct":
        vals = np.linspace(-2.0, 2.0, max(n, 2))[:n] + rng.uniform(0.0, 0.01, n)
        return rng.permutation(vals).reshape(shape)
    if d == "ties":
        return rng.integers(-2, 3, shape).astype(np.float64)
    if d == "int":
        if spec.high is None:
            raise ValueError("an 'int' InputSpec needs high")
        return rng.integers(spec.low, spec.high, shape, dtype=np.int64)
    if d == "bool":
        return rng.random(shape) < 0.5
    raise ValueError(f"unknown domain {d!r}")


def make_arrays(case: OpCase, dtype: str, seed: int) -> list:
    """Deterministic NumPy inputs for `case`: float domains in `dtype`, int64, bool."""
    rng = np.random.default_rng(seed)
    out = []
    for spec in case.inputs:
        a = _sample(spec, rng)
        if spec.is_float:
            a = a.astype(dtype if dtype in FLOAT_DTYPES else "float64")
        out.append(np.asarray(a))
    return out


def tensors_from_arrays(case: OpCase, T, arrays, requires_grad: bool) -> tuple:
    """Wrap arrays as tensors of module T; only float inputs ever require grad."""
    out = []
    for spec, a in zip(case.inputs, arrays):
        if spec.is_float:
            out.append(T.tensor(a, dtype=getattr(T, str(a.dtype)), requires_grad=requires_grad))
        elif spec.domain == "int":
            out.append(T.tensor(a, dtype=T.int64))
        else:
            out.append(T.tensor(a, dtype=T.bool))
    return tuple(out)


def make_inputs(case: OpCase, T, dtype: str, seed: int, requires_grad: bool) -> tuple:
    """Deterministic tensors of module T for `case` (same seed -> same values in every module)."""
    return tensors_from_arrays(case, T, make_arrays(case, dtype, seed), requires_grad)


def case_seed(case: OpCase) -> int:
    """A stable per-case seed (independent of table order and of PYTHONHASHSEED)."""
    import zlib
    return zlib.crc32(case.name.encode())


def upstream_grad(shape, dtype: str, seed: int) -> np.ndarray:
    """A random upstream gradient for an output of `shape`."""
    return np.asarray(np.random.default_rng(seed).standard_normal(tuple(shape)).astype(dtype))


def to_numpy(t) -> np.ndarray:
    """A tensor of either module (or anything array-like) as a NumPy array."""
    if hasattr(t, "detach"):
        t = t.detach()
    if hasattr(t, "numpy"):
        return np.asarray(t.numpy())
    return np.asarray(t)


def dtype_name(dt) -> str:
    """'float32' for torch.float32, jitgrad.float32, np.dtype('float32'), ..."""
    return str(dt).rsplit(".", 1)[-1]


def numeric_vjp(case: OpCase, T, seed: int, g: np.ndarray, eps: float = 1e-6) -> list:
    """Central differences of sum(fn(inputs) * g) w.r.t. every float input, in float64.

    Returns one array per input (None for int/bool inputs).  Runs only forward passes of T.
    """
    arrays = make_arrays(case, "float64", seed)

    def f(arrs):
        out = case.fn(T, *tensors_from_arrays(case, T, arrs, requires_grad=False))
        return float(np.sum(to_numpy(out).astype(np.float64) * g))

    grads = []
    for i, spec in enumerate(case.inputs):
        if not spec.is_float:
            grads.append(None)
            continue
        base = arrays[i]
        gi = np.zeros_like(base)
        for j in np.ndindex(base.shape):
            plus = [a.copy() for a in arrays]
            minus = [a.copy() for a in arrays]
            plus[i][j] += eps
            minus[i][j] -= eps
            gi[j] = (f(plus) - f(minus)) / (2 * eps)
        grads.append(gi)
    return grads


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------

def R(*shape):
    return InputSpec(shape, "real")


def P(*shape):
    return InputSpec(shape, "positive")


def U(*shape):
    return InputSpec(shape, "unit")


def NZ(*shape):
    return InputSpec(shape, "nonzero")


def AZ(*shape):
    return InputSpec(shape, "awayfromzero")


def D(*shape):
    return InputSpec(shape, "distinct")


def TIES(*shape):
    return InputSpec(shape, "ties")


def BOOL(*shape):
    return InputSpec(shape, "bool")


def INT(*shape, high, low=0):
    return InputSpec(shape, "int", low=low, high=high)


OP_CASES: list[OpCase] = []


def case(name, op, fn, *inputs, **kw):
    OP_CASES.append(OpCase(name, op, fn, tuple(inputs), **kw))


def F(T):
    return T.nn.functional


# ---- elementwise binary arithmetic -----------------------------------------------------------

case("add", "add", lambda T, x, y: x + y, R(3, 4), R(3, 4))
case("add_fn", "add", lambda T, x, y: T.add(x, y), R(3, 4), R(3, 4))
case("add_method", "add", lambda T, x, y: x.add(y), R(3, 4), R(3, 4))
case("add_broadcast", "add", lambda T, x, y: x + y, R(3, 1), R(4))
case("add_broadcast_both", "add", lambda T, x, y: x + y, R(2, 1, 4), R(3, 1))
case("add_scalar_rhs", "add", lambda T, x: x + 2.5, R(3, 4))
case("add_scalar_lhs", "add", lambda T, x: 2.5 + x, R(3, 4))
case("add_int_scalar", "add", lambda T, x: x + 2, R(3, 4))
case("add_0d_rhs", "add", lambda T, x, y: x + y, R(3, 4), R())
case("add_0d_lhs", "add", lambda T, x, y: x + y, R(), R(2, 3))
case("add_0d_0d", "add", lambda T, x, y: x + y, R(), R())
case("add_alpha", "add", lambda T, x, y: T.add(x, y, alpha=2.0), R(3, 4), R(4))
case("add_self", "add", lambda T, x: x + x, R(3, 4))
case("add_int_tensor", "add", lambda T, x, i: x + i, R(3, 4), INT(3, 4, high=5))
case("add_int_int", "add", lambda T, i, j: i + j, INT(3, 4, high=5), INT(4, high=5),
     grad=False, dtypes=("int64",))

case("sub", "sub", lambda T, x, y: x - y, R(3, 4), R(3, 4))
case("sub_fn", "sub", lambda T, x, y: T.sub(x, y), R(3, 4), R(3, 4))
case("sub_broadcast", "sub", lambda T, x, y: x - y, R(4), R(3, 1))
case("sub_scalar_rhs", "sub", lambda T, x: x - 1.5, R(3, 4))
case("sub_scalar_lhs", "rsub", lambda T, x: 1.5 - x, R(3, 4))
case("sub_0d", "sub", lambda T, x, y: x - y, R(), R(4))
case("sub_self", "sub", lambda T, x: x - x * 0.5, R(3))

case("mul", "mul", lambda T, x, y: x * y, R(3, 4), R(3, 4))
case("mul_fn", "mul", lambda T, x, y: T.mul(x, y), R(3, 4), R(3, 4))
case("mul_broadcast", "mul", lambda T, x, y: x * y, R(2, 3, 1), R(3, 4))
case("mul_scalar_rhs", "mul", lambda T, x: x * -1.5, R(3, 4))
case("mul_scalar_lhs", "mul", lambda T, x: 3 * x, R(3, 4))
case("mul_0d", "mul", lambda T, x, y: x * y, R(3, 4), R())
case("mul_self", "mul", lambda T, x: x * x, R(3, 4))
case("mul_bool_tensor", "mul", lambda T, x, m: x * m, R(3, 4), BOOL(3, 4))

case("div", "div", lambda T, x, y: x / y, R(3, 4), NZ(3, 4))
case("div_fn", "div", lambda T, x, y: T.div(x, y), R(3, 4), NZ(3, 4))
case("div_broadcast", "div", lambda T, x, y: x / y, R(3, 4), NZ(3, 1))
case("div_scalar_rhs", "div", lambda T, x: x / 4.0, R(3, 4))
case("div_scalar_lhs", "div", lambda T, y: 2.0 / y, NZ(3, 4))
case("div_0d", "div", lambda T, x, y: x / y, R(4), NZ())
case("div_int_int", "div", lambda T, i, j: i / j, INT(3, 4, high=5), INT(4, low=1, high=4),
     grad=False, dtypes=("int64",))

case("neg", "neg", lambda T, x: -x, R(3, 4))
case("neg_fn", "neg", lambda T, x: T.neg(x), R(3, 4))
case("neg_0d", "neg", lambda T, x: x.neg(), R())

case("pow_tensor_tensor", "pow", lambda T, x, y: x ** y, P(3, 4), R(3, 4))
case("pow_tensor_tensor_broadcast", "pow", lambda T, x, y: x ** y, P(3, 1), R(4))
case("pow_fn", "pow", lambda T, x, y: T.pow(x, y), P(3, 4), R(3, 4))
case("pow_square", "pow", lambda T, x: x ** 2, R(3, 4))
case("pow_cube", "pow", lambda T, x: x.pow(3), R(3, 4))
case("pow_sqrt", "pow", lambda T, x: x ** 0.5, P(3, 4))
case("pow_neg_frac", "pow", lambda T, x: x ** -1.5, P(3, 4))
case("pow_scalar_base", "pow", lambda T, x: 2.0 ** x, R(3, 4))
case("pow_scalar_base_fn", "pow", lambda T, x: T.pow(0.5, x), R(3, 4))
case("pow_0d_exponent", "pow", lambda T, x, y: x ** y, P(3, 4), R())

# ---- elementwise unary -------------------------------------------------------------------------

case("exp", "exp", lambda T, x: x.exp(), R(3, 4))
case("exp_fn", "exp", lambda T, x: T.exp(x), R(2, 3, 4))
case("exp_0d", "exp", lambda T, x: T.exp(x), R())
case("log", "log", lambda T, x: x.log(), P(3, 4))
case("log_fn", "log", lambda T, x: T.log(x), P(4))
case("log1p", "log1p", lambda T, x: x.log1p(), U(3, 4))
case("log1p_fn", "log1p", lambda T, x: T.log1p(x), P(3, 4))
case("expm1", "expm1", lambda T, x: x.expm1(), R(3, 4))
case("expm1_fn", "expm1", lambda T, x: T.expm1(x), U(4))
case("sin", "sin", lambda T, x: x.sin(), R(3, 4))
case("sin_fn", "sin", lambda T, x: T.sin(x), R(4))
case("cos", "cos", lambda T, x: x.cos(), R(3, 4))
case("cos_fn", "cos", lambda T, x: T.cos(x), R(4))
case("tanh", "tanh", lambda T, x: x.tanh(), R(3, 4))
case("tanh_fn", "tanh", lambda T, x: T.tanh(x), R(4))
case("tanh_F", "tanh", lambda T, x: F(T).tanh(x), R(3, 4))
case("sigmoid", "sigmoid", lambda T, x: x.sigmoid(), R(3, 4))
case("sigmoid_fn", "sigmoid", lambda T, x: T.sigmoid(x), R(4))
case("sigmoid_F", "sigmoid", lambda T, x: F(T).sigmoid(x), R(3, 4))
case("relu", "relu", lambda T, x: x.relu(), AZ(3, 4))
case("relu_fn", "relu", lambda T, x: T.relu(x), AZ(4))
case("relu_F", "relu", lambda T, x: F(T).relu(x), AZ(3, 4))
case("relu_at_zero", "relu", lambda T, x: T.relu(x), TIES(3, 4), fd=False)  # grad 0 at x == 0
case("gelu", "gelu", lambda T, x: F(T).gelu(x), R(3, 4))
case("gelu_none", "gelu", lambda T, x: F(T).gelu(x, approximate="none"), R(4))
case("gelu_tanh", "gelu", lambda T, x: F(T).gelu(x, approximate="tanh"), R(3, 4))
case("sqrt", "sqrt", lambda T, x: x.sqrt(), P(3, 4))
case("sqrt_fn", "sqrt", lambda T, x: T.sqrt(x), P(4))
case("rsqrt", "rsqrt", lambda T, x: x.rsqrt(), P(3, 4))
case("rsqrt_fn", "rsqrt", lambda T, x: T.rsqrt(x), P(4))
case("abs", "abs", lambda T, x: x.abs(), AZ(3, 4))
case("abs_fn", "abs", lambda T, x: T.abs(x), AZ(4))
case("abs_builtin", "abs", lambda T, x: abs(x), AZ(3, 4))
case("abs_at_zero", "abs", lambda T, x: x.abs(), TIES(3, 4), fd=False)  # grad sign(0) == 0
case("sign", "sign", lambda T, x: x.sign(), AZ(3, 4))
case("sign_fn", "sign", lambda T, x: T.sign(x), TIES(3, 4), fd=False)  # sign(0) == 0
case("reciprocal", "reciprocal", lambda T, x: x.reciprocal(), NZ(3, 4))
case("reciprocal_fn", "reciprocal", lambda T, x: T.reciprocal(x), NZ(4))
case("square", "square", lambda T, x: x.square(), R(3, 4))
case("square_fn", "square", lambda T, x: T.square(x), R(4))

case("clamp_min", "clamp", lambda T, x: x.clamp(min=0.0), AZ(3, 4))
case("clamp_max", "clamp", lambda T, x: x.clamp(max=0.25), AZ(3, 4))
case("clamp_both", "clamp", lambda T, x: x.clamp(-1.0, 1.0), AZ(3, 4))
case("clamp_fn", "clamp", lambda T, x: T.clamp(x, min=-0.25, max=1.0), AZ(3, 4))
case("clamp_at_bounds", "clamp", lambda T, x: x.clamp(-1.0, 1.0), TIES(3, 4),
     fd=False)  # torch passes the gradient where min <= x <= max (bounds included)

case("maximum", "maximum", lambda T, x, y: T.maximum(x, y), R(3, 4), R(3, 4))
case("maximum_method", "maximum", lambda T, x, y: x.maximum(y), R(3, 4), R(3, 4))
case("maximum_broadcast", "maximum", lambda T, x, y: T.maximum(x, y), R(3, 1), R(4))
case("maximum_ties", "maximum", lambda T, x, y: T.maximum(x, y), TIES(3, 4), TIES(3, 4),
     fd=False)  # torch splits the gradient evenly on ties
case("minimum", "minimum", lambda T, x, y: T.minimum(x, y), R(3, 4), R(3, 4))
case("minimum_broadcast", "minimum", lambda T, x, y: x.minimum(y), R(4), R(2, 3, 1))
case("minimum_ties", "minimum", lambda T, x, y: T.minimum(x, y), TIES(3, 4), TIES(3, 4),
     fd=False)

case("where", "where", lambda T, c, x, y: T.where(c, x, y), BOOL(3, 4), R(3, 4), R(3, 4))
case("where_broadcast", "where", lambda T, c, x, y: T.where(c, x, y), BOOL(3, 1), R(4), R(2, 1, 1))
case("where_scalar_other", "where", lambda T, c, x: T.where(c, x, 0.0), BOOL(3, 4), R(3, 4))
case("where_scalar_input", "where", lambda T, c, y: T.where(c, 1.5, y), BOOL(3, 4), R(3, 4))
case("where_method", "where", lambda T, c, x, y: x.where(c, y), BOOL(3, 4), R(3, 4), R(3, 4))
# The condition comes from a float tensor that requires grad: its .grad stays None.
case("where_cond_from_tensor", "where", lambda T, x, y, z: T.where(x > 0, y, z),
     AZ(3, 4), R(3, 4), R(3, 4))

for _cmp, _f in [("eq", lambda a, b: a == b), ("ne", lambda a, b: a != b),
                 ("lt", lambda a, b: a < b), ("le", lambda a, b: a <= b),
                 ("gt", lambda a, b: a > b), ("ge", lambda a, b: a >= b)]:
    case(_cmp, _cmp, (lambda f: lambda T, x, y: f(x, y))(_f), TIES(3, 4), TIES(3, 4), grad=False)
    case(f"{_cmp}_broadcast", _cmp, (lambda f: lambda T, x, y: f(x, y))(_f), TIES(3, 1), TIES(4),
         grad=False)
    case(f"{_cmp}_scalar", _cmp, (lambda f: lambda T, x: f(x, 0.0))(_f), TIES(3, 4), grad=False)
    case(f"{_cmp}_method", _cmp, (lambda n: lambda T, x, y: getattr(x, n)(y))(_cmp),
         TIES(3, 4), TIES(3, 4), grad=False)
    case(f"{_cmp}_fn", _cmp, (lambda n: lambda T, x, y: getattr(T, n)(x, y))(_cmp),
         TIES(4), TIES(4), grad=False)
case("eq_int", "eq", lambda T, i, j: i == j, INT(3, 4, high=3), INT(4, high=3), grad=False,
     dtypes=("int64",))

# ---- reductions --------------------------------------------------------------------------------

case("sum", "sum", lambda T, x: x.sum(), R(3, 4))
case("sum_fn", "sum", lambda T, x: T.sum(x), R(2, 3, 4))
case("sum_dim", "sum", lambda T, x: x.sum(dim=1), R(3, 4))
case("sum_dim_pos", "sum", lambda T, x: x.sum(0), R(3, 4))
case("sum_neg_dim", "sum", lambda T, x: x.sum(-1), R(2, 3, 4))
case("sum_dims_tuple", "sum", lambda T, x: x.sum(dim=(0, 2)), R(2, 3, 4))
case("sum_dims_tuple_neg", "sum", lambda T, x: x.sum(dim=(-1, -2)), R(2, 3, 4))
case("sum_keepdim", "sum", lambda T, x: x.sum(dim=1, keepdim=True), R(2, 3, 4))
case("sum_dims_keepdim", "sum", lambda T, x: T.sum(x, (0, 2), keepdim=True), R(2, 3, 4))
case("sum_0d", "sum", lambda T, x: x.sum(), R())
case("sum_1d", "sum", lambda T, x: x.sum(0), R(4))
case("sum_int", "sum", lambda T, i: i.sum(dim=0), INT(3, 4, high=5), grad=False,
     dtypes=("int64",))
case("sum_bool", "sum", lambda T, m: m.sum(), BOOL(3, 4), grad=False, dtypes=("int64",))

case("mean", "mean", lambda T, x: x.mean(), R(3, 4))
case("mean_fn", "mean", lambda T, x: T.mean(x), R(2, 3, 4))
case("mean_dim", "mean", lambda T, x: x.mean(dim=0), R(3, 4))
case("mean_neg_dim", "mean", lambda T, x: x.mean(-1), R(2, 3, 4))
case("mean_dims_tuple", "mean", lambda T, x: x.mean(dim=(0, 2)), R(2, 3, 4))
case("mean_keepdim", "mean", lambda T, x: x.mean(dim=-2, keepdim=True), R(2, 3, 4))
case("mean_0d", "mean", lambda T, x: x.mean(), R())

case("var", "var", lambda T, x: x.var(), R(3, 4))
case("var_dim", "var", lambda T, x: x.var(dim=1), R(3, 4))
case("var_correction0", "var", lambda T, x: x.var(dim=1, correction=0), R(3, 4))
case("var_correction1", "var", lambda T, x: x.var(dim=0, correction=1), R(3, 4))
case("var_unbiased_false", "var", lambda T, x: x.var(dim=-1, unbiased=False), R(2, 3, 4))
case("var_keepdim", "var", lambda T, x: x.var(dim=-1, keepdim=True), R(2, 3, 4))
case("var_dims_tuple", "var", lambda T, x: x.var(dim=(0, 2)), R(2, 3, 4))
case("var_fn", "var", lambda T, x: T.var(x, dim=0), R(3, 4))
case("std", "std", lambda T, x: x.std(), R(3, 4))
case("std_dim", "std", lambda T, x: x.std(dim=1), R(3, 4))
case("std_correction0", "std", lambda T, x: x.std(dim=0, correction=0), R(3, 4))
case("std_unbiased_false", "std", lambda T, x: x.std(unbiased=False), R(3, 4))
case("std_keepdim", "std", lambda T, x: x.std(dim=-1, keepdim=True), R(2, 3, 4))
case("std_fn", "std", lambda T, x: T.std(x, dim=(1, 2)), R(2, 3, 4))

case("max", "max", lambda T, x: x.max(), D(3, 4))
case("max_fn", "max", lambda T, x: T.max(x), D(2, 3, 4))
case("max_dim_values", "max_dim", lambda T, x: x.max(dim=1).values, D(3, 4))
case("max_dim_keepdim_values", "max_dim", lambda T, x: x.max(dim=1, keepdim=True).values, D(3, 4))
case("max_neg_dim_values", "max_dim", lambda T, x: x.max(-1).values, D(2, 3, 4))
case("max_dim_tuple_index", "max_dim", lambda T, x: T.max(x, 0)[0], D(3, 4))
case("max_dim_indices", "max_dim", lambda T, x: x.max(dim=1).indices, D(3, 4), grad=False)
case("max_dim_keepdim_indices", "max_dim", lambda T, x: x.max(dim=0, keepdim=True).indices,
     D(3, 4), grad=False)
case("max_ties", "max", lambda T, x: x.max(), TIES(3, 4),
     fd=False)  # full max: gradient split evenly between tied maxima
case("max_dim_ties_values", "max_dim", lambda T, x: x.max(dim=1).values, TIES(3, 4),
     fd=False)  # dim max: all gradient to the returned index
case("max_dim_ties_indices", "max_dim", lambda T, x: x.max(dim=1).indices, TIES(3, 4),
     grad=False)  # CPU torch returns the first maximal index
case("min", "min", lambda T, x: x.min(), D(3, 4))
case("min_fn", "min", lambda T, x: T.min(x), D(4))
case("min_dim_values", "min_dim", lambda T, x: x.min(dim=0).values, D(3, 4))
case("min_dim_keepdim_values", "min_dim", lambda T, x: x.min(dim=-1, keepdim=True).values,
     D(2, 3, 4))
case("min_dim_indices", "min_dim", lambda T, x: x.min(dim=-1).indices, D(2, 3, 4), grad=False)
case("min_ties", "min", lambda T, x: x.min(), TIES(3, 4), fd=False)
case("min_dim_ties_values", "min_dim", lambda T, x: x.min(dim=0).values, TIES(3, 4), fd=False)
case("min_dim_ties_indices", "min_dim", lambda T, x: x.min(dim=0).indices, TIES(3, 4), grad=False)

case("amax", "amax", lambda T, x: x.amax(), D(3, 4))
case("amax_dim", "amax", lambda T, x: x.amax(dim=1), D(3, 4))
case("amax_dims_tuple", "amax", lambda T, x: T.amax(x, dim=(0, 2)), D(2, 3, 4))
case("amax_keepdim", "amax", lambda T, x: x.amax(dim=-1, keepdim=True), D(2, 3, 4))
case("amax_ties", "amax", lambda T, x: x.amax(dim=1), TIES(3, 4),
     fd=False)  # amax splits the gradient evenly between ties
case("amin", "amin", lambda T, x: x.amin(), D(3, 4))
case("amin_dim", "amin", lambda T, x: T.amin(x, dim=0), D(3, 4))
case("amin_keepdim", "amin", lambda T, x: x.amin(dim=(0, 1), keepdim=True), D(2, 3, 4))
case("amin_ties", "amin", lambda T, x: x.amin(dim=0), TIES(3, 4), fd=False)

case("logsumexp", "logsumexp", lambda T, x: x.logsumexp(dim=1), R(3, 4))
case("logsumexp_fn", "logsumexp", lambda T, x: T.logsumexp(x, dim=0), R(3, 4))
case("logsumexp_keepdim", "logsumexp", lambda T, x: x.logsumexp(dim=-1, keepdim=True), R(2, 3, 4))
case("logsumexp_dims_tuple", "logsumexp", lambda T, x: T.logsumexp(x, dim=(0, 2)), R(2, 3, 4))
case("logsumexp_large", "logsumexp", lambda T, x: T.logsumexp(x * 40.0, dim=1),
     R(3, 4))  # needs the max-shift to stay finite in float32

case("prod", "prod", lambda T, x: x.prod(), AZ(3, 4))
case("prod_fn", "prod", lambda T, x: T.prod(x), AZ(4))
case("prod_dim", "prod", lambda T, x: x.prod(dim=1), AZ(3, 4))
case("prod_neg_dim_keepdim", "prod", lambda T, x: x.prod(-1, keepdim=True), AZ(2, 3, 4))

# ---- movement ----------------------------------------------------------------------------------

case("reshape", "reshape", lambda T, x: x.reshape(4, 3), R(3, 4))
case("reshape_tuple", "reshape", lambda T, x: x.reshape((2, -1)), R(3, 4))
case("reshape_flat", "reshape", lambda T, x: x.reshape(-1), R(2, 3, 2))
case("reshape_fn", "reshape", lambda T, x: T.reshape(x, (3, 2, 2)), R(3, 4))
case("reshape_to_0d", "reshape", lambda T, x: x.reshape(()), R(1))
case("reshape_from_0d", "reshape", lambda T, x: x.reshape(1, 1), R())
case("view", "view", lambda T, x: x.view(2, 6), R(3, 4))
case("view_neg1", "view", lambda T, x: x.view(-1, 2), R(3, 4))
case("view_flat", "view", lambda T, x: x.view(-1), R(2, 3, 2))
case("permute", "permute", lambda T, x: x.permute(2, 0, 1), R(2, 3, 4))
case("permute_tuple_neg", "permute", lambda T, x: x.permute((-1, 0, 1)), R(2, 3, 4))
case("permute_fn", "permute", lambda T, x: T.permute(x, (1, 0)), R(3, 4))
case("transpose", "transpose", lambda T, x: x.transpose(0, 1), R(3, 4))
case("transpose_neg", "transpose", lambda T, x: x.transpose(-1, -3), R(2, 3, 4))
case("transpose_fn", "transpose", lambda T, x: T.transpose(x, 1, 2), R(2, 3, 4))
case("t", "t", lambda T, x: x.t(), R(3, 4))
case("t_fn", "t", lambda T, x: T.t(x), R(3, 4))
case("t_1d", "t", lambda T, x: x.t(), R(4))
case("T_property", "t", lambda T, x: x.T, R(3, 4))  # .T of a 2-D tensor is t()
case("expand", "expand", lambda T, x: x.expand(3, 4), R(3, 1))
case("expand_new_dim", "expand", lambda T, x: x.expand(2, 3, 4), R(3, 1))
case("expand_neg1", "expand", lambda T, x: x.expand(-1, 4), R(3, 1))
case("expand_tuple", "expand", lambda T, x: x.expand((2, 4)), R(4))
case("expand_0d", "expand", lambda T, x: x.expand(2, 3), R())
case("squeeze", "squeeze", lambda T, x: x.squeeze(), R(3, 1, 4, 1))
case("squeeze_dim", "squeeze", lambda T, x: x.squeeze(1), R(3, 1, 4))
case("squeeze_neg_dim", "squeeze", lambda T, x: x.squeeze(-1), R(3, 4, 1))
case("squeeze_noop", "squeeze", lambda T, x: x.squeeze(0), R(3, 4))
case("squeeze_dims_tuple", "squeeze", lambda T, x: x.squeeze((1, 3)), R(3, 1, 4, 1))
case("squeeze_fn", "squeeze", lambda T, x: T.squeeze(x, 0), R(1, 4))
case("unsqueeze", "unsqueeze", lambda T, x: x.unsqueeze(0), R(3, 4))
case("unsqueeze_mid", "unsqueeze", lambda T, x: x.unsqueeze(1), R(3, 4))
case("unsqueeze_neg", "unsqueeze", lambda T, x: x.unsqueeze(-1), R(3, 4))
case("unsqueeze_0d", "unsqueeze", lambda T, x: T.unsqueeze(x, 0), R())
case("flatten", "flatten", lambda T, x: x.flatten(), R(2, 3, 4))
case("flatten_start", "flatten", lambda T, x: x.flatten(1), R(2, 3, 4))
case("flatten_range", "flatten", lambda T, x: x.flatten(0, 1), R(2, 3, 4))
case("flatten_fn", "flatten", lambda T, x: T.flatten(x, start_dim=-2), R(2, 3, 4))
case("flatten_0d", "flatten", lambda T, x: x.flatten(), R())

case("getitem_int", "getitem", lambda T, x: x[1], R(3, 4))
case("getitem_neg_int", "getitem", lambda T, x: x[-1], R(3, 4))
case("getitem_int_int", "getitem", lambda T, x: x[2, -1], R(3, 4))
case("getitem_slice", "getitem", lambda T, x: x[1:3], R(4, 3))
case("getitem_slice_step", "getitem", lambda T, x: x[::2], R(4, 3))
case("getitem_slice_neg", "getitem", lambda T, x: x[-2:, :-1], R(3, 4))
case("getitem_slice_2d", "getitem", lambda T, x: x[1:, ::3], R(3, 4))
case("getitem_col", "getitem", lambda T, x: x[:, 1], R(3, 4))
case("getitem_ellipsis", "getitem", lambda T, x: x[..., 1], R(2, 3, 4))
case("getitem_ellipsis_mid", "getitem", lambda T, x: x[0, ..., 1:3], R(2, 3, 4))
case("getitem_none", "getitem", lambda T, x: x[None], R(3, 4))
case("getitem_none_mixed", "getitem", lambda T, x: x[:, None, 1:], R(3, 4))
case("getitem_list", "getitem", lambda T, x: x[[0, 2]], R(3, 4))
case("getitem_list_repeat", "getitem", lambda T, x: x[[2, 0, 2]], R(3, 4))  # grads accumulate
case("getitem_list_slice", "getitem", lambda T, x: x[[0, 2], 1:], R(3, 4))
case("getitem_two_lists", "getitem", lambda T, x: x[[0, 1, 1], [3, 0, 3]], R(3, 4))
case("getitem_list_col", "getitem", lambda T, x: x[:, [3, 1]], R(3, 4))
case("getitem_int_tensor", "getitem", lambda T, x: x[T.tensor([1, 0, 1])], R(3, 4))
case("getitem_int_tensor_input", "getitem", lambda T, x, i: x[i], R(4, 3), INT(2, 3, high=4))
case("getitem_neg_int_tensor", "getitem", lambda T, x: x[:, T.tensor([-1, 0])], R(3, 4))
case("getitem_bool_mask", "getitem", lambda T, x, m: x[m], R(3, 4), BOOL(3, 4))
case("getitem_bool_mask_rows", "getitem", lambda T, x: x[T.tensor([True, False, True])], R(3, 4))
case("getitem_data_mask", "getitem", lambda T, x: x[x > 0], AZ(3, 4))
case("getitem_0d_result", "getitem", lambda T, x: x[1][2], R(3, 4))


def _setitem_row(T, x, z):
    y = x.clone()
    y[1] = z
    return y


def _setitem_slice(T, x, z):
    y = x.clone()
    y[:, 1:3] = z
    return y


def _setitem_scalar(T, x):
    y = x.clone()
    y[0] = 2.0
    return y


def _setitem_broadcast(T, x, z):
    y = x.clone()
    y[[0, 2]] = z          # z (4,) broadcast to (2, 4)
    return y


def _setitem_mask(T, x, m):
    y = x.clone()
    y[m] = 0.0
    return y


def _setitem_ellipsis(T, x, z):
    y = x.clone()
    y[..., 0] = z
    return y


def _setitem_element(T, x, z):
    y = x.clone()
    y[2, -1] = z           # z 0-d
    return y


def _setitem_then_use(T, x, z):
    y = x * 2.0
    y[1:] = z * z
    return y.sum(0)


case("setitem_row", "index_put", _setitem_row, R(3, 4), R(4))
case("setitem_slice", "index_put", _setitem_slice, R(3, 4), R(3, 2))
case("setitem_scalar", "index_put", _setitem_scalar, R(3, 4))
case("setitem_list_broadcast", "index_put", _setitem_broadcast, R(3, 4), R(4))
case("setitem_mask", "index_put", _setitem_mask, R(3, 4), BOOL(3, 4))
case("setitem_ellipsis", "index_put", _setitem_ellipsis, R(2, 3, 4), R(2, 3))
case("setitem_element", "index_put", _setitem_element, R(3, 4), R())
case("setitem_nonleaf", "index_put", _setitem_then_use, R(3, 4), R(2, 4))

case("cat", "cat", lambda T, x, y: T.cat([x, y]), R(2, 4), R(3, 4))
case("cat_dim1", "cat", lambda T, x, y: T.cat([x, y], dim=1), R(3, 1), R(3, 4))
case("cat_neg_dim", "cat", lambda T, x, y, z: T.cat((x, y, z), dim=-1), R(2, 2, 1), R(2, 2, 3),
     R(2, 2, 2))
case("cat_same_tensor", "cat", lambda T, x: T.cat([x, x * 2.0], 0), R(2, 3))
case("stack", "stack", lambda T, x, y: T.stack([x, y]), R(3, 4), R(3, 4))
case("stack_dim1", "stack", lambda T, x, y, z: T.stack((x, y, z), dim=1), R(3, 4), R(3, 4),
     R(3, 4))
case("stack_neg_dim", "stack", lambda T, x, y: T.stack([x, y], dim=-1), R(2, 3), R(2, 3))
case("stack_0d", "stack", lambda T, x, y: T.stack([x, y]), R(), R())
case("clone", "clone", lambda T, x: x.clone(), R(3, 4))
case("clone_fn", "clone", lambda T, x: T.clone(x), R(3, 4))
case("contiguous", "contiguous", lambda T, x: x.contiguous(), R(3, 4))
case("contiguous_transposed", "contiguous", lambda T, x: x.t().contiguous().view(-1), R(3, 4))

# ---- matmul ------------------------------------------------------------------------------------

case("matmul", "matmul", lambda T, x, y: x @ y, R(3, 4), R(4, 2))
case("matmul_fn", "matmul", lambda T, x, y: T.matmul(x, y), R(3, 4), R(4, 2))
case("matmul_method", "matmul", lambda T, x, y: x.matmul(y), R(3, 4), R(4, 2))
case("matmul_batch_mat", "matmul", lambda T, x, y: x @ y, R(2, 3, 4), R(4, 3))
case("matmul_mat_batch", "matmul", lambda T, x, y: x @ y, R(3, 4), R(2, 4, 2))
case("matmul_batch_broadcast", "matmul", lambda T, x, y: x @ y, R(2, 1, 3, 4), R(3, 4, 2))
case("matmul_batch_batch", "matmul", lambda T, x, y: T.matmul(x, y), R(2, 3, 4), R(2, 4, 2))
case("matmul_vec_vec", "matmul", lambda T, x, y: x @ y, R(4), R(4))
case("matmul_mat_vec", "matmul", lambda T, x, y: x @ y, R(3, 4), R(4))
case("matmul_vec_mat", "matmul", lambda T, x, y: x @ y, R(4), R(4, 2))
case("matmul_batch_vec", "matmul", lambda T, x, y: x @ y, R(2, 3, 4), R(4))
case("matmul_vec_batch", "matmul", lambda T, x, y: x @ y, R(3), R(2, 3, 4))
case("mm", "mm", lambda T, x, y: T.mm(x, y), R(3, 4), R(4, 2))
case("mm_method", "mm", lambda T, x, y: x.mm(y), R(2, 3), R(3, 4))
case("bmm", "bmm", lambda T, x, y: T.bmm(x, y), R(2, 3, 4), R(2, 4, 2))
case("bmm_method", "bmm", lambda T, x, y: x.bmm(y), R(3, 2, 2), R(3, 2, 4))

# ---- torch.nn.functional -----------------------------------------------------------------------

case("softmax", "softmax", lambda T, x: F(T).softmax(x, dim=-1), R(3, 4))
case("softmax_dim0", "softmax", lambda T, x: F(T).softmax(x, dim=0), R(3, 4))
case("softmax_3d", "softmax", lambda T, x: F(T).softmax(x, dim=1), R(2, 3, 4))
case("softmax_1d", "softmax", lambda T, x: x.softmax(0), R(4))
case("softmax_fn", "softmax", lambda T, x: T.softmax(x, dim=-1), R(2, 3, 4))
case("softmax_large", "softmax", lambda T, x: F(T).softmax(x * 40.0, dim=-1), R(3, 4))
case("log_softmax", "log_softmax", lambda T, x: F(T).log_softmax(x, dim=-1), R(3, 4))
case("log_softmax_dim0", "log_softmax", lambda T, x: F(T).log_softmax(x, dim=0), R(3, 4))
case("log_softmax_3d", "log_softmax", lambda T, x: F(T).log_softmax(x, dim=-2), R(2, 3, 4))
case("log_softmax_method", "log_softmax", lambda T, x: x.log_softmax(-1), R(4))
case("log_softmax_fn", "log_softmax", lambda T, x: T.log_softmax(x, 1), R(3, 4))
case("log_softmax_large", "log_softmax", lambda T, x: F(T).log_softmax(x * 40.0, dim=1), R(3, 4))

case("cross_entropy", "cross_entropy", lambda T, x, t: F(T).cross_entropy(x, t),
     R(3, 4), INT(3, high=4))
case("cross_entropy_sum", "cross_entropy",
     lambda T, x, t: F(T).cross_entropy(x, t, reduction="sum"), R(3, 4), INT(3, high=4))
case("cross_entropy_none", "cross_entropy",
     lambda T, x, t: F(T).cross_entropy(x, t, reduction="none"), R(4, 3), INT(4, high=3))
case("cross_entropy_mean_explicit", "cross_entropy",
     lambda T, x, t: F(T).cross_entropy(x, t, reduction="mean"), R(2, 4), INT(2, high=4))
case("cross_entropy_unbatched", "cross_entropy", lambda T, x, t: F(T).cross_entropy(x, t),
     R(4), INT(high=4))
case("cross_entropy_spatial", "cross_entropy", lambda T, x, t: F(T).cross_entropy(x, t),
     R(2, 3, 4), INT(2, 4, high=3))  # class dim is 1: (N, C, d) with targets (N, d)

case("mse_loss", "mse_loss", lambda T, x, y: F(T).mse_loss(x, y), R(3, 4), R(3, 4))
case("mse_loss_sum", "mse_loss", lambda T, x, y: F(T).mse_loss(x, y, reduction="sum"),
     R(3, 4), R(3, 4))
case("mse_loss_none", "mse_loss", lambda T, x, y: F(T).mse_loss(x, y, reduction="none"),
     R(3, 4), R(3, 4))
case("mse_loss_0d", "mse_loss", lambda T, x, y: F(T).mse_loss(x, y), R(), R())

case("layer_norm", "layer_norm", lambda T, x, w, b: F(T).layer_norm(x, (4,), w, b),
     R(3, 4), R(4), R(4))
case("layer_norm_kw", "layer_norm",
     lambda T, x, w, b: F(T).layer_norm(x, [4], weight=w, bias=b, eps=1e-3), R(2, 3, 4), R(4), R(4))
case("layer_norm_2d_shape", "layer_norm", lambda T, x, w, b: F(T).layer_norm(x, (3, 4), w, b),
     R(2, 3, 4), R(3, 4), R(3, 4))
case("layer_norm_no_affine", "layer_norm", lambda T, x: F(T).layer_norm(x, (4,)), R(3, 4))
case("layer_norm_weight_only", "layer_norm", lambda T, x, w: F(T).layer_norm(x, (4,), weight=w),
     R(3, 4), R(4))

# ---- in-place forms, applied to a clone so the input stays a leaf ------------------------------


def _inplace(method, *args, **kwargs):
    """fn(T, x, *others): y = x.clone(); y.<method>(*others, *args, **kwargs); return y."""
    def fn(T, x, *others):
        y = x.clone()
        ret = getattr(y, method)(*others, *args, **kwargs)
        assert ret is y, f"{method} must return self"
        return y
    fn.__name__ = f"inplace_{method}"
    return fn


def _iadd(T, x, z):
    y = x.clone()
    y += z
    return y


def _isub(T, x, z):
    y = x.clone()
    y -= z
    return y


def _imul(T, x, z):
    y = x.clone()
    y *= z
    return y


def _imul_scalar(T, x):
    y = x.clone()
    y *= 3.0
    return y


def _iadd_scalar(T, x):
    y = x.clone()
    y += 1.5
    return y


def _inplace_chain(T, x, z):
    y = x.clone()
    y.mul_(2.0).add_(z)
    return y


def _inplace_on_view(T, x, z):
    y = x.clone()
    y[1].mul_(z)           # in-place on a view writes through to y
    return y


def _inplace_then_reuse(T, x, z):
    y = x * 1.0
    s = y.exp()            # consumes y before the in-place op; exp saves its result, not y
    y.add_(z)
    return s + y


case("add_", "add_", _inplace("add_"), R(3, 4), R(3, 4))
case("add__broadcast", "add_", _inplace("add_"), R(3, 4), R(4))
case("add__scalar", "add_", _inplace("add_", 2.5), R(3, 4))
case("add__alpha", "add_", _inplace("add_", alpha=-0.5), R(3, 4), R(3, 1))
case("sub_", "sub_", _inplace("sub_"), R(3, 4), R(3, 4))
case("sub__scalar", "sub_", _inplace("sub_", 1.5), R(3, 4))
case("mul_", "mul_", _inplace("mul_"), R(3, 4), R(3, 4))
case("mul__broadcast_0d", "mul_", _inplace("mul_"), R(3, 4), R())
case("mul__scalar", "mul_", _inplace("mul_", -2.0), R(3, 4))
case("div_", "div_", _inplace("div_"), R(3, 4), NZ(3, 4))
case("div__scalar", "div_", _inplace("div_", 4.0), R(3, 4))
case("zero_", "fill", _inplace("zero_"), R(3, 4))
case("fill_", "fill", _inplace("fill_", 1.5), R(3, 4))
case("copy_", "copy", _inplace("copy_"), R(3, 4), R(3, 4))
case("copy__broadcast", "copy", _inplace("copy_"), R(3, 4), R(4))
case("clamp_", "clamp_", _inplace("clamp_", -1.0, 1.0), AZ(3, 4))
case("clamp__min", "clamp_", _inplace("clamp_", min=0.0), AZ(3, 4))
case("exp_", "exp_", _inplace("exp_"), R(3, 4))
case("sigmoid_", "sigmoid_", _inplace("sigmoid_"), R(3, 4))
case("iadd", "add_", _iadd, R(3, 4), R(3, 4))
case("iadd_broadcast", "add_", _iadd, R(3, 4), R(3, 1))
case("iadd_scalar", "add_", _iadd_scalar, R(3, 4))
case("isub", "sub_", _isub, R(3, 4), R(4))
case("imul", "mul_", _imul, R(3, 4), R(3, 4))
case("imul_scalar", "mul_", _imul_scalar, R(3, 4))
case("inplace_chain", "add_", _inplace_chain, R(3, 4), R(3, 4))
case("inplace_on_view", "mul_", _inplace_on_view, R(3, 4), R(4))
case("inplace_after_use", "add_", _inplace_then_reuse, R(3, 4), R(3, 4))

# ---- more registry ops: erf, remainder, floor_divide, logic, bits, nan tests, casts -----------

case("erf", "erf", lambda T, x: x.erf(), R(3, 4))
case("erf_fn", "erf", lambda T, x: T.erf(x), R(4))
case("rsub_fn", "rsub", lambda T, x, y: T.rsub(x, y), R(3, 4), R(4))  # y - x
case("rsub_0d", "rsub", lambda T, x: 1 - x, R())

# Away from the jumps (x / y never lands within eps of an integer for these seeds).
case("remainder", "remainder", lambda T, x, y: x % y, R(3, 4), P(3, 4))
case("remainder_fn", "remainder", lambda T, x, y: T.remainder(x, y), R(3, 4), P(4))
case("remainder_scalar", "remainder", lambda T, x: x % 0.75, R(3, 4))
case("remainder_neg_divisor", "remainder", lambda T, x: x.remainder(-0.75), R(3, 4))
case("remainder_int", "remainder", lambda T, i, j: i % j, INT(3, 4, low=-4, high=5),
     INT(4, low=1, high=4), grad=False, dtypes=("int64",))
# torch: float floor_divide is recorded (requires_grad=True) but its backward raises, so the
# float case is forward-only (grad=False).
case("floor_divide", "floor_divide", lambda T, x, y: x // y, R(3, 4), P(3, 4), grad=False)
case("floor_divide_scalar", "floor_divide", lambda T, x: T.floor_divide(x, 0.5), R(3, 4),
     grad=False)
case("floor_divide_int", "floor_divide", lambda T, i, j: i // j, INT(3, 4, low=-4, high=5),
     INT(4, low=1, high=4), grad=False, dtypes=("int64",))

case("logical_and", "logical_and", lambda T, x, y: T.logical_and(x, y), TIES(3, 4), TIES(3, 4),
     grad=False)
case("logical_and_bool", "logical_and", lambda T, a, b: a.logical_and(b), BOOL(3, 4), BOOL(4),
     grad=False, dtypes=("int64",))
case("logical_or", "logical_or", lambda T, x, y: T.logical_or(x, y), TIES(3, 4), TIES(4),
     grad=False)
case("logical_not", "logical_not", lambda T, x: T.logical_not(x), TIES(3, 4), grad=False)
case("logical_not_bool", "logical_not", lambda T, a: a.logical_not(), BOOL(3, 4), grad=False,
     dtypes=("int64",))
case("bitwise_and_bool", "bitwise_and", lambda T, a, b: a & b, BOOL(3, 4), BOOL(3, 4),
     grad=False, dtypes=("int64",))
case("bitwise_and_int", "bitwise_and", lambda T, i, j: T.bitwise_and(i, j), INT(3, 4, high=8),
     INT(4, high=8), grad=False, dtypes=("int64",))
case("bitwise_or_bool", "bitwise_or", lambda T, a, b: a | b, BOOL(3, 4), BOOL(3, 1),
     grad=False, dtypes=("int64",))
case("bitwise_or_int", "bitwise_or", lambda T, i, j: i | j, INT(3, 4, high=8), INT(3, 4, high=8),
     grad=False, dtypes=("int64",))
case("bitwise_not_bool", "bitwise_not", lambda T, a: ~a, BOOL(3, 4), grad=False,
     dtypes=("int64",))
case("bitwise_not_int", "bitwise_not", lambda T, i: T.bitwise_not(i), INT(3, 4, low=-4, high=5),
     grad=False, dtypes=("int64",))
case("mask_combine", "bitwise_and", lambda T, x: x[(x > -1.0) & ~(x > 1.0)], AZ(3, 4))

_NAN, _INF = float("nan"), float("inf")
case("isnan", "isnan", lambda T, x, m: T.isnan(T.where(m, x, _NAN)), R(3, 4), BOOL(3, 4),
     grad=False)
case("isnan_method", "isnan", lambda T, x: x.isnan(), R(3, 4), grad=False)
case("isinf", "isinf", lambda T, x, m: T.where(m, x, -_INF).isinf(), R(3, 4), BOOL(3, 4),
     grad=False)
case("isfinite", "isfinite", lambda T, x, m, n: T.isfinite(T.where(m, T.where(n, x, _INF), _NAN)),
     R(3, 4), BOOL(3, 4), BOOL(3, 4), grad=False)

case("to_float64", "to_dtype", lambda T, x: x.to(T.float64), R(3, 4))  # grad cast back
case("to_float32", "to_dtype", lambda T, x: x.to(dtype=T.float32) * 2.0, R(3, 4),
     fd=False)  # float32 rounding swamps eps=1e-6 differences
case("double", "to_dtype", lambda T, x: x.double(), R(3, 4))
case("float", "to_dtype", lambda T, x: x.float(), R(3, 4), fd=False)  # as to_float32
case("to_mixed_precision", "to_dtype", lambda T, x, y: x.double() * y.float(), R(3, 4), R(4),
     fd=False)  # y goes through float32
case("to_int64", "to_dtype", lambda T, x: (x * 3.0).long(), AZ(3, 4), grad=False)
case("int_to_float", "to_dtype", lambda T, i: i.float(), INT(3, 4, high=5), grad=False,
     dtypes=("int64",))
case("bool_to_float", "to_dtype", lambda T, x: (x > 0).to(x.dtype) * x, AZ(3, 4))

case("sum_to_size", "sum_to_size", lambda T, x: x.sum_to_size(3, 1), R(3, 4))
case("sum_to_size_tuple", "sum_to_size", lambda T, x: x.sum_to_size((1, 4)), R(3, 4))
case("sum_to_size_drop_lead", "sum_to_size", lambda T, x: x.sum_to_size(3, 1), R(2, 3, 4))
case("sum_to_size_same", "sum_to_size", lambda T, x: x.sum_to_size(3, 4), R(3, 4))

# index_backward is jitgrad's adjoint of advanced getitem (scatter-add of the upstream
# gradient); it has no public API, so this case exists to run it: its backward (repeated and
# negative indices, so contributions accumulate) is what is being tested.
case("getitem_advanced_backward", "index_backward", lambda T, x: x[[0, 2, 0, -3], 1:] * 2.0,
     R(3, 4))

# ---- mixed: a few small compositions that exercise several ops' backward together ---------------

case("mlp_layer", "matmul",
     lambda T, x, w, b: F(T).gelu(x @ w + b).sum(-1), R(3, 4), R(4, 2), R(2))
case("attention_scores", "softmax",
     lambda T, q, k: F(T).softmax(q @ k.transpose(-1, -2) * 0.5, dim=-1), R(2, 3, 4), R(2, 3, 4))

del _cmp, _f

CASES_BY_NAME = {c.name: c for c in OP_CASES}
assert len(CASES_BY_NAME) == len(OP_CASES), "duplicate case names in OP_CASES"
