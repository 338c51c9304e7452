"""Elementwise ops: arithmetic, unary math, comparisons, clamp, maximum/minimum and where.

Each op is its record (NumPy forward, saved values, derivative rule, scalar template), its
public function, and its Tensor methods, side by side.
"""
import math

import numpy as np

from ..dispatch import apply, apply_binary, apply_inplace, apply_unary
from ..tensor import Tensor
from .spec import defop, derivative


def _is_operand(x):
    return isinstance(x, (Tensor, int, float, bool, np.number, np.bool_))


def _operand(x):
    """Python numbers stay scalars (PyTorch's wrapped numbers); arrays and lists become tensors."""
    if _is_operand(x):
        return x.item() if isinstance(x, (np.number, np.bool_)) else x
    from ..creation import tensor
    return tensor(x)


def _binary(spec):
    def op(input, other):
        return apply_binary(spec, _operand(input), _operand(other))
    op.__name__ = spec.name
    return op


def _coerce(other):
    """A binary operator's other operand, or None when the operator should return
    NotImplemented (so Python tries the other type's reflected method)."""
    kind = type(other)
    if kind is Tensor or kind is float or kind is int:
        return other
    if not _is_operand(other) and not isinstance(other, (list, tuple, np.ndarray)):
        return None
    return _operand(other)


def _methods(spec):
    """Tensor methods for a binary op: self op other, other op self, and self op= other."""
    def forward(self, other):
        kind = type(other)
        if kind is not Tensor and kind is not float and kind is not int:
            other = _coerce(other)
            if other is None:
                return NotImplemented
        return apply_binary(spec, self, other)

    def reflected(self, other):
        other = _coerce(other)
        if other is None:
            return NotImplemented
        if spec is SUB:
            return apply(RSUB, (self, other))
        return apply(spec, (other, self))

    def inplace(self, other):
        return apply_inplace(spec, self, (self, _operand(other)))
    return forward, reflected, inplace


# -- arithmetic ------------------------------------------------------------------------------

ADD = defop("add", np.add, template="({0} + {1})", dtype_rule="promote")
SUB = defop("sub", np.subtract, template="({0} - {1})", dtype_rule="promote")
# `2 - x`: PyTorch's rsub (other - self), a separate op so its GradFn is RsubBackward1.
RSUB = defop("rsub", lambda x, other: np.subtract(other, x), template="({1} - {0})",
             dtype_rule="promote", grad_fn_name="RsubBackward1")
MUL = defop("mul", np.multiply, saves=(0, 1), template="({0} * {1})", dtype_rule="promote")
DIV = defop("div", np.true_divide, saves=(0, 1), template="({0} / {1})", dtype_rule="float")
NEG = defop("neg", np.negative, template="(-{0})")
POW = defop("pow", np.power, saves=(0, 1), save_out=True, template="pow({0}, {1})",
            dtype_rule="promote")
REMAINDER = defop("remainder", np.remainder, saves=(0, 1), template="remainder({0}, {1})",
                  dtype_rule="promote")
FLOOR_DIVIDE = defop("floor_divide", np.floor_divide, template="floordiv({0}, {1})",
                     dtype_rule="promote", differentiable=False)


@derivative(ADD)
def _add_rule(F, ctx, g):
    return g, g


@derivative(SUB)
def _sub_rule(F, ctx, g):
    return g, -g


@derivative(RSUB)
def _rsub_rule(F, ctx, g):
    return -g, g


@derivative(MUL)
def _mul_rule(F, ctx, g):
    a, b = ctx.inputs
    return (g * b if ctx.needs[0] else None), (g * a if ctx.needs[1] else None)


@derivative(DIV)
def _div_rule(F, ctx, g):
    a, b = ctx.inputs
    grad_a = g / b if ctx.needs[0] else None
    grad_b = -g * a / (b * b) if ctx.needs[1] else None
    return grad_a, grad_b


@derivative(NEG)
def _neg_rule(F, ctx, g):
    return (-g,)


@derivative(POW)
def _pow_rule(F, ctx, g):
    a, b = ctx.inputs
    out = ctx.out
    grad_a = grad_b = None
    if ctx.needs[0]:
        # matches torch: zero where the exponent is 0 (so 0 ** 0 gives 0, not nan)
        grad_a = F.where(b == 0, 0.0, g * b * a ** (b - 1))
    if ctx.needs[1]:
        # matches torch: zero where the base is 0 and the exponent >= 0 (0 ** b for b in {0, 1})
        grad_b = F.where((a == 0) & (b >= 0), 0.0, g * out * F.log(a))
    return grad_a, grad_b


@derivative(REMAINDER)
def _remainder_rule(F, ctx, g):
    a, b = ctx.inputs
    return g, (-g * F.floor_divide(a, b) if ctx.needs[1] else None)


add, sub, mul, div = _binary(ADD), _binary(SUB), _binary(MUL), _binary(DIV)
remainder, floor_divide = _binary(REMAINDER), _binary(FLOOR_DIVIDE)


def _alpha(op):
    def with_alpha(input, other, *, alpha=1):
        if alpha != 1:
            other = mul(other, alpha)
        return op(input, other)
    with_alpha.__name__ = op.__name__
    return with_alpha


add, sub = _alpha(add), _alpha(sub)
subtract, multiply, divide, true_divide = sub, mul, div, div


def rsub(input, other, *, alpha=1):
    """other - alpha * input (PyTorch's torch.rsub)."""
    if alpha != 1:
        input = mul(input, alpha)
    return apply(RSUB, (_operand(input), _operand(other)))


def pow(input, exponent):
    return apply(POW, (_operand(input), _operand(exponent)))


def neg(input):
    return apply(NEG, (input,))


negative = neg

# -- unary math ------------------------------------------------------------------------------


def _unary(name, forward, template, saves=(), save_out=False, dtype_rule="float"):
    spec = defop(name, forward, saves=saves, save_out=save_out, template=template,
                 dtype_rule=dtype_rule)

    def op(input):
        return apply_unary(spec, input)
    op.__name__ = name
    return spec, op


def _sigmoid_forward(x):
    # exp(-|x|) never overflows; both branches of the logistic function use it.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _erf_forward(x):
    return _erf_function()(x).astype(x.dtype, copy=False)


_ERF = []


def _erf_function():
    # Resolved on first use: SciPy's ufunc when installed (importing it costs 0.25 s, so not
    # at `import jitgrad`), else math.erf vectorised.
    if not _ERF:
        try:
            from scipy.special import erf as scipy_erf
            _ERF.append(scipy_erf)
        except ImportError:
            _ERF.append(np.vectorize(math.erf, otypes=[np.float64]))
    return _ERF[0]


EXP, exp = _unary("exp", np.exp, "exp({0})", save_out=True)
LOG, log = _unary("log", np.log, "log({0})", saves=(0,))
LOG1P, log1p = _unary("log1p", np.log1p, "log1p({0})", saves=(0,))
EXPM1, expm1 = _unary("expm1", np.expm1, "expm1({0})", save_out=True)
SIN, sin = _unary("sin", np.sin, "sin({0})", saves=(0,))
COS, cos = _unary("cos", np.cos, "cos({0})", saves=(0,))
TANH, tanh = _unary("tanh", np.tanh, "tanh({0})", save_out=True)
SIGMOID, sigmoid = _unary("sigmoid", _sigmoid_forward, "sigmoid({0})", save_out=True)
ERF, erf = _unary("erf", _erf_forward, "erf({0})", saves=(0,))
SQRT, sqrt = _unary("sqrt", np.sqrt, "sqrt({0})", save_out=True)
RSQRT, rsqrt = _unary("rsqrt", lambda x: 1 / np.sqrt(x), "rsqrt({0})", save_out=True)
RECIPROCAL, reciprocal = _unary("reciprocal", np.reciprocal, "(1 / {0})", save_out=True)
ABS, abs = _unary("abs", np.abs, "abs({0})", saves=(0,), dtype_rule="same")
SIGN, sign = _unary("sign", np.sign, "sign({0})", dtype_rule="same")
RELU, relu = _unary("relu", lambda x: np.maximum(x, 0).astype(x.dtype, copy=False),
                    "relu({0})", save_out=True, dtype_rule="same")


@derivative(EXP)
def _exp_rule(F, ctx, g):
    return (g * ctx.out,)


@derivative(LOG)
def _log_rule(F, ctx, g):
    return (g / ctx.inputs[0],)


@derivative(LOG1P)
def _log1p_rule(F, ctx, g):
    return (g / (ctx.inputs[0] + 1),)


@derivative(EXPM1)
def _expm1_rule(F, ctx, g):
    return (g * (ctx.out + 1),)


@derivative(SIN)
def _sin_rule(F, ctx, g):
    return (g * F.cos(ctx.inputs[0]),)


@derivative(COS)
def _cos_rule(F, ctx, g):
    return (g * -F.sin(ctx.inputs[0]),)


@derivative(TANH)
def _tanh_rule(F, ctx, g):
    y = ctx.out
    return (g * (1 - y * y),)


@derivative(SIGMOID)
def _sigmoid_rule(F, ctx, g):
    y = ctx.out
    return (g * (1 - y) * y,)


@derivative(ERF)
def _erf_rule(F, ctx, g):
    x = ctx.inputs[0]
    return (g * (2 / math.sqrt(math.pi)) * F.exp(-(x * x)),)


@derivative(SQRT)
def _sqrt_rule(F, ctx, g):
    return (g / (2 * ctx.out),)  # matches torch: sqrt'(0) == inf


@derivative(RSQRT)
def _rsqrt_rule(F, ctx, g):
    y = ctx.out
    return (-0.5 * g * y * y * y,)


@derivative(RECIPROCAL)
def _reciprocal_rule(F, ctx, g):
    y = ctx.out
    return (-g * y * y,)


@derivative(ABS)
def _abs_rule(F, ctx, g):
    return (g * F.sign(ctx.inputs[0]),)  # matches torch: abs'(0) == 0


@derivative(SIGN)
def _sign_rule(F, ctx, g):
    return (g * 0,)


@derivative(RELU)
def _relu_rule(F, ctx, g):
    # matches torch: relu'(0) == 0; `out * 0` (not 0.0) makes the gradient depend on the saved
    # result as torch's ThresholdBackward does, so with create_graph it requires grad.
    return (F.where(ctx.out > 0, g, ctx.out * 0),)


def square(input):
    return pow(input, 2)  # matches torch: square is pow(x, 2) (PowBackward0)


# -- clamp, maximum, minimum, where ------------------------------------------------------------

def _clamp_forward(x, min=None, max=None):
    if min is not None and max is not None:
        return np.minimum(np.maximum(x, min), max)
    if min is not None:
        return np.maximum(x, min)
    return np.minimum(x, max)


CLAMP = defop("clamp", _clamp_forward, saves=(0,), template="clamp({0}, {min}, {max})",
              dtype_rule="promote")


@derivative(CLAMP)
def _clamp_rule(F, ctx, g):
    x = ctx.inputs[0]
    low, high = ctx.attrs.get("min"), ctx.attrs.get("max")
    # matches torch: the gradient passes at both bounds, inclusive
    if low is not None and high is not None:
        keep = (x >= low) & (x <= high)
    elif low is not None:
        keep = x >= low
    else:
        keep = x <= high
    return (F.where(keep, g, 0.0),)


def clamp(input, min=None, max=None):
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        # Tensor bounds: where-based, so the gradient reaches x inside [min, max] inclusive.
        out = input
        if min is not None:
            out = where(input < min, min, out)
        if max is not None:
            out = where(input > max, max, out)
        return out
    attrs = {"min": min, "max": max}
    return apply(CLAMP, (input,), attrs)


clip = clamp


def clamp_min(input, min):
    return clamp(input, min=min)


def clamp_max(input, max):
    return clamp(input, max=max)


MAXIMUM = defop("maximum", np.maximum, saves=(0, 1), template="max({0}, {1})",
                dtype_rule="promote")
MINIMUM = defop("minimum", np.minimum, saves=(0, 1), template="min({0}, {1})",
                dtype_rule="promote")


def _pick_larger(F, ctx, g, larger):
    a, b = ctx.inputs
    wins = larger(a, b)
    tie = a == b
    # matches torch: a tie gives each side half the gradient
    half = g * 0.5
    grad_a = F.where(wins, g, F.where(tie, half, 0.0)) if ctx.needs[0] else None
    grad_b = F.where(wins | tie, F.where(tie, half, 0.0), g) if ctx.needs[1] else None
    return grad_a, grad_b


@derivative(MAXIMUM)
def _maximum_rule(F, ctx, g):
    return _pick_larger(F, ctx, g, lambda a, b: a > b)


@derivative(MINIMUM)
def _minimum_rule(F, ctx, g):
    return _pick_larger(F, ctx, g, lambda a, b: a < b)


maximum, minimum = _binary(MAXIMUM), _binary(MINIMUM)
fmax, fmin = maximum, minimum


def _where_forward(cond, x, y):
    return np.where(cond, x, y)


WHERE = defop("where", _where_forward, saves=(0,), template="({1} if {0} else {2})",
              dtype_rule="where")


@derivative(WHERE)
def _where_rule(F, ctx, g):
    cond = ctx.inputs[0]
    return (None,
            F.where(cond, g, 0.0) if ctx.needs[1] else None,
            F.where(cond, 0.0, g) if ctx.needs[2] else None)


def where(condition, input=None, other=None):
    if input is None and other is None:
        from .indexing import nonzero
        return nonzero(condition, as_tuple=True)
    return apply(WHERE, (_operand(condition), _operand(input), _operand(other)))


# -- comparisons and logic (boolean results, no gradient) ------------------------------------

def _compare(name, forward, symbol):
    spec = defop(name, forward, template=f"({{0}} {symbol} {{1}})", dtype_rule="compare",
                 differentiable=False)
    return spec, _binary(spec)


EQ, eq = _compare("eq", np.equal, "==")
NE, ne = _compare("ne", np.not_equal, "!=")
LT, lt = _compare("lt", np.less, "<")
LE, le = _compare("le", np.less_equal, "<=")
GT, gt = _compare("gt", np.greater, ">")
GE, ge = _compare("ge", np.greater_equal, ">=")
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne

LOGICAL_AND = defop("logical_and", np.logical_and, template="({0} and {1})",
                    differentiable=False)
LOGICAL_OR = defop("logical_or", np.logical_or, template="({0} or {1})", differentiable=False)
LOGICAL_NOT = defop("logical_not", np.logical_not, template="(not {0})", differentiable=False)
BITWISE_AND = defop("bitwise_and", np.bitwise_and, template="({0} & {1})",
                    dtype_rule="promote", differentiable=False)
BITWISE_OR = defop("bitwise_or", np.bitwise_or, template="({0} | {1})", dtype_rule="promote",
                   differentiable=False)
BITWISE_NOT = defop("bitwise_not", np.invert, template="(~{0})", differentiable=False)
ISNAN = defop("isnan", np.isnan, template="isnan({0})", differentiable=False)
ISINF = defop("isinf", np.isinf, template="isinf({0})", differentiable=False)
ISFINITE = defop("isfinite", np.isfinite, template="isfinite({0})", differentiable=False)
logical_and, logical_or = _binary(LOGICAL_AND), _binary(LOGICAL_OR)
bitwise_and, bitwise_or = _binary(BITWISE_AND), _binary(BITWISE_OR)


def logical_not(input):
    return apply(LOGICAL_NOT, (input,))


def bitwise_not(input):
    return apply(BITWISE_NOT, (input,))


def isnan(input):
    return apply(ISNAN, (input,))


def isinf(input):
    return apply(ISINF, (input,))


def isfinite(input):
    return apply(ISFINITE, (input,))


# -- Tensor methods --------------------------------------------------------------------------

def _bind():
    for name, spec in (("add", ADD), ("sub", SUB), ("mul", MUL), ("truediv", DIV),
                       ("pow", POW), ("mod", REMAINDER), ("floordiv", FLOOR_DIVIDE),
                       ("and", BITWISE_AND), ("or", BITWISE_OR)):
        forward, reflected, inplace = _methods(spec)
        setattr(Tensor, f"__{name}__", forward)
        setattr(Tensor, f"__r{name}__", reflected)
        setattr(Tensor, f"__i{name}__", inplace)
    for name, spec in (("eq", EQ), ("ne", NE), ("lt", LT), ("le", LE), ("gt", GT), ("ge", GE)):
        setattr(Tensor, f"__{name}__", _methods(spec)[0])
    Tensor.__neg__ = neg
    Tensor.__pos__ = lambda self: self
    Tensor.__abs__ = abs
    Tensor.__invert__ = lambda self: apply(
        LOGICAL_NOT if self._data.dtype.kind == "b" else BITWISE_NOT, (self,))
    for name, fn in (("add", add), ("sub", sub), ("mul", mul), ("div", div), ("pow", pow),
                     ("neg", neg), ("exp", exp), ("log", log), ("log1p", log1p),
                     ("expm1", expm1), ("sin", sin), ("cos", cos), ("tanh", tanh),
                     ("sigmoid", sigmoid), ("erf", erf), ("sqrt", sqrt), ("rsqrt", rsqrt),
                     ("reciprocal", reciprocal), ("abs", abs), ("sign", sign), ("relu", relu),
                     ("square", square), ("clamp", clamp), ("clip", clamp),
                     ("clamp_min", clamp_min), ("clamp_max", clamp_max), ("maximum", maximum),
                     ("minimum", minimum), ("remainder", remainder),
                     ("floor_divide", floor_divide), ("eq", eq), ("ne", ne), ("lt", lt),
                     ("le", le), ("gt", gt), ("ge", ge), ("logical_and", logical_and),
                     ("logical_or", logical_or), ("logical_not", logical_not),
                     ("isnan", isnan), ("isinf", isinf), ("isfinite", isfinite),
                     ("negative", neg), ("subtract", sub), ("multiply", mul),
                     ("divide", div), ("true_divide", div)):
        setattr(Tensor, name, fn)
    Tensor.where = lambda self, condition, other: where(condition, self, other)

    def inplace(spec):
        def method(self, *args, **kwargs):
            attrs = dict(kwargs)
            return apply_inplace(spec, self, (self,) + tuple(_operand(a) for a in args),
                                 attrs or None)
        return method

    Tensor.add_ = lambda self, other, *, alpha=1: apply_inplace(
        ADD, self, (self, _operand(other if alpha == 1 else mul(other, alpha))))
    Tensor.sub_ = lambda self, other, *, alpha=1: apply_inplace(
        SUB, self, (self, _operand(other if alpha == 1 else mul(other, alpha))))
    Tensor.mul_ = lambda self, other: apply_inplace(MUL, self, (self, _operand(other)))
    Tensor.div_ = lambda self, other: apply_inplace(DIV, self, (self, _operand(other)))
    Tensor.pow_ = lambda self, other: apply_inplace(POW, self, (self, _operand(other)))
    for name, spec in (("exp_", EXP), ("log_", LOG), ("sin_", SIN), ("cos_", COS),
                       ("tanh_", TANH), ("sigmoid_", SIGMOID), ("sqrt_", SQRT),
                       ("abs_", ABS), ("relu_", RELU), ("neg_", NEG),
                       ("reciprocal_", RECIPROCAL)):
        setattr(Tensor, name, inplace(spec))

    def clamp_(self, min=None, max=None):
        if min is None and max is None:
            raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
        return apply_inplace(CLAMP, self, (self,), {"min": min, "max": max})
    Tensor.clamp_ = clamp_
    Tensor.clip_ = clamp_


_bind()
