"""Tensor repr in PyTorch's format: tensor([1.0000, 2.5000], requires_grad=True)."""
import numpy as np

from . import dtypes

_DEFAULT_INT = np.dtype(np.int64)


def _float_formatter(array):
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return lambda v: _nonfinite(v) or f"{v:.4f}"
    integral = bool(np.all(finite == np.round(finite)))
    abs_finite = np.abs(finite)
    amax = float(abs_finite.max())
    nonzero = abs_finite[abs_finite > 0]
    amin_nz = float(nonzero.min()) if nonzero.size else 0.0
    if integral and amax < 1e8:
        width = max(len(f"{v:.0f}.") for v in finite)
        return lambda v: (_nonfinite(v) or f"{v:.0f}.").rjust(width)
    if amax >= 1e8 or (amin_nz and amin_nz < 1e-4) or (amin_nz and amax / amin_nz > 1000):
        return lambda v: _nonfinite(v) or f"{v:.4e}"
    width = max(len(f"{v:.4f}") for v in finite)
    return lambda v: (_nonfinite(v) or f"{v:.4f}").rjust(width)


def _nonfinite(v):
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return None


def format_data(array):
    if array.dtype.kind == "f":
        fmt = {"float_kind": _float_formatter(array)} if array.size else {}
    elif array.dtype.kind == "b":
        fmt = {"bool": lambda v: " True" if v else "False"}
    else:
        fmt = {}
    if array.ndim == 0:
        if array.dtype.kind == "f":
            return _float_formatter(array.reshape(1))(array.item()).strip()
        return str(array.item())
    return np.array2string(array, separator=", ", formatter=fmt, prefix="tensor(",
                           threshold=1000, edgeitems=3, max_line_width=80)


def tensor_repr(t):
    array = t._host()
    text = format_data(array)
    suffixes = []
    if type(t._data) is not np.ndarray:
        suffixes.append(f"device='{t.device}'")
    if array.size == 0 and array.ndim != 1:
        suffixes.append(f"size={tuple(array.shape)}")
    if not ((array.dtype.kind == "f" and array.dtype == dtypes.default_float())
            or array.dtype == _DEFAULT_INT or array.dtype.kind == "b"):
        suffixes.append(f"dtype={dtypes.from_numpy_dtype(array.dtype)!r}")
    if t._grad_fn is not None:
        suffixes.append(f"grad_fn=<{t._grad_fn.name()}>")
    elif t._requires_grad:
        suffixes.append("requires_grad=True")
    return "tensor(" + text + "".join(", " + s for s in suffixes) + ")"
