"""Dtypes and PyTorch's type-promotion rules, on NumPy dtypes."""
import builtins

import numpy as np


class dtype:
    """A jitgrad dtype: a name, its NumPy dtype and PyTorch's category flags."""

    __slots__ = ("name", "np", "is_floating_point", "is_signed", "itemsize")

    def __init__(self, name, np_dtype):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = self.np.kind == "f"
        self.is_signed = self.np.kind in "if"
        self.itemsize = self.np.itemsize

    def __repr__(self):
        return f"jitgrad.{self.name}"

    def __reduce__(self):
        return (from_numpy_dtype, (self.np,))


float16 = dtype("float16", np.float16)
float32 = dtype("float32", np.float32)
float64 = dtype("float64", np.float64)
uint8 = dtype("uint8", np.uint8)
int8 = dtype("int8", np.int8)
int16 = dtype("int16", np.int16)
int32 = dtype("int32", np.int32)
int64 = dtype("int64", np.int64)
bool_ = dtype("bool", np.bool_)

ALL = (float16, float32, float64, uint8, int8, int16, int32, int64, bool_)
_BY_NUMPY = {d.np: d for d in ALL}
# PyTorch's aliases: torch.float is float32, torch.double float64, torch.long int64, ...
ALIASES = {"float": float32, "double": float64, "half": float16, "long": int64, "int": int32,
           "short": int16}

_default_float = [np.dtype(np.float32)]

# PyTorch's "legacy" type names, used in error messages ("torch.FloatTensor [3]").
LEGACY_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
                "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor",
                "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}
# Names used in PyTorch's casting errors ("result type Float can't be cast to ... Long").
SCALAR_TYPE_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long",
                     "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
                     "bool": "Bool"}


def from_numpy_dtype(np_dtype):
    """The jitgrad dtype of a NumPy dtype; TypeError for types PyTorch has no tensor for."""
    try:
        return _BY_NUMPY[np_dtype]
    except KeyError:
        pass
    try:
        return _BY_NUMPY[np.dtype(np_dtype)]
    except (KeyError, TypeError):
        raise TypeError(
            f"can't convert np.ndarray of type {np.dtype(np_dtype)}. The only supported types "
            "are: float64, float32, float16, int64, int32, int16, int8, uint8, and bool.") from None


def to_numpy_dtype(d):
    """Accept a jitgrad dtype, a NumPy dtype or a Python type and return a NumPy dtype."""
    if d is None:
        return None
    if type(d) is dtype:
        return d.np
    if d is builtins.float:
        return float64.np          # matches torch: dtype=float is double, whatever the default
    if d is builtins.int:
        return int64.np
    if d is builtins.bool:
        return bool_.np
    return from_numpy_dtype(d).np


def get_default_dtype():
    return _BY_NUMPY[_default_float[0]]


def set_default_dtype(d):
    d = to_numpy_dtype(d)
    if d.kind != "f":
        raise TypeError("only floating-point types are supported as the default type")
    _default_float[0] = d


def default_float():
    return _default_float[0]


def _category(np_dtype):
    # PyTorch orders bool < integral < floating point.
    kind = np_dtype.kind
    return 2 if kind == "f" else 0 if kind == "b" else 1


def promote_types(a, b):
    """PyTorch's promote_types: the higher category wins and keeps its width."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def _combine_categories(higher, lower):
    # c10's combine_categories: a floating "higher" tier wins outright; otherwise a lower tier
    # only matters when it is of a higher category.
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return promote_types(higher, lower)
    return higher


def _scalar_dtype(value):
    if isinstance(value, builtins.bool) or isinstance(value, np.bool_):
        return bool_.np
    if isinstance(value, (builtins.int, np.integer)):
        return int64.np
    if isinstance(value, (builtins.float, np.floating)):
        return _default_float[0]
    raise TypeError(f"unsupported scalar type {type(value).__name__}")


_result_cache = {}


def result_type(*operands):
    """PyTorch's result_type over arrays (tensors' data) and Python scalars.

    Dimensioned tensors, zero-dimensional tensors and wrapped Python scalars form three tiers;
    a lower tier changes the result only if its category is higher (int tensor + 2.5 -> float32;
    float32 tensor + float64 zero-dim tensor -> float32).
    """
    key = tuple((x.dtype, x.ndim == 0) if isinstance(x, np.ndarray) else type(x)
                for x in operands)
    cached = _result_cache.get(key)
    if cached is not None:
        return cached
    dim_result = zero_result = wrapped_result = None
    for x in operands:
        if isinstance(x, np.ndarray):
            if x.ndim:
                dim_result = promote_types(dim_result, x.dtype)
            else:
                zero_result = promote_types(zero_result, x.dtype)
        else:
            wrapped_result = promote_types(wrapped_result, _scalar_dtype(x))
    result = _combine_categories(dim_result, _combine_categories(zero_result, wrapped_result))
    if len(_result_cache) < 4096:
        _result_cache[key] = result
    return result


def can_cast(from_dtype, to_dtype):
    """PyTorch's canCast for in-place results: no float -> integral, no non-bool -> bool."""
    return _category(from_dtype) <= _category(to_dtype)
