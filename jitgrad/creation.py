"""Tensor creation: tensor/as_tensor/from_numpy, zeros/ones/full/empty (and *_like), random
tensors with a seedable generator, arange/linspace/eye."""
import builtins
import warnings

import numpy as np

from . import dtypes
from .device import CPU, check_device
from .tensor import Tensor

_generator = [np.random.default_rng(0)]


def manual_seed(seed):
    """Seed jitgrad's generator (PCG64; values differ from PyTorch's for the same seed)."""
    _generator[0] = np.random.default_rng(int(seed))
    return _generator[0]


seed = manual_seed


def _finish(array, requires_grad, device=None):
    """A new leaf holding `array` (made on the host), on `device`: a CUDA device gets a copy."""
    if device is not None and device is not CPU and check_device(device).type == "cuda":
        from .cuda import backend
        array = backend().to_device(array)
    t = Tensor._make(array)
    if requires_grad:
        t._set_requires_grad(
            True, "Only Tensors of floating point and complex dtype can require gradients")
    return t


def _infer_array(data, dtype):
    """PyTorch's inference: Python floats -> the default float, ints -> int64, bools -> bool;
    NumPy arrays keep their dtype."""
    np_dtype = dtypes.to_numpy_dtype(dtype)
    if isinstance(data, Tensor):
        data = data._data
    elif isinstance(data, (list, tuple)):
        data = _unwrap_nested(data)
    array = np.array(data, dtype=np_dtype, copy=True)
    if array.dtype == object:
        raise TypeError(f"Could not infer dtype of {type(data).__name__}")
    if np_dtype is None:
        if array.dtype.kind == "f" and not isinstance(data, np.ndarray) and not \
                isinstance(data, np.floating):
            array = array.astype(dtypes.default_float())
        elif array.dtype.kind in "iu" and not isinstance(data, (np.ndarray, np.integer)):
            array = array.astype(np.int64)
    dtypes.from_numpy_dtype(array.dtype)
    return array


def _unwrap_nested(data):
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, (list, tuple)):
        return [_unwrap_nested(d) for d in data]
    return data


def _device_source(data):
    """Whether `data` is device memory: a CUDA tensor, a numba device array, or an object with
    the CUDA Array Interface (CuPy, a torch CUDA tensor, ...)."""
    if isinstance(data, Tensor):
        return type(data._data) is not np.ndarray
    return hasattr(data, "__cuda_array_interface__") or getattr(data, "__cuda_ndarray__", False)


def _from_device(data, dtype, device, copy):
    """A CUDA tensor over device memory (`data` as in _device_source): shared, or copied on
    the device; a dtype conversion also runs there. device="cpu" copies to the host."""
    from .cuda import backend
    cuda = backend()
    source = data if isinstance(data, Tensor) else Tensor._make(cuda.from_cuda_array(data))
    source = source.detach()
    out = source
    if device is not None and check_device(device).type == "cpu":
        host = _finish(np.array(source._host(), copy=True), False)
        return host if dtype is None else host.to(dtype)
    if dtype is not None and dtypes.to_numpy_dtype(dtype) != source._data.dtype:
        out = source.to(dtype)
    elif copy:
        out = Tensor._make(cuda.copy(source._data))
    dtypes.from_numpy_dtype(out._data.dtype)
    return out


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False):
    if isinstance(data, Tensor):
        warnings.warn("To copy construct from a tensor, it is recommended to use "
                      "sourceTensor.detach().clone() or "
                      "sourceTensor.detach().clone().requires_grad_(True), rather than "
                      "torch.tensor(sourceTensor).", UserWarning, stacklevel=2)
    if _device_source(data):
        # matches torch: torch.tensor always copies (here on the device)
        out = _from_device(data, dtype, device, copy=True)
        if requires_grad:
            out._set_requires_grad(
                True, "Only Tensors of floating point and complex dtype can require gradients")
        return out
    return _finish(_infer_array(data, dtype), requires_grad, device)


def as_tensor(data, dtype=None, device=None):
    if _device_source(data):
        return _from_device(data, dtype, device, copy=False)   # shares the memory
    if isinstance(data, Tensor):
        data = data if dtype is None else data.to(dtype)
        return data if device is None else data.to(device)
    if isinstance(data, np.ndarray) and (dtype is None or
                                         dtypes.to_numpy_dtype(dtype) == data.dtype):
        return from_numpy(data) if device is None else from_numpy(data).to(device)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    dtypes.from_numpy_dtype(array.dtype)
    return Tensor._make(array)  # shares memory, like PyTorch


def from_dlpack(ext_tensor):
    """A tensor sharing the memory of a DLPack-exporting object (a CPU tensor of torch, JAX,
    CuPy's host arrays, NumPy ...) or of a DLPack capsule (torch.utils.dlpack.to_dlpack)."""
    device = getattr(ext_tensor, "__dlpack_device__", None)
    if device is not None and device()[0] != 1:
        raise BufferError(Tensor._DLPACK_ON_CUDA)
    if type(ext_tensor).__name__ == "PyCapsule":
        ext_tensor = _Capsule(ext_tensor)
    try:
        array = np.from_dlpack(ext_tensor)
    except (TypeError, AttributeError, ValueError):   # not DLPack, or a used capsule
        raise RuntimeError("from_dlpack received an invalid capsule. Note that DLTensor "
                           "capsules can be consumed only once, so you might have already "
                           "constructed a tensor from it once.") from None
    return from_numpy(array)


class _Capsule:
    """A bare DLPack capsule (a CPU one: capsules carry no device query) as the protocol
    object np.from_dlpack takes."""

    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, *args, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return (1, 0)


def _size(size, name=None):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    size = tuple(int(s) for s in size)
    for s in size:
        if s < 0:
            if name == "zeros":   # matches torch: zeros has its own wording
                raise RuntimeError("zeros: Dimension size must be non-negative.")
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: "
                               f"{list(size)}")
    return size


def _filled(fill, name):
    def create(*size, dtype=None, device=None, requires_grad=False, out=None, layout=None):
        np_dtype = dtypes.to_numpy_dtype(dtype) or dtypes.default_float()
        return _finish(fill(_size(size, name), np_dtype), requires_grad, device)
    create.__name__ = name
    return create


zeros = _filled(np.zeros, "zeros")
ones = _filled(np.ones, "ones")
empty = _filled(np.zeros, "empty")  # uninitialised in PyTorch; zeros here, never garbage


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    if dtype is None:
        if isinstance(fill_value, builtins.bool):
            dtype = dtypes.bool_
        elif isinstance(fill_value, builtins.int):
            dtype = dtypes.int64
    np_dtype = dtypes.to_numpy_dtype(dtype) or dtypes.default_float()
    return _finish(np.full(_size((size,)), fill_value, dtype=np_dtype), requires_grad, device)


def _like(fill):
    def create(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
        np_dtype = dtypes.to_numpy_dtype(dtype) or input._data.dtype
        return _finish(fill(input._data.shape, np_dtype), requires_grad,
                       input.device if device is None else device)
    return create


zeros_like = _like(np.zeros)
ones_like = _like(np.ones)
empty_like = _like(np.zeros)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False):
    np_dtype = dtypes.to_numpy_dtype(dtype) or input._data.dtype
    return _finish(np.full(input._data.shape, fill_value, dtype=np_dtype), requires_grad,
                   input.device if device is None else device)


def _random(draw):
    def create(*size, dtype=None, device=None, requires_grad=False, generator=None):
        np_dtype = dtypes.to_numpy_dtype(dtype) or dtypes.default_float()
        if np_dtype.kind != "f":
            raise RuntimeError(f"\"normal_kernel_cpu\" not implemented for "
                               f"'{dtypes.SCALAR_TYPE_NAMES[np_dtype.name]}'")
        rng = generator if generator is not None else _generator[0]
        return _finish(draw(rng, _size(size)).astype(np_dtype), requires_grad, device)
    return create


randn = _random(lambda rng, size: rng.standard_normal(size))
rand = _random(lambda rng, size: rng.random(size))


def randn_like(input, *, dtype=None, device=None, requires_grad=False):
    return randn(input._data.shape, dtype=dtype or input.dtype, requires_grad=requires_grad,
                 device=input.device if device is None else device)


def rand_like(input, *, dtype=None, device=None, requires_grad=False):
    return rand(input._data.shape, dtype=dtype or input.dtype, requires_grad=requires_grad,
                device=input.device if device is None else device)


def randint(low, high=None, size=None, *, dtype=None, device=None, requires_grad=False):
    if high is None:
        low, high = 0, low
    array = _generator[0].integers(low, high, size=tuple(size))
    return _finish(array.astype(dtypes.to_numpy_dtype(dtype) or np.int64), requires_grad,
                   device)


def randperm(n, *, dtype=None, device=None, requires_grad=False):
    array = _generator[0].permutation(n).astype(dtypes.to_numpy_dtype(dtype) or np.int64)
    return _finish(array, requires_grad, device)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    values = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if step == 0:
        raise RuntimeError("step must be nonzero")
    np_dtype = dtypes.to_numpy_dtype(dtype)
    if np_dtype is None:
        integral = builtins.all(isinstance(v, (builtins.int, np.integer)) for v in values)
        np_dtype = np.dtype(np.int64) if integral else dtypes.default_float()
    return _finish(np.arange(*values, dtype=np.float64).astype(np_dtype), requires_grad, device)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
    np_dtype = dtypes.to_numpy_dtype(dtype) or dtypes.default_float()
    return _finish(np.linspace(start, end, steps).astype(np_dtype), requires_grad, device)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    np_dtype = dtypes.to_numpy_dtype(dtype) or dtypes.default_float()
    return _finish(np.eye(n, m, dtype=np_dtype), requires_grad, device)


def _legacy(np_dtype):
    class LegacyTensor:
        def __new__(cls, *args):
            return Tensor(*args, dtype=np_dtype)
    return LegacyTensor


FloatTensor = _legacy(np.float32)
DoubleTensor = _legacy(np.float64)
LongTensor = _legacy(np.int64)
BoolTensor = _legacy(np.bool_)


def _bind():
    def new(fill):
        def method(self, *size, dtype=None, device=None, requires_grad=False):
            np_dtype = dtypes.to_numpy_dtype(dtype) or self._data.dtype
            return _finish(fill(_size(size), np_dtype), requires_grad,
                           self.device if device is None else device)
        return method
    Tensor.new_zeros = new(np.zeros)
    Tensor.new_ones = new(np.ones)
    Tensor.new_empty = new(np.zeros)
    Tensor.new_full = lambda self, size, fill_value, *, dtype=None, device=None, \
        requires_grad=False: full(size, fill_value, dtype=dtype or self.dtype,
                                  requires_grad=requires_grad,
                                  device=self.device if device is None else device)
    Tensor.new_tensor = lambda self, data, *, dtype=None, device=None, requires_grad=False: \
        tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad,
               device=self.device if device is None else device)


_bind()
