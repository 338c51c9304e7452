"""Device memory for the CUDA backend: a caching allocator, as PyTorch's.

Every device array the backend makes (kernel outputs, per-block partials, eager results) comes
from `device_array`. Numba's own allocation calls cuMemAlloc each time, and its frees are
cuMemFree calls that wait for the device; at W1's size (64 MB per gradient) that was about 1.4
ms of host time per step on an H100, more than the kernels took. Here a freed block goes back
to a free list keyed by its rounded size and the next array of that size takes it: the
device's work runs in stream order (everything the backend launches goes to the default
stream), so a block handed out again is only written after the work that read it before.

A block is handed out wrapped in a fresh numba MemoryPointer whose finalizer returns the block;
views of an array (reshape, slices) hold that pointer, so a block comes back only when no
array or view uses it. At most `LIMIT` bytes stay cached; `empty_cache` releases them all, and
an allocation that fails releases them and tries once more. Under Numba's CUDA simulator the
plain numba allocation is used.
"""
import threading

import numpy as np

LIMIT = 4 << 30         # bytes kept in the free lists at most
_SMALL = 1 << 20        # below: rounded up to 512 bytes; above: to 2 MiB
_LOCK = threading.Lock()
_FREE = {}              # rounded size -> [numba pointers owning a block of that size]
_STATS = {"cached": 0, "reserved": 0, "hits": 0, "allocations": 0}


def _cuda():
    from numba import cuda
    return cuda


def _rounded(nbytes):
    step = 512 if nbytes < _SMALL else 2 << 20
    return -(-nbytes // step) * step


def _take(size):
    with _LOCK:
        blocks = _FREE.get(size)
        if blocks:
            _STATS["cached"] -= size
            _STATS["hits"] += 1
            return blocks.pop()
    return None


def _give_back(block, size):
    with _LOCK:
        if _STATS["cached"] + size <= LIMIT:
            _FREE.setdefault(size, []).append(block)
            _STATS["cached"] += size
            return
        _STATS["reserved"] -= size
    # over the limit: dropping the last reference frees it through numba


def _allocate(context, size):
    try:
        block = context.memalloc(size)
    except Exception:  # noqa: BLE001 - out of memory (numba already flushed its own frees)
        empty_cache()
        block = context.memalloc(size)
    with _LOCK:
        _STATS["reserved"] += size
        _STATS["allocations"] += 1
    return block


_DEVICE = []            # [context, MemoryPointer, DeviceNDArray] once the device is in use


def _device():
    if not _DEVICE:
        from numba.cuda.cudadrv.devicearray import DeviceNDArray
        from numba.cuda.cudadrv.driver import MemoryPointer
        _DEVICE.extend((_cuda().current_context(), MemoryPointer, DeviceNDArray))
    return _DEVICE


def device_array(shape, dtype):
    """A new (uninitialised) C-contiguous device array."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape) if isinstance(shape, (tuple, list)) else (int(shape),)
    nbytes = dtype.itemsize
    for s in shape:
        nbytes *= s
    if nbytes == 0 or simulated():
        return _cuda().device_array(shape, dtype=dtype)
    context, memory_pointer, device_ndarray = _DEVICE or _device()
    size = _rounded(nbytes)
    block = _take(size)
    if block is None:
        block = _allocate(context, size)
    pointer = memory_pointer(context, block.device_pointer, size,
                             finalizer=lambda: _give_back(block, size))
    strides, acc = [], dtype.itemsize
    for s in reversed(shape):
        strides.append(acc)
        acc *= s
    return device_ndarray(shape, tuple(reversed(strides)), dtype, gpu_data=pointer)


def simulated():
    """Whether numba.cuda is Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM)."""
    if not _SIMULATED:     # numba reads the switch once, at import
        from numba import config
        _SIMULATED.append(bool(config.ENABLE_CUDASIM))
    return _SIMULATED[0]


_SIMULATED = []


def empty_cache():
    """Release every cached block (numba frees them)."""
    with _LOCK:
        released = sum(len(v) * k for k, v in _FREE.items())
        _FREE.clear()
        _STATS["cached"] = 0
        _STATS["reserved"] -= released
    try:
        _cuda().current_context().deallocations.clear()
    except Exception:  # noqa: BLE001 - no context yet, or the simulator
        pass


def reserved():
    """Bytes held: in use by arrays made here, or cached."""
    return _STATS["reserved"]


def stats():
    return dict(_STATS)
