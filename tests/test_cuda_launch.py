"""The CUDA backend's packed launcher (compiler/cuda_executor._Packed), without a GPU: the
kernel parameters it builds follow numba-cuda's own layout for a launch (_Kernel.launch: an
array is meminfo, parent, size, itemsize, data pointer, shape, byte strides; an integer a
ctypes value), and its direct launcher changes only the data pointers between calls. (On a GPU
every device test launches through it: JITGRAD_TEST_CUDA=gpu.)"""
import ctypes

import numpy as np

from compiler.cuda_executor import _Packed


class Pointer:
    def __init__(self, value):
        self.value = value


class Array:
    """What the launcher reads of a C-contiguous numba device array."""

    def __init__(self, shape, address, dtype=np.float32):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.size = int(np.prod(shape))
        self.strides = tuple(int(s) for s in np.empty(shape, self.dtype).strides)
        self.device_ctypes_pointer = Pointer(address)


def test_parameters_follow_numbas_layout_and_direct_changes_only_pointers():
    launched = []
    packed = _Packed(lambda stream, config, function, *params: launched.append((config, params)),
                     lambda grid, block: (grid, block), "kernel", 0,
                     [None, None, ctypes.c_int64])
    args = (Array((4, 1, 3), 0x1000), Array((12,), 0x2000, np.float64), 7)
    packed(args, (2, 1, 1), (32, 1, 1))
    config, params = launched[0]
    assert config == ((2, 1, 1), (32, 1, 1))
    assert params[:-1] == (0, 0, 12, 4, 0x1000, 4, 1, 3, 12, 12, 4,
                           0, 0, 12, 8, 0x2000, 12, 8)
    assert isinstance(params[-1], ctypes.c_int64) and params[-1].value == 7
    direct = packed.direct(args, (2, 1, 1), (32, 1, 1))
    # the bases: the same elements under another shape, in other memory
    direct([Array((4, 3), 0x5000), Array((3, 4), 0x6000, np.float64)])
    _, again = launched[1]
    assert again[:-1] == params[:4] + (0x5000,) + params[5:15] + (0x6000,) + params[16:-1]
    assert again[-1].value == 7
