"""The device backend of jitgrad's eager CUDA tensors: device arrays, views, transfers, and every
other op run as a one-op CUDA program.

jitgrad's dispatcher sends here any op whose tensor arguments live on the device (through
`jitgrad.cuda.backend()`, which loads this module on first use: `import jitgrad` never does).

- Memory. A CUDA tensor's `_data` is a numba device array (`FakeCUDAArray` under the
  simulator). Views (reshape, permute, expand, basic getitem) are device arrays over the same
  memory with their own offset and strides, so in-place ops through views, shared version
  counters and CopySlices behave as on the CPU. Their layout is found by applying the NumPy
  view op to a host stand-in with the array's shape and strides (no memory read or copied).
  Negative strides (a slice with a negative step) are refused.
- Ops. Any other op becomes a graph of one node (plus casts to the dtype the dispatcher's dtype
  rule computes in), fused and run by
  `cuda_executor.CudaProgram`. Programs are cached per (op, attributes, argument shapes and
  dtypes, Python scalar types). Python scalars are program inputs (0-d device arrays of the
  dtype they combine with, equal to NumPy's promotion of a Python scalar), so a new value
  (a learning rate, a step count) reuses the program. Output shape and dtype come from the
  op's NumPy forward on host stand-ins, once per cache entry: elementwise ops on one-element
  stand-ins, the others on zero-stride broadcasts of the real shapes (which also raises the
  CPU's errors with the CPU's wording).
- Inputs that are not C-contiguous (views) are copied to contiguous arrays on the device first;
  in-place results are written back through the target's strides. Nothing is copied to the
  host except by a transfer the caller asked for (`.cpu()`, `item()`, `repr`, ...).
- Ops the device cannot run yet raise NotImplementedError naming the op.

OPTIONS are the launch options of every program built here and of compiled CUDA functions.
"""
import warnings

import numpy as np

from jitgrad import dispatch
from jitgrad.ops import REGISTRY
from jitgrad.tensor import Tensor

from .cuda_executor import CudaProgram, _c_strides, _meta
from .cuda_executor import _launch as launch
from .cuda_memory import device_array, simulated
from .ir import Graph, Node, Ref

OPTIONS = {"threads": 128, "max_blocks": 1024, "tile": None}


def _fill_the_device():
    """max_blocks: as many blocks of OPTIONS["threads"] as the GPU holds at once (132 x 16 on an
    H100), so a grid-stride kernel keeps every multiprocessor full; 1024 under the simulator."""
    if simulated():
        return
    try:
        device = _cuda().get_current_device()
        per_sm = getattr(device, "MAX_THREADS_PER_MULTIPROCESSOR", 2048) // OPTIONS["threads"]
        OPTIONS["max_blocks"] = max(1, int(device.MULTIPROCESSOR_COUNT * per_sm))
    except Exception:  # noqa: BLE001 - keep the default
        pass

# Ops the device path cannot run yet, and why.
UNSUPPORTED = {
    "max_dim": "max(dim) / min(dim) return indices, which no device kernel computes yet",
    "min_dim": "max(dim) / min(dim) return indices, which no device kernel computes yet",
    "remainder": "no device kernel for it yet",
    "floor_divide": "no device kernel for it yet",
}

_PROGRAMS = {}
_PLANS = {}        # the runtime kernels' launchers (cuda_executor._launch), by kernel and dtypes
_SCALARS = {}
_METADATA = {}
_CACHE_LIMIT = 4096


def _cuda():
    from numba import cuda
    return cuda


def not_supported(name, why):
    return NotImplementedError(f"'{name}' is not supported on CUDA yet: {why}")


# -- device arrays ---------------------------------------------------------------------------
def is_device(array):
    return type(array) is not np.ndarray and getattr(array, "__cuda_ndarray__", False)


def empty(shape, dtype):
    return device_array(tuple(shape), dtype)


def full(shape, dtype, value):
    """A new device array of `value`."""
    from .codegen import cuda_runtime
    out = empty(shape, dtype)
    if out.size:
        blocks, threads = _launch(out.size)
        launch(cuda_runtime.fill, blocks, threads,
               (out.reshape(out.size), out.dtype.type(value), out.size),
               _PLANS.setdefault(("fill", out.dtype), {}))
    return out


def to_device(array):
    """A host array's copy on the device."""
    array = np.asarray(array)
    if not array.flags.c_contiguous:
        array = np.array(array, order="C")
    return _cuda().to_device(array)


def to_host(array):
    """A device array's copy on the host (C-contiguous)."""
    return contiguous(array).copy_to_host()


def transfer(array, device):
    """The forward of the to_device op: `array` on `device` ("cpu" or "cuda:0")."""
    if device == "cpu":
        return to_host(array) if is_device(array) else array
    return array if is_device(array) else to_device(array)


def from_cuda_array(obj):
    """A device array sharing the memory of a numba device array or of any object with
    `__cuda_array_interface__` (CuPy, a torch CUDA tensor, ...)."""
    array = obj if getattr(obj, "__cuda_ndarray__", False) else _cuda().as_cuda_array(obj)
    if any(s < 0 for s in array.strides):
        raise NotImplementedError("a CUDA array with negative strides is not supported on "
                                  "CUDA yet")
    return array


def _element_strides(array):
    item = array.dtype.itemsize
    return tuple(int(s) // item for s in array.strides)


def _view(array, offset, shape, strides):
    """A device array over `array`'s memory whose element 0 is `array`'s element at `offset`
    (elements from its element 0), with element `strides` (non-negative)."""
    item = array.dtype.itemsize
    byte_strides = tuple(int(s) * item for s in strides)
    shape = tuple(int(s) for s in shape)
    if simulated():
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
        as_strided = np.lib.stride_tricks.as_strided
        start = as_strided(array._ary, shape=(offset + 1,), strides=(item,))[offset:]
        return FakeCUDAArray(as_strided(start, shape=shape, strides=byte_strides))
    from numba.cuda.cudadrv.devicearray import DeviceNDArray
    gpu_data = array.gpu_data.view(offset * item) if offset else array.gpu_data
    return DeviceNDArray(shape, byte_strides, array.dtype, gpu_data=gpu_data)


def _flat(array):
    """A 1-D view starting at `array`'s element 0 and covering all its elements, and the
    element strides that address them in it."""
    if array.is_c_contiguous():
        return array.reshape(array.size), _c_strides(array.shape)
    strides = _element_strides(array)
    extent = 1 + sum((s - 1) * st for s, st in zip(array.shape, strides))
    return _view(array, 0, (extent,), (1,)), strides


def _metadata(values):
    """Small int64 device arrays of shapes and strides, cached (one host-to-device copy)."""
    key = tuple(int(v) for v in values)
    meta = _METADATA.get(key)
    if meta is None:
        if len(_METADATA) >= _CACHE_LIMIT:
            _METADATA.clear()
        meta = _METADATA[key] = _meta(key)
    return meta


def _launch(n):
    from .codegen import cuda_runtime
    return cuda_runtime.launch_1d(n, OPTIONS["threads"], OPTIONS["max_blocks"])


def write(dst, src):
    """Copy `src` into `dst`'s memory (same shape and dtype; any non-negative strides)."""
    from .codegen import cuda_runtime
    n = int(dst.size)
    if n == 0:
        return
    src_flat, src_strides = _flat(src)
    dst_flat, dst_strides = _flat(dst)
    blocks, threads = _launch(n)
    launch(cuda_runtime.strided_copy, blocks, threads,
           (src_flat, dst_flat, _metadata(dst.shape), _metadata(src_strides),
            _metadata(dst_strides), 0, 0, len(dst.shape), n),
           _PLANS.setdefault(("copy", src.dtype, dst.dtype), {}))


def copy(array):
    """A new C-contiguous device array with `array`'s values."""
    out = empty(array.shape, array.dtype)
    write(out, array)
    return out


def contiguous(array):
    return array if array.is_c_contiguous() else copy(array)


def _span(array):
    """The device addresses [start, end) an array's elements lie in (non-negative strides)."""
    if simulated():
        start = array._ary.__array_interface__["data"][0]
    else:
        start = array.__cuda_array_interface__["data"][0]
    last = sum((s - 1) * st for s, st in zip(array.shape, array.strides))
    return start, start + last + array.dtype.itemsize


def may_overlap(a, b):
    if a.size == 0 or b.size == 0:
        return False
    (a0, a1), (b0, b1) = _span(a), _span(b)
    return a0 < b1 and b0 < a1


def overlapping(array):
    """Whether more than one element of `array` refers to one memory location (an expand)."""
    return any(st == 0 and s > 1 for s, st in zip(array.shape, array.strides))


# -- views -----------------------------------------------------------------------------------
def require_basic(key):
    for k in key:
        if isinstance(k, (bool, np.bool_)) or not (
                k is None or k is Ellipsis or isinstance(k, (slice, int, np.integer))):
            raise not_supported("getitem", "advanced indexing (tensors, lists, masks) of a "
                                "CUDA tensor")


def view(spec, array, attrs):
    """(result, whether it is a view of `array`) for reshape, permute, expand and basic
    getitem. The NumPy op runs on a stand-in with `array`'s shape and strides over a
    one-element buffer: it raises the CPU's errors and gives the view's layout."""
    if spec.name == "getitem":
        require_basic(attrs["key"])
    as_strided = np.lib.stride_tricks.as_strided
    stand_in = as_strided(np.zeros(1, array.dtype), shape=array.shape, strides=array.strides)
    if spec.name == "reshape":
        try:
            out = np.reshape(stand_in, attrs["shape"], copy=False)
        except ValueError:   # not expressible as a view: a copy, as NumPy's reshape makes
            return copy(array).reshape(tuple(attrs["shape"])), False
    else:
        out = spec.forward(stand_in, **attrs)
    if out.size == 0:
        return empty(out.shape, out.dtype), True
    item = array.dtype.itemsize
    offset = (out.__array_interface__["data"][0] -
              stand_in.__array_interface__["data"][0]) // item
    strides = _element_strides(out)
    if offset < 0 or any(s < 0 for s in strides):
        raise not_supported(spec.name, "a view with a negative step")
    return _view(array, offset, out.shape, strides), True


# -- ops as one-op programs ------------------------------------------------------------------
class _Entry:
    __slots__ = ("program", "feeds")

    def __init__(self, program, feeds):
        self.program = program
        self.feeds = feeds          # (argument index, None for a tensor / a scalar's dtype)


def _is_scalar(x):
    return isinstance(x, (bool, int, float, np.bool_, np.integer, np.floating))


def _signature(x):
    if is_device(x):
        return (x.shape, x.dtype.str)
    if _is_scalar(x):
        return type(x).__name__
    return ("value", repr(x))


def _attrs_key(attrs):
    return repr(sorted(attrs.items())) if attrs else ""


def run(spec, args, attrs=None):
    """The device array `spec(*args, **attrs)` computes (args: device Tensors and scalars)."""
    name = spec.name
    if name in UNSUPPORTED:
        raise not_supported(name, UNSUPPORTED[name])
    if spec.n_outputs != 1:
        raise not_supported(name, "ops with several outputs have no device kernels yet")
    if name == "index_put":   # out of place: a copy with the key's region overwritten
        out = copy(args[0]._data)
        assign(out, args[1], attrs["key"])
        return out
    arrays = [a._data if isinstance(a, Tensor) else a for a in args]
    key = (name, _attrs_key(attrs), tuple(_signature(x) for x in arrays))
    entry = _PROGRAMS.get(key)
    if entry is None:
        if len(_PROGRAMS) >= _CACHE_LIMIT:
            _PROGRAMS.clear()
        entry = _PROGRAMS[key] = _build(spec, arrays, attrs or {})
    inputs = [contiguous(arrays[i]) if dtype is None else _scalar(arrays[i], dtype)
              for i, dtype in entry.feeds]
    return entry.program.run(inputs)[0]


def _scalar(value, dtype):
    key = (dtype.str, type(value).__name__, repr(value))
    array = _SCALARS.get(key)
    if array is None:
        if len(_SCALARS) >= _CACHE_LIMIT:
            _SCALARS.clear()
        array = _SCALARS[key] = to_device(np.asarray(value, dtype=dtype))
    return array


def _meta_run(spec, arrays, attrs, tensors):
    """The dtype rule's input dtypes and the output's shape and dtype, from the NumPy forward
    on host stand-ins (see the module docstring)."""
    full_size = [np.broadcast_to(np.zeros((), x.dtype), x.shape) if i in tensors else x
                 for i, x in enumerate(arrays)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.kind == "elementwise":
            small = [np.zeros((1,) * x.ndim, x.dtype) if i in tensors else x
                     for i, x in enumerate(arrays)]
            prepared = dispatch._prepare(spec, small)
            try:
                shape = np.broadcast_shapes(*[arrays[i].shape for i in tensors])
            except ValueError as error:
                raise dispatch._translate_value_error(spec, full_size, error) from None
            dtype = np.asarray(spec.forward(*prepared, **attrs)).dtype
        else:
            prepared = dispatch._prepare(spec, full_size)
            try:
                out = np.asarray(spec.forward(*prepared, **attrs))
            except ValueError as error:
                raise dispatch._translate_value_error(spec, prepared, error) from None
            shape, dtype = out.shape, out.dtype
    return prepared, tuple(shape), dtype


def _build(spec, arrays, attrs):
    graph, feeds = op_graph(spec, arrays, attrs)
    inputs = [r.id for r in graph.inputs]
    try:
        program = CudaProgram.build(graph, inputs, graph.outputs, prefix="e", **OPTIONS)
    except NotImplementedError as error:
        raise not_supported(spec.name, str(error)) from None
    return _Entry(program, feeds)


def op_graph(spec, arrays, attrs):
    """The graph computing `spec(*arrays, **attrs)` (device arrays, or anything with their
    shape, dtype and `__cuda_ndarray__`, and scalars), and its feeds: per graph input, the
    argument index and None (a tensor) or the dtype a Python scalar is passed in."""
    tensors = {i for i, x in enumerate(arrays) if is_device(x)}
    prepared, shape, dtype = _meta_run(spec, arrays, attrs, tensors)
    scalars = [i for i, x in enumerate(arrays) if i not in tensors and _is_scalar(x)]
    scalar_dtype = None
    if scalars:
        # The dtype a Python scalar meets: the tensors' (already promoted) dtype.
        operands = [prepared[i].dtype for i in sorted(tensors)
                    if not (spec.dtype_rule == "where" and i == 0)]
        scalar_dtype = np.result_type(*operands) if operands else dtype
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check = [np.zeros((), scalar_dtype) if i in scalars else
                     np.zeros((1,) * p.ndim, p.dtype) if i in tensors else p
                     for i, p in enumerate(prepared)]
            if np.asarray(spec.forward(*check, **attrs)).dtype != dtype:
                raise not_supported(spec.name, "this mix of a Python scalar and tensor dtypes")
    nodes = []

    def add(op, args, node_attrs, node_shape, node_dtype):
        nodes.append(Node(id=len(nodes), op=op, args=tuple(args),
                          attrs=tuple(sorted(node_attrs.items())), shape=tuple(node_shape),
                          dtype=np.dtype(node_dtype)))
        return Ref(len(nodes) - 1)

    feeds, refs = [], []
    for i, x in enumerate(arrays):
        if i in tensors:
            ref = add("input", (), {"name": f"arg{i}"}, x.shape, x.dtype)
            feeds.append((i, None))
            if prepared[i].dtype != x.dtype:
                ref = add("to_dtype", (ref,), {"dtype": prepared[i].dtype}, x.shape,
                          prepared[i].dtype)
        elif i in scalars:
            ref = add("input", (), {"name": f"arg{i}"}, (), scalar_dtype)
            feeds.append((i, np.dtype(scalar_dtype)))
        else:
            ref = x
        refs.append(ref)
    out = add(spec.name, refs, attrs, shape, dtype)
    inputs = [n.id for n in nodes if n.op == "input"]
    return Graph(nodes=tuple(nodes), inputs=tuple(Ref(i) for i in inputs), outputs=(out,)), feeds


# -- in-place --------------------------------------------------------------------------------
def assign(array, value, key):
    """array[key] = value (a device Tensor of array's dtype, or a Python scalar) on the
    device: NumPy's broadcasting, leading unit dims of the value dropped as torch does."""
    require_basic(key)
    target, _ = view(REGISTRY["getitem"], array, {"key": key})
    if isinstance(value, Tensor):
        source = value._data
        if may_overlap(source, target):   # x[1:] = x[:-1]: read before anything is written
            source = copy(source)
        while len(source.shape) > len(target.shape) and source.shape[0] == 1:
            source = contiguous(source).reshape(source.shape[1:])
    else:
        source = _scalar(value, array.dtype)
    try:
        np.broadcast_shapes(source.shape, target.shape)
        if len(source.shape) > len(target.shape):
            raise ValueError
    except ValueError:
        raise ValueError(f"could not broadcast input array from shape {tuple(source.shape)} "
                         f"into shape {tuple(target.shape)}") from None
    source, _ = view(REGISTRY["expand"], source, {"shape": tuple(target.shape)})
    write(target, source)


def run_inplace(spec, target, args, attrs):
    """Compute `spec(*args)` (args[0] is `target`) and write it into target's memory."""
    data = target._data
    if spec.name == "index_put":
        assign(data, args[1], attrs["key"])
        return
    out = run(spec, args, attrs)
    dispatch.check_inplace_result(out, data, not overlapping(data))
    if out.dtype != data.dtype:
        out = run(REGISTRY["to_dtype"], (Tensor._make(out),), {"dtype": data.dtype})
    write(data, out)


_fill_the_device()
