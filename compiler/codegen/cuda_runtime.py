"""Device-side support for the CUDA backend: the scalar helpers as CUDA device functions, and the
fixed kernels that extern and Finish steps launch (strided copies, fills, reductions by dims,
a tiled shared-memory matmul).

Importing this module imports `numba.cuda`; only the CUDA backend does (never `jitgrad`, never
the CPU path). The scalar helpers are defined once, in `codegen.scalar`, as `numba.njit`
functions; the CUDA target cannot call CPU dispatchers, so each helper's Python function
(`.py_func`) is compiled again here with `cuda.jit(device=True)`. The math names (`exp`, `log`,
...) are the `math` functions themselves, which the CUDA target lowers to libdevice.

All kernels here take flat (1-D, contiguous) arrays plus shape/stride metadata in elements, and
loop grid-stride, so any launch size is correct.
"""
import math
import types

import numpy as np
from numba import cuda

from . import scalar

# -- scalar helpers (kernel templates call these names) --------------------------------------
# The same names codegen.scalar gives the CPU kernels: its numba.njit helpers (or plain functions
# under NUMBA_DISABLE_JIT) compiled again as device functions; `np` and the math functions as
# they are. A helper added to scalar.py is therefore on the device too.
DEVICE_HELPERS = []
for _name in scalar.__all__:
    _value = getattr(scalar, _name)
    _function = getattr(_value, "py_func", _value)
    if isinstance(_function, types.FunctionType):
        _value = cuda.jit(device=True)(_function)
        DEVICE_HELPERS.append(_name)
    globals()[_name] = _value
del _name, _value, _function

__all__ = ["math", *scalar.__all__]  # noqa: PLE0604 - the names scalar exports

# Matmul tile edge: a block of TILE x TILE threads computes a TILE x TILE tile of the product.
TILE = 16
# Threads per block of the generic kernels below (copies, fills, reductions by dims).
GENERIC_THREADS = 128
MAX_GRID_YZ = 65535   # CUDA's limit on gridDim.y and gridDim.z


def launch_1d(n, threads=GENERIC_THREADS, max_blocks=1024):
    """(blocks, threads) for a grid-stride loop over n items (at least one block)."""
    return max(1, min(max_blocks, -(-n // threads))), threads


# -- copies ---------------------------------------------------------------------------------
@cuda.jit
def strided_copy(src, dst, shape, src_strides, dst_strides, src_base, dst_base, rank, n):
    """dst[dst_base + sum(k_d * dst_strides[d])] = src[src_base + sum(k_d * src_strides[d])]
    for every multi-index k of `shape` (C order): permute, expand, cat, basic indexing."""
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        rem = i
        s_off = src_base
        d_off = dst_base
        for d in range(rank - 1, -1, -1):
            k = rem % shape[d]
            rem = rem // shape[d]
            s_off += k * src_strides[d]
            d_off += k * dst_strides[d]
        dst[d_off] = src[s_off]


@cuda.jit
def fill(dst, value, n):
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        dst[i] = value


# -- reductions over chosen dims (extern reductions and Finish steps) -----------------------
def _add(a, b):
    return a + b


def _mul(a, b):
    return a * b


def _same(acc, count):
    return acc


def _divide(acc, count):
    return acc / count


REDUCE_THREADS = 256      # threads per block of reduce_dims (a power of two)
_COMBINE = {"sum": _add, "sum_to_size": _add, "mean": _add, "prod": _mul,
            "amax": getattr(scalar.fmax, "py_func", scalar.fmax),
            "amin": getattr(scalar.fmin, "py_func", scalar.fmin)}
_REDUCE = {}


def reduce_kernel(op, dtype):
    """reduce_dims for one reduction op and output dtype (the block's shared partials have the
    output's type, a compile-time constant), built once."""
    import numba
    key = (op, np.dtype(dtype))
    kernel = _REDUCE.get(key)
    if kernel is None:
        kernel = _REDUCE[key] = _make_reduce(_COMBINE[op], _divide if op == "mean" else _same,
                                             numba.from_dtype(key[1]))
    return kernel


def _make_reduce(combine, finalize, acc_type):
    combine = cuda.jit(device=True)(combine)
    finalize = cuda.jit(device=True)(finalize)
    threads = REDUCE_THREADS

    @cuda.jit
    def reduce_dims(src, dst, kshape, kstrides, krank, rshape, rstrides, rrank, n_red, init,
                    count, n_out, width, chunks, final):
        """dst[c * n_out + i] = the fold of src over the reduced dims for output element i,
        over reduction indices r = c * lanes + lane (mod chunks * lanes), then finalize(.,
        count) when `final` (else the raw partial, for a second pass over the chunks).

        A block of `lanes * width` threads handles `width` consecutive outputs (1, or 32 when
        the outputs are the input's innermost dim, so a warp reads 32 adjacent elements) and
        one chunk: each lane folds a strided share of the reduction (with width 1, adjacent
        threads read adjacent reduced elements), and a shared-memory tree combines the lanes.
        The kept dims (kshape/kstrides) are the output's dims in order."""
        shared = cuda.shared.array(threads, acc_type)
        tid = cuda.threadIdx.x
        lanes = cuda.blockDim.x // width
        column = tid % width
        lane = tid // width
        out_blocks = (n_out + width - 1) // width
        for b in range(cuda.blockIdx.x, out_blocks * chunks, cuda.gridDim.x):
            c = b // out_blocks
            i = (b % out_blocks) * width + column
            acc = init
            if i < n_out:
                rem = i
                base = 0
                for d in range(krank - 1, -1, -1):
                    base += (rem % kshape[d]) * kstrides[d]
                    rem = rem // kshape[d]
                for r in range(c * lanes + lane, n_red, chunks * lanes):
                    rem = r
                    off = base
                    for d in range(rrank - 1, -1, -1):
                        off += (rem % rshape[d]) * rstrides[d]
                        rem = rem // rshape[d]
                    acc = combine(acc, src[off])
            shared[tid] = acc
            cuda.syncthreads()
            half = lanes // 2
            while half > 0:
                if lane < half:
                    shared[tid] = combine(shared[tid], shared[tid + half * width])
                cuda.syncthreads()
                half = half // 2
            if lane == 0 and i < n_out:
                if final:
                    dst[c * n_out + i] = finalize(shared[tid], count)
                else:
                    dst[c * n_out + i] = shared[tid]
            cuda.syncthreads()

    return reduce_dims


# -- matmul ---------------------------------------------------------------------------------
_MATMUL = {}


def matmul_kernel(dtype, tile=TILE):
    """The tiled shared-memory matmul for one dtype and tile edge (the shared tiles' shape and
    dtype are compile-time constants, so each pair gets its own kernel, built once)."""
    key = (np.dtype(dtype), int(tile))
    kernel = _MATMUL.get(key)
    if kernel is None:
        kernel = _MATMUL[key] = _make_matmul(key[0].type, key[1])
    return kernel


def _make_matmul(scalar_type, tile):
    @cuda.jit
    def matmul(a, b, c, a_offsets, b_offsets, m, k, n, n_batch):
        """c[z] = a[z] @ b[z] for each batch z: a, b, c flat; batch z's (m, k) matrix of a
        starts at a_offsets[z] (broadcast batch dims repeat an offset), b's (k, n) at
        b_offsets[z], c's (m, n) at z * m * n. Blocks of (tile, tile) threads; block (x, y, z)
        computes column tile x and row tiles y, y + gridDim.y, ... of batches z, z + gridDim.z,
        ... (grid y and z are capped at 65535); each k-step stages one tile of a and of b in
        shared memory."""
        tile_a = cuda.shared.array((tile, tile), scalar_type)
        tile_b = cuda.shared.array((tile, tile), scalar_type)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        col = cuda.blockIdx.x * tile + tx
        zero = scalar_type(0)
        for z in range(cuda.blockIdx.z, n_batch, cuda.gridDim.z):
            a0 = a_offsets[z]
            b0 = b_offsets[z]
            for row_tile in range(cuda.blockIdx.y, (m + tile - 1) // tile, cuda.gridDim.y):
                row = row_tile * tile + ty
                acc = zero
                for t in range((k + tile - 1) // tile):
                    ka = t * tile + tx
                    kb = t * tile + ty
                    tile_a[ty, tx] = a[a0 + row * k + ka] if row < m and ka < k else zero
                    tile_b[ty, tx] = b[b0 + kb * n + col] if kb < k and col < n else zero
                    cuda.syncthreads()
                    for kk in range(tile):
                        acc += tile_a[ty, kk] * tile_b[kk, tx]
                    cuda.syncthreads()
                if row < m and col < n:
                    c[z * m * n + row * n + col] = acc

    return matmul
