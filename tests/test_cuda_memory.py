"""The CUDA backend's caching allocator (compiler/cuda_memory.py), without a GPU: numba's own
DeviceNDArray and MemoryPointer over a stand-in context whose memalloc hands out numbered
blocks. (On a GPU every device test runs through it: JITGRAD_TEST_CUDA=gpu.)"""
import ctypes
import gc

import numpy as np
import pytest

from compiler import cuda_memory as memory


class Block:
    def __init__(self, pointer):
        self.device_pointer = pointer


class Context:
    def __init__(self, fail_first=False):
        self.allocations = 0
        self.fail_first = fail_first

    def memalloc(self, size):
        if self.fail_first:
            self.fail_first = False
            raise MemoryError("out of memory")
        self.allocations += 1
        return Block(ctypes.c_void_p(0x10000 * self.allocations))


@pytest.fixture
def device(monkeypatch):
    from numba.cuda.cudadrv.devicearray import DeviceNDArray
    from numba.cuda.cudadrv.driver import MemoryPointer
    context = Context()
    monkeypatch.setattr(memory, "_DEVICE", [context, MemoryPointer, DeviceNDArray])
    monkeypatch.setattr(memory, "_SIMULATED", [False])
    monkeypatch.setattr(memory, "_FREE", {})
    monkeypatch.setattr(memory, "_STATS", {"cached": 0, "reserved": 0, "hits": 0,
                                           "allocations": 0})
    return context


def pointer(array):
    address = array.device_ctypes_pointer
    return getattr(address, "value", address)


def test_a_released_block_is_reused_for_the_same_rounded_size(device):
    a = memory.device_array((4, 3), np.float32)
    assert a.shape == (4, 3) and a.strides == (12, 4) and a.dtype == np.float32
    first = pointer(a)
    del a
    gc.collect()
    b = memory.device_array((64,), np.float64)      # 48 and 512 bytes both round to 512
    assert pointer(b) == first and device.allocations == 1
    c = memory.device_array((3 << 20,), np.uint8)    # large: 2 MiB steps, a new block
    assert pointer(c) != first and device.allocations == 2
    assert memory.stats()["hits"] == 1 and memory.reserved() == 512 + (4 << 20)


def test_a_view_keeps_the_block_in_use(device):
    a = memory.device_array((6,), np.float32)
    view = a.reshape(2, 3)
    first = pointer(a)
    del a
    gc.collect()
    b = memory.device_array((6,), np.float32)
    assert pointer(b) != first                 # the view still holds the first block
    del view
    gc.collect()
    assert pointer(memory.device_array((6,), np.float32)) == first


def test_cached_bytes_stay_under_the_limit(device, monkeypatch):
    monkeypatch.setattr(memory, "LIMIT", 1024)
    arrays = [memory.device_array((128,), np.float32) for _ in range(3)]  # 512 bytes each
    del arrays
    gc.collect()
    stats = memory.stats()
    assert stats["cached"] == 1024 and stats["reserved"] == 1024   # the third was released


def test_a_failed_allocation_releases_the_cache_and_retries(device, monkeypatch):
    a = memory.device_array((128,), np.float32)
    del a
    gc.collect()
    assert memory.stats()["cached"] == 512
    device.fail_first = True
    b = memory.device_array((4096,), np.float32)    # another size: allocates, fails, retries
    assert b.size == 4096 and memory.stats()["cached"] == 0
