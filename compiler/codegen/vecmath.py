"""Loop-vectorisable elementwise math for generated Numba kernels.

One responsibility: scalar float32/float64 implementations of transcendental
functions (exp, log, log1p, expm1, sin, cos, tanh, sigmoid, erf, pow) that a
generated ``@numba.njit`` kernel calls from its inner loop, written so that
LLVM inlines them and the loop vectoriser turns the loop into AVX2 code.
This Numba/llvmlite build has no SVML, so ``math.exp`` & co. lower to scalar
libm calls that block vectorisation; these functions replace them.

    from compiler.codegen import vecmath as vm
    @numba.njit
    def kernel(x, out):
        for i in range(x.size):
            out[i] = vm.exp_f32(x[i])

``FUNCTIONS`` maps ``(name, dtype_name)`` to the callable's dotted name (for
emitted source); ``lookup(name, dtype)`` returns the callable itself.

Design
------
* Every function is branch-free on its hot path: range reduction (Cody-Waite
  with FMA, Payne-Hanek for huge sin/cos arguments), a minimax polynomial,
  reconstruction by building 2**k in the exponent bits, and special cases
  (inf, nan, overflow, underflow, signed zero) merged with selects
  (``a if c else b``), never early returns.
* Bit casts (int <-> float) and fused multiply-add are ``numba.extending``
  intrinsics (``bitcast``, ``llvm.fma``).  Each has a pure-Python twin
  (``numpy.view``; an exactly rounded fma through ``fractions.Fraction``),
  registered with ``@overload`` so the same source runs under
  ``NUMBA_DISABLE_JIT=1`` or via ``func.py_func`` and gives the same bits.
* Functions are ``njit(forceinline=True)``: LLVM ``alwaysinline``, so they are
  inlined into the kernel whatever their size, while keeping their own
  (strict, non-fastmath) floating-point semantics even inside a fastmath
  kernel.
* float32 functions expect float32 arguments and do float32 arithmetic
  (8 lanes per AVX2 register); all constants are typed numpy scalars.
  Exceptions: sin/cos float32 reduce and evaluate in float64 (Payne-Hanek
  table, correct for every finite input), pow float32 evaluates in float64.
* sin/cos large arguments: LLVM cannot predicate a fallback call per lane (a
  libm call in a select is speculated and executed for every lane; a toy
  kernel doing that ran 3.4x slower than NumPy), so huge arguments use a
  branch-free Payne-Hanek reduction reading a (2**E * 2/pi mod 4) table per
  lane (on znver3 LLVM emits scalar loads + inserts rather than gathers).
  float32 uses it for every lane; float64 uses 3-part Cody-Waite for
  |x| <= 1e9 and Payne-Hanek above, both computed and selected.  The price
  is paid on every element (see the speed table).
* Requires FMA hardware for speed (x86-64 since Haswell/Zen); without it
  ``llvm.fma`` becomes a correct but slow libm call.

Coefficients were fitted offline with a discrete Remez exchange in mpmath
(60 digits; relative-error weighting; 700-3000 Chebyshev-distributed points)
on the stated intervals, then rounded to the target precision.  2/pi, pi/2
and ln 2 splits come from mpmath at 500 digits.

Accuracy: max ulp error against the correctly rounded result.  float32 is
measured against NumPy float64 rounded to float32; float64 against NumPy
longdouble (x87 80-bit) rounded to float64, erf against mpmath (NumPy has no
erf).  Samples: the wide domains of tests/test_vecmath.py (exp [-100, 100] /
[-745, 710], log log-uniform over the whole positive range, sin/cos
[-1e4, 1e4] plus small and huge arguments, ...) at 2**20 random points plus
dense sub-ranges, and the edge values:

    function   float32  float64   float32 (edge values)  float64 (edge values)
    exp          1        1          0                      1
    log          1        1          1                      0
    log1p        1        1          1                      1
    expm1        2        2          1                      1
    sin          1        1          0                      0
    cos          1        1          0                      0
    tanh         2        2          1                      1
    sigmoid      2        2          1                      1
    erf          2        1          1                      1
    pow          0        1          0                      1

    Edge values: 0, -0, +-inf, nan, max/min normal, subnormals, overflow and
    underflow thresholds, the -1/0 neighbourhood of log1p/expm1, huge sin/cos
    arguments up to float max, and for pow the C99/NumPy special-case grid
    (0, -0, +-1, +-inf, nan, negative bases with integral/odd/non-integral
    exponents).  nan, inf and signed zeros match NumPy exactly.  float32 pow
    is computed in float64 (0 ulp measured; 1 allowed for double rounding).
    The tests assert these maxima (pow float32: 1).

Speed (2**22 float32 elements, njit loop ``out[i] = f(x[i])``, median ms,
2-core AMD EPYC znver3, AVX2+FMA, numba 0.68 / llvmlite 0.50, no SVML):

    function  vm (this module)  math.* in njit loop  NumPy ufunc
    exp            2.6                11.5               7.4
    tanh           3.2                75.7              11.1
    sin           14.0                42.9               8.3
    log            4.6                13.3               8.5
    cos           13.9                42.4               8.4
    log1p          6.7                50.5              49.5
    expm1          2.8                57.7              56.6
    sigmoid        3.0                   -                 -
    erf            5.9                71.3 (math.erf)      -
    float64: exp 7.6 / 22.4 / 21.6, log 9.7 / 19.3 / 19.8,
             tanh 11.4 / 79.3 / 57.2, sin 38.6 / 81.6 / 81.2 (vm / math / NumPy)

    Inputs: exp/sin/cos/sigmoid uniform [-10, 10], tanh [-5, 5], log
    [1e-3, 1e3].  Every loop above vectorises (packed ymm FMAs in
    ``kernel.inspect_asm()``; tests/test_vecmath.py checks it for all 20).

    Trade-off (sin/cos float32): the only f32 functions slower than NumPy
    (~1.7x).  NumPy's AVX2 sinf reduces in float32 and sends a whole vector to
    scalar libm when any lane is large; a scalar function inside an
    LLVM-vectorised loop cannot branch per vector, and a ``math.sin`` fallback
    in a select is speculated and run for every lane (measured 26.7 ms vs
    NumPy 7.9 ms for a toy kernel; an opaque non-speculatable call stops
    vectorisation altogether).  So the float32 reduction is a float64
    Payne-Hanek for every lane: correct for every finite input, 3x faster
    than ``math.sin``, but it pays float64 arithmetic on all lanes.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

__all__ = [
    "FUNCTIONS", "ARITY", "lookup",
    "exp_f32", "exp_f64", "log_f32", "log_f64", "log1p_f32", "log1p_f64",
    "expm1_f32", "expm1_f64", "sin_f32", "sin_f64", "cos_f32", "cos_f64",
    "tanh_f32", "tanh_f64", "sigmoid_f32", "sigmoid_f64", "erf_f32", "erf_f64",
    "pow_f32", "pow_f64",
]

_vjit = numba.njit(forceinline=True, nogil=True, error_model="numpy")

f32 = np.float32
f64 = np.float64
i32 = np.int32
i64 = np.int64


# --------------------------------------------------------------------------
# Primitives: bit casts and fma.  Python functions (used by pure-Python
# execution) with @overload'ed nopython implementations built on intrinsics.
# --------------------------------------------------------------------------

def bits32(x):
    """float32 -> int32 with the same bits."""
    return f32(x).view(i32)


def from_bits32(i):
    """int32 -> float32 with the same bits."""
    return i32(i).view(f32)


def bits64(x):
    """float64 -> int64 with the same bits."""
    return f64(x).view(i64)


def from_bits64(i):
    """int64 -> float64 with the same bits."""
    return i64(i).view(f64)


def _bitcast_codegen(to_type):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(to_type))
    return codegen


@intrinsic
def _bitcast_f32_i32(typingctx, x):
    if x != types.float32:
        return None
    return types.int32(types.float32), _bitcast_codegen(types.int32)


@intrinsic
def _bitcast_i32_f32(typingctx, i):
    if i != types.int32:
        return None
    return types.float32(types.int32), _bitcast_codegen(types.float32)


@intrinsic
def _bitcast_f64_i64(typingctx, x):
    if x != types.float64:
        return None
    return types.int64(types.float64), _bitcast_codegen(types.int64)


@intrinsic
def _bitcast_i64_f64(typingctx, i):
    if i != types.int64:
        return None
    return types.float64(types.int64), _bitcast_codegen(types.float64)


@overload(bits32, inline="always")
def _ol_bits32(x):
    if isinstance(x, types.Float):
        return lambda x: _bitcast_f32_i32(np.float32(x))


@overload(from_bits32, inline="always")
def _ol_from_bits32(i):
    if isinstance(i, types.Integer):
        return lambda i: _bitcast_i32_f32(np.int32(i))


@overload(bits64, inline="always")
def _ol_bits64(x):
    if isinstance(x, types.Float):
        return lambda x: _bitcast_f64_i64(np.float64(x))


@overload(from_bits64, inline="always")
def _ol_from_bits64(i):
    if isinstance(i, types.Integer):
        return lambda i: _bitcast_i64_f64(np.int64(i))


def _fraction_to_f32(q):
    """Correctly round an exact rational to float32 (round-to-odd via float64)."""
    d = float(q)
    if Fraction(d) != q:
        m = math.frexp(d)[0]
        # make the float64 odd (sticky bit) so the second rounding is correct
        if int(m * 2.0 ** 53) % 2 == 0:
            d = float(np.nextafter(d, math.inf if q > Fraction(d) else -math.inf))
    with np.errstate(over="ignore"):
        return f32(d)


def fma(a, b, c):
    """a*b + c with a single rounding, in the (common) precision of a, b, c."""
    t = f32 if (type(a) is f32 and type(b) is f32 and type(c) is f32) else f64
    fa, fb, fc = float(a), float(b), float(c)
    if not (math.isfinite(fa) and math.isfinite(fb) and math.isfinite(fc)):
        with np.errstate(all="ignore"):
            return t(t(fa) * t(fb) + t(fc))
    q = Fraction(fa) * Fraction(fb) + Fraction(fc)
    if q == 0:
        # sign of an exact zero follows IEEE rules for a*b + c
        with np.errstate(all="ignore"):
            return t(t(fa) * t(fb) + t(fc))
    if t is f32:
        return _fraction_to_f32(q)
    try:
        return f64(float(q))
    except OverflowError:
        return f64(math.inf if q > 0 else -math.inf)


@intrinsic
def _fma_intrinsic(typingctx, a, b, c):
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(signature.return_type)
        fn = builder.module.declare_intrinsic("llvm.fma", [ty], ir.FunctionType(ty, [ty, ty, ty]))
        return builder.call(fn, args)
    return a(a, a, a), codegen


@overload(fma, inline="always")
def _ol_fma(a, b, c):
    if isinstance(a, types.Float) and a == b == c:
        return lambda a, b, c: _fma_intrinsic(a, b, c)


# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

def _c32(*vals):
    return tuple(f32(v) for v in vals)


def _c64(*vals):
    return tuple(f64(v) for v in vals)


_INF32, _NAN32 = f32(np.inf), f32(np.nan)
_INF64, _NAN64 = f64(np.inf), f64(np.nan)
_ZERO32, _ONE32, _TWO32, _HALF32 = f32(0.0), f32(1.0), f32(2.0), f32(0.5)
_ZERO64, _ONE64, _TWO64, _HALF64 = f64(0.0), f64(1.0), f64(2.0), f64(0.5)
_NZERO64 = f64(-0.0)

# ln 2 and log2(e)
_LOG2E32 = f32(float.fromhex("0x1.71547652b82fep+0"))
_LN2HI32 = f32(float.fromhex("0x1.62e430p-1"))          # float32(ln 2)
_LN2LO32 = f32(float.fromhex("-0x1.05c610p-29"))        # ln 2 - _LN2HI32
_LOG2E64 = f64(float.fromhex("0x1.71547652b82fep+0"))
_LN2HI64 = f64(float.fromhex("0x1.62e42fefa39efp-1"))   # float64(ln 2)
_LN2LO64 = f64(float.fromhex("0x1.abc9e3b39803fp-56"))  # ln 2 - _LN2HI64
_LN2HI42 = f64(float.fromhex("0x1.62e42fefa3800p-1"))   # ln 2 to 42 bits: k*hi exact
_LN2LO42 = f64(float.fromhex("0x1.ef35793c76730p-45"))
_TWO3HI = f64(float.fromhex("0x1.5555555555555p-1"))    # 2/3 as double-double
_TWO3LO = f64(float.fromhex("0x1.5555555555555p-55"))

# pi/2 in three parts (Cody-Waite) and 2/pi
_PIO2_1 = f64(float.fromhex("0x1.921fb54442d18p+0"))
_PIO2_2 = f64(float.fromhex("0x1.1a62633145c07p-54"))
_PIO2_3 = f64(float.fromhex("-0x1.f1976b7ed8fbcp-110"))
_TWO_OVER_PI64 = f64(float.fromhex("0x1.45f306dc9c883p-1"))

_MAGIC52 = f64(6755399441055744.0)          # 1.5 * 2**52
_MAGIC52_BITS = 0x4338000000000000
_MAGIC23 = f32(12582912.0)                  # 1.5 * 2**23
_MAGIC23_BITS = 0x4B400000
_SQRTH_BITS32 = 0x3F3504F3                  # float32(sqrt(1/2))
_SQRTH_BITS64 = 0x3FE6A09E667F3BCD          # float64(sqrt(1/2))
_MANT32 = 0x007FFFFF
_MANT64 = 0x000FFFFFFFFFFFFF
_ABS32 = 0x7FFFFFFF
_ABS64 = 0x7FFFFFFFFFFFFFFF
_SIGN32 = -0x80000000
_SIGN64 = -0x8000000000000000

# exp/expm1: e^r = 1 + r + r^2 Q(r), Q ~ (e^r - 1 - r)/r^2 on |r| <= 0.3467,
# minimax relative error of Q: 2^-22.9 (deg 4), 2^-58.3 (deg 10).
_EQ32 = _c32(0.499999995519277456486, 0.1666657718960084208347,
             0.04166685363957139359017, 0.008363162116368028438648,
             0.001390129200864689579456)
_EQ64 = _c64(0.5000000000000000001238, 0.1666666666666667097822,
             0.0416666666666666182628, 0.008333333333326146440184,
             0.001388888888891804127662, 0.000198412698747941526864,
             0.00002480158724562569045893, 0.000002755725542130195091518,
             0.0000002755734965783254429213, 0.00000002510521227729314314612,
             0.000000002088938519736716699969)
# log: log(1+f) = f - f^2/2 + s (f^2/2 + z P(z)), s = f/(2+f), z = s^2 <= 0.02944;
# P ~ (2 atanh(s)/s - 2)/z, minimax relative 2^-21.8 (deg 2), 2^-51.0 (deg 6).
_LP32 = _c32(0.6666668510578721919166, 0.3998876176735933382823,
             0.2958061469750243489671)
_LP64 = _c64(0.6666666666666669701855, 0.3999999999989911241437,
             0.2857142862613439345013, 0.2222221111124988815354,
             0.181828907013792939186, 0.1533167299655776267988,
             0.1461701148520959691897)
# double-double log (pow float64): log(1+f) = 2s + (2/3) s^3 + s^5 T(z),
# T ~ (P(z) - 2/3)/z, minimax relative 2^-50.4 (deg 6).
_LT64 = _c64(0.4000000000000002714256, 0.2857142857133831391455,
             0.2222222227117843385086, 0.1818180823651087093139,
             0.1538557551957433305985, 0.1328593559428481860445,
             0.129138650372304687859)
# sin r = r + r^3 S(r^2), cos r = 1 - r^2/2 + r^4 C(r^2) on |r| <= pi/4 * 1.0002;
# relative errors 2^-37.5 / 2^-42.9 (deg 3, float32), 2^-68.7 / 2^-75.0 (deg 6).
_S32 = (0.1666666664075528639655 * -1, 0.008333329299985462017018,
        -0.0001983931070045648609706, 0.000002718106605936920756906)
_C32 = (0.0416666666194152572211, -0.001388888349358018359955,
        0.00002479945845061350877861, -0.0000002720561391532167424228)
_S32D = _c64(*_S32)   # float32 sin/cos evaluate in float64
_C32D = _c64(*_C32)
_S64 = _c64(-0.1666666666666666664018, 0.008333333333333322479917,
            -0.0001984126984125476963744, 0.000002755731921404908606216,
            -0.00000002505210487767956842442, 0.0000000001605836262500403678025,
            -0.0000000000007578513117945900041262)
_C64 = _c64(0.04166666666666666660889, -0.001388888888888887295561,
            0.00002480158730157051883098, -0.0000002755731921498542542197,
            0.000000002087675428384566738677, -0.00000000001147028447570484786973,
            0.00000000000004737734171564710727744)
# erf |x| < 1: erf x = x + x P(x^2), P ~ erf(x)/x - 1; relative 2^-24.6 (deg 5),
# 2^-56.9 (deg 11).
_EA32 = _c32(0.1283791224916371839036, -0.376123261856981871287,
             0.1128018011532401652743, -0.02671131149440482313556,
             0.004917551683745067899601, -0.0005631423389417755382601)
_EA64 = _c64(0.1283791670955125656521, -0.3761263890318351951311,
             0.1128379167094418402663, -0.02686617064311138878716,
             0.005223977606117988564359, -0.0008548325929296111713617,
             0.0001205529357645054528299, -0.00001492471229475265795198,
             0.000001644713149488277658258, -0.0000001620631325451638799029,
             0.00000001371097851240864723645, -0.0000000007779465445261772004952)
# erf |x| >= 1: erf x = 1 - exp(-x^2) erfcx(x), erfcx(t) ~ B(v), v = 1/(t+3),
# t in [1, 4] (float32) / [1, 6] (float64); relative 2^-24.8 (deg 6), 2^-54.6 (deg 14).
_EB32 = _c32(-0.002205321615714613048229, 0.6389845699698782892046,
             0.6567186118117549238619, 12.13297945823071868543,
             -13.48780535640777884649, 61.0428520868723788839,
             133.0980127252085046927)
_EB64 = _c64(0.0000003525590591348736223146, 0.5641561371463209072482,
             1.69404242380884585714, 4.755622380549441679919,
             13.44120829147320587258, 20.72611705082050985277,
             171.1889500554696907728, -686.2970030423186835859,
             5022.914817976355065952, -22013.13453556659118448,
             74616.37093382479869191, -184254.7384459231067505,
             289834.9836057276387343, -257417.911513407367043,
             99088.78422352162296148)

# 2/pi to 1200 bits (mpmath, 500 digits): floor(2/pi * 2**1200) in hex.
_TWO_OVER_PI_HEX = (
    "a2f9836e4e441529fc2757d1f534ddc0db6295993c439041fe5163abdebbc561b7246e3a424"
    "dd2e006492eea09d1921cfe1deb1cb129a73ee88235f52ebb4484e99c7026b45f7e413991d6"
    "39835339f49c845f8bbdf9283b1ff897ffde05980fef2f118b5a0a6d1f6d367ecf27cb09b74"
    "f463f669e5fea2d7527bac7ebe5f17b3d0739f78a5292ea6bfb5fb11f8d5d0856033046fc7b")


def _payne_hanek_table(e_lo, e_hi, parts):
    """Rows E = e_lo..e_hi of (2**E * 2/pi) mod 4 split into `parts` doubles."""
    b = int(_TWO_OVER_PI_HEX, 16)
    nb = 4 * len(_TWO_OVER_PI_HEX)
    out = np.zeros((parts, e_hi - e_lo + 1))
    for j, e in enumerate(range(e_lo, e_hi + 1)):
        if e >= 0:
            v = Fraction((b << e) % (4 << nb), 1 << nb)
        else:
            v = Fraction(b, 1 << (nb - e))
        for p in range(parts):
            h = float(v)
            out[p, j] = h
            v -= Fraction(h)
    return [np.ascontiguousarray(row) for row in out]


# float32: |x| = M * 2**E, M < 2**24, E = max(biased, 1) - 150 in [-149, 104]
_PH32_HI, _PH32_LO = _payne_hanek_table(-149, 104, 2)
# float64: used for |x| > _CW64_LIMIT, i.e. biased exponent >= 1052, E = b - 1075
_CW64_LIMIT = f64(1e9)
_PH64_BMIN = 1052
_PH64_0, _PH64_1, _PH64_2 = _payne_hanek_table(_PH64_BMIN - 1075, 2046 - 1075, 3)
_PIO2HI = _PIO2_1
_PIO2LO = _PIO2_2


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

@_vjit
def _pow2_f32(kf):
    """2**k for integral float32 k in [-126, 127]."""
    return from_bits32((np.int32(kf) + 127) << 23)


@_vjit
def _pow2_f64(kf):
    """2**k for integral float64 k in [-1022, 1023] (no double->int64 convert)."""
    return from_bits64((bits64(kf + _MAGIC52) - _MAGIC52_BITS + 1023) << 52)


@_vjit
def _int_to_f64(k):
    """Exact int64 -> float64 for |k| < 2**51 via the 1.5*2**52 trick."""
    return from_bits64(k + _MAGIC52_BITS) - _MAGIC52


@_vjit
def _copysign32(a, b):
    return from_bits32((bits32(a) & _ABS32) | (bits32(b) & _SIGN32))


@_vjit
def _copysign64(a, b):
    return from_bits64((bits64(a) & _ABS64) | (bits64(b) & _SIGN64))


@_vjit
def _mulsign32(a, b):
    """a with its sign flipped when b's sign bit is set."""
    return from_bits32(bits32(a) ^ (bits32(b) & _SIGN32))


@_vjit
def _mulsign64(a, b):
    return from_bits64(bits64(a) ^ (bits64(b) & _SIGN64))


# --------------------------------------------------------------------------
# exp / expm1 kernels (argument already clamped and not nan)
# --------------------------------------------------------------------------

@_vjit
def _expq32(r):
    q = fma(fma(fma(fma(_EQ32[4], r, _EQ32[3]), r, _EQ32[2]), r, _EQ32[1]), r, _EQ32[0])
    return fma(r * r, q, r)            # e^r - 1


@_vjit
def _expq64(r):
    q = _EQ64[10]
    q = fma(q, r, _EQ64[9])
    q = fma(q, r, _EQ64[8])
    q = fma(q, r, _EQ64[7])
    q = fma(q, r, _EQ64[6])
    q = fma(q, r, _EQ64[5])
    q = fma(q, r, _EQ64[4])
    q = fma(q, r, _EQ64[3])
    q = fma(q, r, _EQ64[2])
    q = fma(q, r, _EQ64[1])
    q = fma(q, r, _EQ64[0])
    return fma(r * r, q, r)


@_vjit
def _exp_k32(x):
    """e**x for float32 x in [-104, 89]; subnormal and overflow results exact-rounded."""
    kf = np.rint(x * _LOG2E32)
    r = fma(-kf, _LN2HI32, x)           # exact
    r = fma(-kf, _LN2LO32, r)
    p = _ONE32 + _expq32(r)
    k1 = np.floor(kf * _HALF32)
    return p * _pow2_f32(k1) * _pow2_f32(kf - k1)


@_vjit
def _exp_k64(x, xl):
    """e**(x + xl) for float64 x in [-746, 710], |xl| tiny."""
    kf = np.rint(x * _LOG2E64)
    r = fma(-kf, _LN2HI64, x)           # exact
    r = fma(-kf, _LN2LO64, r) + xl
    p = _ONE64 + _expq64(r)
    k1 = np.floor(kf * _HALF64)
    return p * _pow2_f64(k1) * _pow2_f64(kf - k1)


@_vjit
def exp_f32(x):
    xc = x if x < f32(89.0) else f32(89.0)
    xc = xc if xc > f32(-104.0) else f32(-104.0)     # also maps nan -> -104
    r = _exp_k32(xc)
    return r if x == x else x


@_vjit
def exp_f64(x):
    xc = x if x < f64(710.0) else f64(710.0)
    xc = xc if xc > f64(-746.0) else f64(-746.0)
    r = _exp_k64(xc, _NZERO64)
    return r if x == x else x


@_vjit
def _expm1_k32(x):
    """e**x - 1 for float32 x in [-30, 89]."""
    kf = np.rint(x * _LOG2E32)
    r = fma(-kf, _LN2HI32, x)
    r = fma(-kf, _LN2LO32, r)
    q = _expq32(r)
    big = kf > f32(64.0)
    kk = kf - _ONE32 if big else kf
    t = _pow2_f32(kk)
    res = fma(t, q, t - (_HALF32 if big else _ONE32))
    return res * _TWO32 if big else res


@_vjit
def _expm1_k64(x):
    """e**x - 1 for float64 x in [-40, 710]."""
    kf = np.rint(x * _LOG2E64)
    r = fma(-kf, _LN2HI64, x)
    r = fma(-kf, _LN2LO64, r)
    q = _expq64(r)
    big = kf > f64(512.0)
    kk = kf - _ONE64 if big else kf
    t = _pow2_f64(kk)
    res = fma(t, q, t - (_HALF64 if big else _ONE64))
    return res * _TWO64 if big else res


@_vjit
def expm1_f32(x):
    xc = x if x < f32(89.0) else f32(89.0)
    xc = xc if xc > f32(-30.0) else f32(-30.0)
    r = _expm1_k32(xc)
    r = x if abs(x) < f32(2.0 ** -25) else r          # +-0, tiny, subnormal
    return r if x == x else x


@_vjit
def expm1_f64(x):
    xc = x if x < f64(710.0) else f64(710.0)
    xc = xc if xc > f64(-40.0) else f64(-40.0)
    r = _expm1_k64(xc)
    r = x if abs(x) < f64(2.0 ** -54) else r
    return r if x == x else x


# --------------------------------------------------------------------------
# log / log1p
# --------------------------------------------------------------------------

@_vjit
def _log1p_poly32(f):
    """log(1+f) for f in [sqrt(1/2)-1, sqrt(2)-1]."""
    s = f / (_TWO32 + f)
    z = s * s
    rz = z * fma(fma(_LP32[2], z, _LP32[1]), z, _LP32[0])
    hfsq = _HALF32 * f * f
    return f - (hfsq - s * (hfsq + rz))


@_vjit
def _log1p_poly64(f):
    s = f / (_TWO64 + f)
    z = s * s
    p = _LP64[6]
    p = fma(p, z, _LP64[5])
    p = fma(p, z, _LP64[4])
    p = fma(p, z, _LP64[3])
    p = fma(p, z, _LP64[2])
    p = fma(p, z, _LP64[1])
    p = fma(p, z, _LP64[0])
    hfsq = _HALF64 * f * f
    return f - (hfsq - s * (hfsq + z * p))


@_vjit
def log_f32(x):
    sub = x < f32(1.1754944e-38)
    xs = x * f32(8388608.0) if sub else x                 # 2**23
    ix = (bits32(xs) & _ABS32) - _SQRTH_BITS32
    k = ix >> 23
    m = from_bits32((ix & _MANT32) + _SQRTH_BITS32)       # [sqrt(1/2), sqrt(2))
    kf = np.float32(k) - (f32(23.0) if sub else _ZERO32)
    lm = _log1p_poly32(m - _ONE32)
    r = fma(kf, _LN2HI32, fma(kf, _LN2LO32, lm))
    r = _INF32 if x == _INF32 else r
    r = -_INF32 if x == _ZERO32 else r
    return r if x >= _ZERO32 else _NAN32                   # negative or nan


@_vjit
def log_f64(x):
    sub = x < f64(2.2250738585072014e-308)
    xs = x * f64(18014398509481984.0) if sub else x       # 2**54
    ix = (bits64(xs) & _ABS64) - _SQRTH_BITS64
    k = ix >> 52
    m = from_bits64((ix & _MANT64) + _SQRTH_BITS64)
    kf = _int_to_f64(k) - (f64(54.0) if sub else _ZERO64)
    lm = _log1p_poly64(m - _ONE64)
    r = fma(kf, _LN2HI42, fma(kf, _LN2LO42, lm))
    r = _INF64 if x == _INF64 else r
    r = -_INF64 if x == _ZERO64 else r
    return r if x >= _ZERO64 else _NAN64


@_vjit
def log1p_f32(x):
    u = _ONE32 + x
    ix = (bits32(u) & _ABS32) - _SQRTH_BITS32
    k = ix >> 23
    m = from_bits32((ix & _MANT32) + _SQRTH_BITS32)
    kf = np.float32(k)
    # rounding error of u = 1 + x, as a relative correction
    c = (_ONE32 - (u - x)) if kf >= _TWO32 else (x - (u - _ONE32))
    c = c / u
    c = c if kf < f32(25.0) else _ZERO32
    small = abs(x) < f32(0.29)       # inside [sqrt(1/2)-1, sqrt(2)-1]: use f = x
    f = x if small else m - _ONE32
    kf = _ZERO32 if small else kf
    c = _ZERO32 if small else c
    lm = _log1p_poly32(f)
    r = fma(kf, _LN2HI32, fma(kf, _LN2LO32, c) + lm)
    r = x if abs(x) < f32(2.0 ** -25) else r
    r = _INF32 if x == _INF32 else r
    r = -_INF32 if x == -_ONE32 else r
    return r if x >= -_ONE32 else _NAN32


@_vjit
def log1p_f64(x):
    u = _ONE64 + x
    ix = (bits64(u) & _ABS64) - _SQRTH_BITS64
    k = ix >> 52
    m = from_bits64((ix & _MANT64) + _SQRTH_BITS64)
    kf = _int_to_f64(k)
    c = (_ONE64 - (u - x)) if kf >= _TWO64 else (x - (u - _ONE64))
    c = c / u
    c = c if kf < f64(54.0) else _ZERO64
    small = abs(x) < f64(0.29)
    f = x if small else m - _ONE64
    kf = _ZERO64 if small else kf
    c = _ZERO64 if small else c
    lm = _log1p_poly64(f)
    r = fma(kf, _LN2HI42, fma(kf, _LN2LO42, c) + lm)
    r = x if abs(x) < f64(2.0 ** -54) else r
    r = _INF64 if x == _INF64 else r
    r = -_INF64 if x == -_ONE64 else r
    return r if x >= -_ONE64 else _NAN64


# --------------------------------------------------------------------------
# sin / cos
# --------------------------------------------------------------------------

@_vjit
def _reduce_ph32(ax):
    """Payne-Hanek for float32 |x| (finite): returns (quadrant as float64, r float64)."""
    b = bits32(ax) & _ABS32
    braw = b >> 23
    mant = (b & _MANT32) | (0x800000 if braw > 0 else 0)
    idx = (braw if braw > 0 else 1) - 1               # E + 149 in [0, 253]
    idx = idx if idx < 253 else 253
    mf = np.float64(np.int32(mant))
    fh = _PH32_HI[idx]
    fl = _PH32_LO[idx]
    ph = mf * fh
    pl = fma(mf, fh, -ph)                             # exact product mf*fh = ph + pl
    n = np.rint(ph)
    fr = (ph - n) + (pl + mf * fl)                    # x*2/pi - n, |fr| <= ~0.5
    q = n - f64(4.0) * np.floor(n * f64(0.25))        # n mod 4
    return q, fr * _PIO2HI


@_vjit
def _sincos_poly32(r, q):
    """sin(r + q*pi/2) in float64 with float32-accuracy polynomials."""
    z = r * r
    s = fma(z * r, fma(fma(fma(_S32D[3], z, _S32D[2]), z, _S32D[1]), z, _S32D[0]), r)
    c = fma(z * z, fma(fma(fma(_C32D[3], z, _C32D[2]), z, _C32D[1]), z, _C32D[0]),
            _ONE64 - _HALF64 * z)
    odd = q == _ONE64 or q == f64(3.0)
    res = c if odd else s
    return -res if q >= _TWO64 else res


@_vjit
def sin_f32(x):
    ax = abs(x)
    finite = ax < _INF32
    q, r = _reduce_ph32(ax if finite else _ZERO32)
    res = np.float32(_sincos_poly32(r, q))
    res = _mulsign32(res, x)
    return res if finite else _NAN32


@_vjit
def cos_f32(x):
    ax = abs(x)
    finite = ax < _INF32
    q, r = _reduce_ph32(ax if finite else _ZERO32)
    q = q + _ONE64
    q = q if q < f64(4.0) else _ZERO64
    res = np.float32(_sincos_poly32(r, q))
    return res if finite else _NAN32


@_vjit
def _reduce_cw64(ax):
    """Cody-Waite: |x| <= 1e9 -> (quadrant, r_hi, r_lo), r_hi + r_lo = x - n pi/2."""
    kf = np.rint(ax * _TWO_OVER_PI64)
    r1 = fma(-kf, _PIO2_1, ax)                       # exact
    wh = kf * _PIO2_2
    wl = fma(kf, _PIO2_2, -wh)
    rh = r1 - wh                                     # two-sum r1 - wh
    bb = rh - r1
    err = (r1 - (rh - bb)) - (wh + bb)
    rl = (err - wl) - kf * _PIO2_3
    hi = rh + rl
    lo = rl - (hi - rh)
    q = kf - f64(4.0) * np.floor(kf * f64(0.25))
    return q, hi, lo


@_vjit
def _reduce_ph64(ax):
    """Payne-Hanek for |x| > 1e9 (finite) -> (quadrant, r_hi, r_lo)."""
    b = bits64(ax)
    braw = b >> 52
    idx = braw - _PH64_BMIN
    idx = idx if idx > 0 else 0
    # mant = |x| * 2**-E as an exact double integer < 2**53, E = braw - 1075
    mf = ax * from_bits64((2098 - braw) << 52)
    f0 = _PH64_0[idx]
    f1 = _PH64_1[idx]
    f2 = _PH64_2[idx]
    a0 = mf * f0
    b0 = fma(mf, f0, -a0)
    a0 = a0 - f64(4.0) * np.rint(a0 * f64(0.25))   # exact: a0 mod 4 in [-2, 2]
    a1 = mf * f1
    b1 = fma(mf, f1, -a1)
    c = mf * f2
    # two-sum a0 + b0
    s = a0 + b0
    bb = s - a0
    e1 = (a0 - (s - bb)) + (b0 - bb)
    s = s - f64(4.0) * np.rint(s * f64(0.25))
    # two-sum s + a1
    t = s + a1
    bb = t - s
    e2 = (s - (t - bb)) + (a1 - bb)
    n = np.rint(t)
    fh = t - n                                       # exact
    fl = e1 + e2 + b1 + c
    h = fh + fl
    fl = fl - (h - fh)
    # r = (h + fl) * pi/2 as double-double
    rh = h * _PIO2HI
    rl = fma(h, _PIO2HI, -rh) + (h * _PIO2LO + fl * _PIO2HI)
    hi = rh + rl
    lo = rl - (hi - rh)
    q = n - f64(4.0) * np.floor(n * f64(0.25))
    return q, hi, lo


@_vjit
def _sincos_poly64(x, y, q):
    """sin(x + y + q*pi/2), |x| <= pi/4, y tail of x (fdlibm kernel forms)."""
    z = x * x
    # sin
    v = z * x
    rs = _S64[6]
    rs = fma(rs, z, _S64[5])
    rs = fma(rs, z, _S64[4])
    rs = fma(rs, z, _S64[3])
    rs = fma(rs, z, _S64[2])
    rs = fma(rs, z, _S64[1])
    s = x - ((z * (_HALF64 * y - v * rs) - y) - v * _S64[0])
    # cos
    rc = _C64[6]
    rc = fma(rc, z, _C64[5])
    rc = fma(rc, z, _C64[4])
    rc = fma(rc, z, _C64[3])
    rc = fma(rc, z, _C64[2])
    rc = fma(rc, z, _C64[1])
    rc = fma(rc, z, _C64[0])
    hz = _HALF64 * z
    w = _ONE64 - hz
    c = w + (((_ONE64 - w) - hz) + (z * (z * rc) - x * y))
    odd = q == _ONE64 or q == f64(3.0)
    res = c if odd else s
    return -res if q >= _TWO64 else res


@_vjit
def _reduce64(ax):
    big = ax > _CW64_LIMIT
    q1, h1, l1 = _reduce_cw64(_ZERO64 if big else ax)
    q2, h2, l2 = _reduce_ph64(ax if big else f64(2e9))
    q = q2 if big else q1
    h = h2 if big else h1
    lo = l2 if big else l1
    return q, h, lo


@_vjit
def sin_f64(x):
    ax = abs(x)
    finite = ax < _INF64
    q, h, lo = _reduce64(ax if finite else _ZERO64)
    res = _mulsign64(_sincos_poly64(h, lo, q), x)
    return res if finite else _NAN64


@_vjit
def cos_f64(x):
    ax = abs(x)
    finite = ax < _INF64
    q, h, lo = _reduce64(ax if finite else _ZERO64)
    q = q + _ONE64
    q = q if q < f64(4.0) else _ZERO64
    res = _sincos_poly64(h, lo, q)
    return res if finite else _NAN64


# --------------------------------------------------------------------------
# tanh, sigmoid, erf
# --------------------------------------------------------------------------

@_vjit
def tanh_f32(x):
    ax = abs(x)
    axc = ax if ax < f32(10.0) else f32(10.0)        # tanh(10) rounds to 1
    t = _expm1_k32(axc + axc)
    r = _copysign32(t / (t + _TWO32), x)
    r = x if ax < f32(2.0 ** -12) else r
    return r if x == x else x


@_vjit
def tanh_f64(x):
    ax = abs(x)
    axc = ax if ax < f64(20.0) else f64(20.0)
    t = _expm1_k64(axc + axc)
    r = _copysign64(t / (t + _TWO64), x)
    r = x if ax < f64(2.0 ** -27) else r
    return r if x == x else x


@_vjit
def sigmoid_f32(x):
    ax = abs(x)
    axc = ax if ax < f32(104.0) else f32(104.0)
    e = _exp_k32(-axc)
    r = (_ONE32 if x >= _ZERO32 else e) / (_ONE32 + e)
    return r if x == x else x


@_vjit
def sigmoid_f64(x):
    ax = abs(x)
    axc = ax if ax < f64(746.0) else f64(746.0)
    e = _exp_k64(-axc, _NZERO64)
    r = (_ONE64 if x >= _ZERO64 else e) / (_ONE64 + e)
    return r if x == x else x


@_vjit
def erf_f32(x):
    ax = abs(x)
    # |x| < 1
    z = x * x
    p = fma(fma(fma(fma(fma(_EA32[5], z, _EA32[4]), z, _EA32[3]), z, _EA32[2]), z,
                _EA32[1]), z, _EA32[0])
    a = fma(x, p, x)
    # |x| >= 1: 1 - exp(-t^2) erfcx(t)
    t = ax if ax < f32(4.0) else f32(4.0)
    t = t if t > _ONE32 else _ONE32
    v = _ONE32 / (t + f32(3.0))
    g = _EB32[6]
    g = fma(g, v, _EB32[5])
    g = fma(g, v, _EB32[4])
    g = fma(g, v, _EB32[3])
    g = fma(g, v, _EB32[2])
    g = fma(g, v, _EB32[1])
    g = fma(g, v, _EB32[0])
    h = t * t
    lo = fma(t, t, -h)
    e = _exp_k32(-h)
    b = _ONE32 - fma(-lo, g * e, g * e)
    r = a if ax < _ONE32 else _copysign32(b, x)
    return r if x == x else x


@_vjit
def erf_f64(x):
    ax = abs(x)
    z = x * x
    p = _EA64[11]
    p = fma(p, z, _EA64[10])
    p = fma(p, z, _EA64[9])
    p = fma(p, z, _EA64[8])
    p = fma(p, z, _EA64[7])
    p = fma(p, z, _EA64[6])
    p = fma(p, z, _EA64[5])
    p = fma(p, z, _EA64[4])
    p = fma(p, z, _EA64[3])
    p = fma(p, z, _EA64[2])
    p = fma(p, z, _EA64[1])
    p = fma(p, z, _EA64[0])
    a = fma(x, p, x)
    t = ax if ax < f64(6.0) else f64(6.0)
    t = t if t > _ONE64 else _ONE64
    v = _ONE64 / (t + f64(3.0))
    g = _EB64[14]
    g = fma(g, v, _EB64[13])
    g = fma(g, v, _EB64[12])
    g = fma(g, v, _EB64[11])
    g = fma(g, v, _EB64[10])
    g = fma(g, v, _EB64[9])
    g = fma(g, v, _EB64[8])
    g = fma(g, v, _EB64[7])
    g = fma(g, v, _EB64[6])
    g = fma(g, v, _EB64[5])
    g = fma(g, v, _EB64[4])
    g = fma(g, v, _EB64[3])
    g = fma(g, v, _EB64[2])
    g = fma(g, v, _EB64[1])
    g = fma(g, v, _EB64[0])
    h = t * t
    lo = fma(t, t, -h)
    e = _exp_k64(-h, _NZERO64)
    ge = g * e
    b = _ONE64 - fma(-lo, ge, ge)
    r = a if ax < _ONE64 else _copysign64(b, x)
    return r if x == x else x


# --------------------------------------------------------------------------
# pow
# --------------------------------------------------------------------------

@_vjit
def _log_dd64(ax):
    """log(ax) as a double-double (hi, lo), ax > 0 finite; relative error ~2**-66."""
    sub = ax < f64(2.2250738585072014e-308)
    xs = ax * f64(18014398509481984.0) if sub else ax
    ix = (bits64(xs) & _ABS64) - _SQRTH_BITS64
    k = ix >> 52
    m = from_bits64((ix & _MANT64) + _SQRTH_BITS64)
    kf = _int_to_f64(k) - (f64(54.0) if sub else _ZERO64)
    f = m - _ONE64
    u = _TWO64 + f
    ul = (_TWO64 - u) + f
    s = f / u
    sl = (fma(-s, u, f) - s * ul) / u                # s + sl = f / (2 + f)
    z = s * s
    zl = fma(s, s, -z)
    cu = z * s                                       # s^3 = cu + cl
    cl = fma(z, s, -cu) + (zl * s + f64(3.0) * z * sl)
    th = _TWO3HI * cu                                # (2/3) s^3 = th + tl
    tl = fma(_TWO3HI, cu, -th) + (_TWO3HI * cl + _TWO3LO * cu)
    p = _LT64[6]
    p = fma(p, z, _LT64[5])
    p = fma(p, z, _LT64[4])
    p = fma(p, z, _LT64[3])
    p = fma(p, z, _LT64[2])
    p = fma(p, z, _LT64[1])
    p = fma(p, z, _LT64[0])
    tail = cu * z * p                                # s^5 T(z)
    a = kf * _LN2HI42                                # exact
    s2 = s + s
    h1 = a + s2
    bb = h1 - a
    e1 = (a - (h1 - bb)) + (s2 - bb)
    h2 = h1 + th
    bb = h2 - h1
    e2 = (h1 - (h2 - bb)) + (th - bb)
    lo = e1 + e2 + ((sl + sl) + tl + tail + kf * _LN2LO42)
    hi = h2 + lo
    return hi, lo - (hi - h2)


@_vjit
def _odd_int64(y):
    return np.floor(y) == y and np.floor(y * _HALF64) != y * _HALF64


@_vjit
def pow_f64(x, y):
    ax = abs(x)
    ok = ax > _ZERO64 and ax < _INF64
    lh, ll = _log_dd64(ax if ok else _ONE64)
    lh = lh if ok else (-_INF64 if ax == _ZERO64 else ax)   # +-inf or nan
    ll = ll if ok else _ZERO64
    zh = y * lh
    zl = fma(y, lh, -zh) + y * ll
    zc = zh if zh < f64(710.0) else f64(710.0)
    zc = zc if zc > f64(-746.0) else f64(-746.0)
    fin = zc == zh
    zl = zl if fin else _ZERO64
    zc = zc if zh == zh else _ZERO64
    r = _exp_k64(zc, zl)
    r = r if zh == zh else _NAN64
    r = -r if (bits64(x) < 0 and _odd_int64(y)) else r
    r = _NAN64 if (x < _ZERO64 and x > -_INF64 and np.floor(y) != y and abs(y) < _INF64) else r
    r = _ONE64 if (ax == _ONE64 and abs(y) == _INF64) else r
    return _ONE64 if (x == _ONE64 or y == _ZERO64) else r


@_vjit
def _log_k64(ax):
    """log for float64 ax > 0 finite (no special cases)."""
    sub = ax < f64(2.2250738585072014e-308)
    xs = ax * f64(18014398509481984.0) if sub else ax
    ix = (bits64(xs) & _ABS64) - _SQRTH_BITS64
    k = ix >> 52
    m = from_bits64((ix & _MANT64) + _SQRTH_BITS64)
    kf = _int_to_f64(k) - (f64(54.0) if sub else _ZERO64)
    lm = _log1p_poly64(m - _ONE64)
    return fma(kf, _LN2HI42, fma(kf, _LN2LO42, lm))


@_vjit
def pow_f32(x, y):
    xd = np.float64(x)
    yd = np.float64(y)
    ax = abs(xd)
    ok = ax > _ZERO64 and ax < _INF64
    lh = _log_k64(ax if ok else _ONE64)
    lh = lh if ok else (-_INF64 if ax == _ZERO64 else ax)
    zh = yd * lh
    zc = zh if zh < f64(710.0) else f64(710.0)
    zc = zc if zc > f64(-746.0) else f64(-746.0)
    zc = zc if zh == zh else _ZERO64
    r = _exp_k64(zc, _NZERO64)
    r = r if zh == zh else _NAN64
    r = -r if (bits32(x) < 0 and _odd_int64(yd)) else r
    r = _NAN64 if (xd < _ZERO64 and xd > -_INF64 and np.floor(yd) != yd and abs(yd) < _INF64) else r
    r = _ONE64 if (ax == _ONE64 and abs(yd) == _INF64) else r
    r = _ONE64 if (xd == _ONE64 or yd == _ZERO64) else r
    return np.float32(r)


# --------------------------------------------------------------------------
# Table for the code generator
# --------------------------------------------------------------------------

_NAMES = ("exp", "log", "log1p", "expm1", "sin", "cos", "tanh", "sigmoid", "erf", "pow")
_SUFFIX = {"float32": "f32", "float64": "f64"}

#: (function name, dtype name) -> dotted name of the callable, as emitted code
#: refers to it after ``from compiler.codegen import vecmath as vm``.
FUNCTIONS = {(n, d): f"vm.{n}_{s}" for n in _NAMES for d, s in _SUFFIX.items()}

#: number of arguments of each function
ARITY = {n: (2 if n == "pow" else 1) for n in _NAMES}


def lookup(name, dtype):
    """The njit callable for `name` ("exp", ...) and `dtype` (np.float32/"float64"/...)."""
    return globals()[f"{name}_{_SUFFIX[np.dtype(dtype).name]}"]
