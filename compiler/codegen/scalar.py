"""Scalar helpers that kernel templates call (`sigmoid(x)`, `relu(x)`, ...), compiled inline by
Numba and valid Python under NUMBA_DISABLE_JIT."""
import math

import numba
import numpy as np

inline = numba.njit(inline="always", cache=True)
exp, log, log1p, expm1 = math.exp, math.log, math.log1p, math.expm1
sin, cos, tanh, erf, sqrt = math.sin, math.cos, math.tanh, math.erf, math.sqrt
isnan, isinf, isfinite = math.isnan, math.isinf, math.isfinite


@inline
def sigmoid(x):
    e = math.exp(-abs(x))
    return 1 / (1 + e) if x >= 0 else e / (1 + e)


@inline
def relu(x):
    return x if x > 0 else x * 0


@inline
def sign(x):
    # int per comparison: Numba's CUDA simulator runs this on NumPy scalars, which refuse
    # bool - bool
    return (1 if x > 0 else 0) - (1 if x < 0 else 0) if x == x else x


@inline
def rsqrt(x):
    return 1 / math.sqrt(x)


@inline
def fmax(a, b):
    # matches torch.maximum: NaN propagates
    return a if (a > b or a != a) else b


@inline
def fmin(a, b):
    return a if (a < b or a != a) else b


@inline
def power(a, b):
    return a ** b


@inline
def clamp_min(x, low):
    return x if x >= low or x != x else low


@inline
def clamp_max(x, high):
    return x if x <= high or x != x else high


__all__ = ["np", "exp", "log", "log1p", "expm1", "sin", "cos", "tanh", "erf", "sqrt", "isnan",
           "isinf", "isfinite", "sigmoid", "relu", "sign", "rsqrt", "fmax", "fmin", "power",
           "clamp_min", "clamp_max"]
