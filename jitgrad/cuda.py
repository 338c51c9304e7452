"""jitgrad.cuda: the CUDA device, as torch.cuda spells it (is_available, device_count, ...).

A CUDA tensor holds a numba device array in `_data`. Nothing here imports Numba at import time:
`numba.cuda` loads the first time a function below asks for it, and the device backend (the
compiler's `cuda_eager`, which runs ops on device arrays) the first time a tensor goes to the
device. Loading the backend sets `dispatch._cuda_active`, the one flag the CPU fast paths test.
"""
import numpy as np

_BACKEND = []
_AVAILABLE = []     # [True] once a device was found (it stays; a missing one is asked again)


def _numba_cuda():
    from numba import cuda
    return cuda


def is_available():
    """Whether numba.cuda sees a GPU (or Numba's CUDA simulator is on)."""
    if _AVAILABLE:
        return True
    try:
        available = bool(_numba_cuda().is_available())
    except Exception:  # noqa: BLE001 - no Numba, no driver, no libraries: not available
        return False
    if available:
        _AVAILABLE.append(True)
    return available


def device_count():
    return len(_numba_cuda().gpus) if is_available() else 0


def current_device():
    require(0)
    return 0


def get_device_name(device=None):
    require(0)
    gpu = _numba_cuda().gpus[0]
    # numba.cuda's device context delegates attributes to the device (numba-cuda has no
    # `.device` on it); the simulator's has neither
    name = getattr(gpu, "name", None) or getattr(getattr(gpu, "device", None), "name", "")
    name = name.decode() if isinstance(name, bytes) else str(name)
    return name or "CUDA device 0 (Numba's simulator)"


def empty_cache():
    """Release the cached device memory that no tensor uses (torch.cuda.empty_cache)."""
    if _BACKEND:
        from compiler import cuda_memory
        cuda_memory.empty_cache()


def memory_reserved(device=None):
    """Bytes of device memory held by jitgrad's caching allocator, in use or cached."""
    if not _BACKEND:
        return 0
    from compiler import cuda_memory
    return cuda_memory.reserved()


def synchronize(device=None):
    if is_available():
        _numba_cuda().synchronize()


def manual_seed(seed):
    """Random tensors are drawn on the host and copied over: the host generator decides."""
    from .creation import manual_seed as host_seed
    host_seed(seed)


manual_seed_all = manual_seed


def require(index=0):
    """Raise unless CUDA device `index` can hold tensors (jitgrad supports device 0 only)."""
    if not is_available():
        raise RuntimeError("Found no CUDA device: jitgrad's CUDA tensors need numba.cuda with an "
                           "NVIDIA GPU and driver (pip install 'jitgrad[cuda]'), or Numba's CUDA "
                           "simulator (NUMBA_ENABLE_CUDASIM=1 before Numba is imported)")
    if index >= device_count() or index < 0:
        raise RuntimeError("CUDA error: invalid device ordinal")
    if index != 0:
        raise NotImplementedError(f"cuda:{index}: jitgrad supports CUDA device 0 only")


def is_device_array(array):
    return type(array) is not np.ndarray


def backend():
    """The device backend (compiler.cuda_eager), loaded on first use."""
    if not _BACKEND:
        from compiler import cuda_eager
        from . import dispatch
        _BACKEND.append(cuda_eager)
        dispatch._cuda_active = True
    return _BACKEND[0]


def host_only(tensor, what):
    """Refuse to run `what` on a CUDA tensor by computing on the host behind the caller's back."""
    if type(tensor._data) is not np.ndarray:
        raise NotImplementedError(f"{what} is not supported on CUDA yet (the tensor is on "
                                  "cuda:0; copy it with .cpu() first)")
