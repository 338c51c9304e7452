"""Run a compiled program's steps (fusion Kernels, Finishes, Externs) on a CUDA device.

`CudaProgram` mirrors executor.Program: the same graph and the same fused steps, with kernels
rendered by codegen.numba_cuda and loaded through cache.load_module (target "cuda"), values held
as numba device arrays and freed after their last use. Every value it holds is C-contiguous
(inputs are checked; every step writes fresh contiguous arrays; reshape is then always a view).

Extern steps run on the device where simple:
- reshape: a view of the contiguous array;
- permute, expand, cat, getitem with a basic key (ints, slices, None, Ellipsis), index_backward
  with a basic key: codegen.cuda_runtime.strided_copy (plus a zero fill);
- sum, mean, prod, amax, amin, sum_to_size over any dims (and Finish steps):
  cuda_runtime.reduce_dims, blocks of lanes folding chunks of the reduction with a
  shared-memory tree, in one pass or two (per-chunk partials, then the chunks);
- matmul (batched, broadcasting batch dims): cuBLAS through CuPy when CuPy is installed (the
  arrays shared through __cuda_array_interface__, no copy), else cuda_runtime's tiled
  shared-memory kernel.
Any other extern op raises NotImplementedError naming it, when the program is built: nothing is
ever copied to the host behind the caller's back. Only small int64 metadata (shapes, strides,
batch offsets) is copied host -> device, once, when the program is built. Arrays come from
cuda_memory's caching allocator; kernels are launched through `_launch` (typed once, see there).
"""
import numpy as np

from .codegen.numba_cpu import reduce_identity
from .cuda_memory import device_array, simulated
from .executor import last_uses
from .ir import Ref
from .passes.fusion import Finish, Kernel

DEFAULT_MAX_BLOCKS = 1024
_VIEW_OPS = {"reshape"}
_COPY_OPS = {"permute", "expand", "cat", "getitem", "index_backward"}
_REDUCE_OPS = {"sum", "mean", "prod", "amax", "amin", "sum_to_size"}


def _cuda():
    from numba import cuda
    return cuda


def _c_strides(shape):
    strides, acc = [], 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= int(s)
    return tuple(reversed(strides))


def _meta(values):
    """A small int64 device array (never empty: zero-rank metadata is padded)."""
    return _cuda().to_device(np.asarray(list(values) or [0], dtype=np.int64))


def _flat(array):
    """The 1-D view of a contiguous array (0-d arrays give one element)."""
    return array.reshape(array.size)


def _launch(kernel, blocks, threads, args, plan):
    """kernel[blocks, threads](*args), through a launcher made once the first call has compiled
    the kernel (_compiled_launch): a plan's argument types never change, so numba's per-call
    typing, dispatch and argument conversion (most of a launch's host time on an H100 machine:
    W5's 20 launches took 3.6 ms of host time a step) are done once. `plan` (a dict) keeps the
    launcher; under the simulator, or where a launcher cannot be made, the plain call stays."""
    launch = plan.get("launch")
    if launch:
        try:
            launch(args, (blocks, 1, 1), (threads, 1, 1))
            plan["checked"] = True
            return
        except Exception:  # noqa: BLE001 - nothing was launched: fall back, once
            if plan.get("checked"):
                raise
            plan["launch"] = False
    kernel[blocks, threads](*args)
    if launch is None:
        plan["launch"] = _compiled_launch(kernel, args)


def _compiled_launch(kernel, args):
    try:
        import sys
        from numba.cuda.cudadrv import driver
        module = sys.modules[type(kernel).__module__]      # numba's CUDA dispatcher module
        types = tuple(module.typeof(a, module.Purpose.argument) for a in args)
        compiled = kernel.overloads[types]
        # numba-cuda launches on cuda.core streams (the default stream, as kernel[...] uses)
        stream = driver._to_core_stream(0) if hasattr(driver, "_to_core_stream") else 0
    except Exception:  # noqa: BLE001 - the simulator, or a numba without these internals
        return False
    packed = _packed_launch(module, compiled, types, stream)
    return packed or (lambda args, grid, block: compiled.launch(args, grid, block, stream, 0))


def _packed_launch(module, compiled, types, stream):
    """numba-cuda's own launch (cuda.core's `launch`) with the kernel parameters packed here as
    its _Kernel.launch packs them (an array: meminfo, parent, size, itemsize, data pointer,
    shape, byte strides; scalars as ctypes values), without its per-argument conversions of
    device arrays; None where numba is not numba-cuda or an argument is of another type."""
    import ctypes
    launch, config_type = getattr(module, "launch", None), getattr(module, "LaunchConfig", None)
    if launch is None or config_type is None or compiled.debug or compiled.extensions or \
            getattr(compiled, "cooperative", False):
        return None
    scalars = {"float64": ctypes.c_double, "float32": ctypes.c_float, "bool": bool}
    pack = []
    for t in types:
        if type(t).__name__ == "Array":
            pack.append(None)
        elif str(t) in scalars:
            pack.append(scalars[str(t)])
        elif str(t).startswith(("int", "uint")) and hasattr(ctypes, f"c_{t}"):
            pack.append(getattr(ctypes, f"c_{t}"))
        else:
            return None
    return _Packed(launch, config_type, compiled._codelibrary.get_cufunc().kernel, stream, pack)


class _Packed:
    """A packed launcher (see _packed_launch): `launcher(args, grid, block)`."""

    def __init__(self, launch, config_type, function, stream, pack):
        self.launch, self.config_type, self.function = launch, config_type, function
        self.stream, self.pack = stream, pack
        self.configs = {}

    def params(self, args):
        """The kernel parameters for `args`, and where the arrays' data pointers sit in them."""
        params, pointers = [], []
        for convert, a in zip(self.pack, args):
            if convert is None:
                params += (0, 0, a.size, a.dtype.itemsize, a.device_ctypes_pointer.value or 0)
                pointers.append(len(params) - 1)
                params += a.shape
                params += a.strides
            else:
                params.append(convert(a))
        return params, pointers

    def __call__(self, args, grid, block):
        self.raw(self.params(args)[0], grid, block)

    def raw(self, params, grid, block):
        config = self.configs.get((grid, block))
        if config is None:
            config = self.configs[(grid, block)] = self.config_type(grid=grid, block=block)
        self.launch(self.stream, config, self.function, *params)

    def direct(self, args, grid, block):
        """A launcher for later calls whose arguments differ from `args` only in the arrays'
        memory: `launcher(bases)` takes, for each array argument, a C-contiguous array holding
        the same elements (the view's base: no numba view is built), and the other arguments
        are those of `args`."""
        template, pointers = self.params(args)

        def launcher(bases):
            params = template.copy()
            for position, base in zip(pointers, bases):
                params[position] = base.device_ctypes_pointer.value or 0
            self.raw(params, grid, block)
        return launcher


_CUPY = []


def _cupy():
    """CuPy, for matmul through cuBLAS, when it is installed and sees the GPU (not under the
    simulator; JITGRAD_CUDA_MATMUL=numba keeps the tiled kernel); else None."""
    if not _CUPY:
        import os
        cupy = None
        if not simulated() and os.environ.get("JITGRAD_CUDA_MATMUL") != "numba":
            try:
                import cupy
                if cupy.cuda.runtime.getDeviceCount() < 1:
                    cupy = None
            except Exception:  # noqa: BLE001 - not installed, or no usable CUDA for it
                cupy = None
        _CUPY.append(cupy)
    return _CUPY[0]


def _basic_view(shape, key):
    """(offset, shape, strides) in elements of the view `x[key]` of a C-contiguous x.

    NumPy computes the view over a one-byte-per-element stand-in with the real element strides;
    no memory is read."""
    if any(isinstance(k, (np.ndarray, list)) for k in key):
        return None
    strides = _c_strides(shape)
    stand_in = np.lib.stride_tricks.as_strided(np.zeros(1, dtype=np.uint8), shape=shape,
                                               strides=strides)
    view = stand_in[tuple(key) + (Ellipsis,)] if Ellipsis not in key else stand_in[tuple(key)]
    offset = view.__array_interface__["data"][0] - stand_in.__array_interface__["data"][0]
    return offset, view.shape, view.strides


def _device_input(nid, array):
    """A numba device array for a program input: numba's own as they are, other CUDA Array
    Interface objects (CuPy, ...) wrapped without a copy; host arrays are refused."""
    if not getattr(array, "__cuda_ndarray__", False):
        if not hasattr(array, "__cuda_array_interface__"):
            raise TypeError(f"CudaProgram.run: input %{nid} is a {type(array).__name__}, not a "
                            "device array (copy it with numba.cuda.to_device)")
        array = _cuda().as_cuda_array(array)
    if not array.is_c_contiguous():
        raise ValueError(f"CudaProgram.run: input %{nid} is not C-contiguous")
    return array


class CudaProgram:
    """Steps computing `outputs` from `inputs` on the device; see the module docstring.

    threads: threads per block of the fused kernels (a power of two; the shared arrays' size).
    max_blocks: the most blocks a fused kernel is launched with (it grid-strides beyond), and so
    the most per-block partials a total reduction has.
    tile: the matmul tile edge (blocks of tile x tile threads; default cuda_runtime.TILE).
    """

    def __init__(self, graph, steps, inputs, outputs, threads=128,
                 max_blocks=DEFAULT_MAX_BLOCKS, tile=None, dynamic=False):
        from . import cache
        from .codegen import numba_cuda
        self.graph = graph
        self.steps = steps
        self.inputs = [r.id for r in inputs]
        self.outputs = outputs
        self.threads = threads
        self.max_blocks = max_blocks
        self.tile = tile
        # Unsupported extern ops are refused before anything is compiled or launched.
        self.extern_plans = {i: self._extern_plan(step.node) for i, step in enumerate(steps)
                             if not isinstance(step, (Kernel, Finish))}
        index = [(i, step) for i, step in enumerate(steps) if isinstance(step, Kernel)]
        self.source = None
        self.kernels = {}
        if index:
            self.source = numba_cuda.module_source(
                [numba_cuda.render(step, graph, dynamic) for _, step in index], threads)
            module = cache.load_module(self.source, target="cuda")
            self.kernels = {i: getattr(module, step.name) for i, step in index}
        self.plans = {i: self._plan(step) for i, step in index}
        blocks = {step.name: self.plans[i]["blocks"] for i, step in index}
        self.finish_plans = {i: self._finish_plan(step.node, blocks[step.kernel])
                             for i, step in enumerate(steps) if isinstance(step, Finish)}
        self.free_after = last_uses(self.steps, self.outputs)

    @classmethod
    def from_program(cls, program, **options):
        """The CUDA twin of an executor.Program (same graph, steps, inputs and outputs)."""
        from .passes.fusion import split_columns
        return cls(program.graph, split_columns(program.steps, program.graph),
                   [Ref(i) for i in program.inputs], program.outputs, **options)

    @classmethod
    def build(cls, graph, provided_ids, outputs, prefix="k", **options):
        """Fuse `graph` into steps computing `outputs` from the values `provided_ids` (in that
        order: the program's inputs) and build the CUDA program."""
        from .passes.fusion import fuse, split_columns
        steps = split_columns(fuse(graph, set(provided_ids), outputs, prefix=prefix), graph)
        return cls(graph, steps, [Ref(i) for i in provided_ids], outputs, **options)

    # -- planning ---------------------------------------------------------------------------
    def _plan(self, step):
        from .codegen import numba_cuda
        by_id = self.graph.by_id
        in_views, out_views, space = numba_cuda.kernel_views(step, self.graph)
        blocks, threads = numba_cuda.launch(step, space, self.threads, self.max_blocks)
        return dict(
            inputs=[(r.id, view) for r, view in zip(step.inputs, in_views)],
            outputs=[(r.id, tuple(by_id[r.id].shape), by_id[r.id].dtype, view)
                     for r, view in zip(step.outputs, out_views)],
            partials=[(r.id, by_id[r.id].dtype) for r in step.totals],
            sizes=tuple(int(s) for s in space), blocks=blocks, threads=threads)

    def _extern_plan(self, node):
        by_id = self.graph.by_id
        op = node.op
        shapes = [tuple(by_id[r.id].shape) for r in node.refs()]
        if op in _VIEW_OPS:
            return {}
        if op == "matmul":
            return self._matmul_plan(node, shapes)
        if op in _REDUCE_OPS:
            return self._reduce_plan(node, shapes[0])
        if op in _COPY_OPS:
            plan = self._copy_plan(node, shapes)
            if plan is not None:
                return plan
        raise NotImplementedError(
            f"the CUDA backend cannot run the extern op '{op}' on the device"
            + (f" with key {node.attr('key')!r}" if op in ("getitem", "index_backward") else ""))

    def _copy_plan(self, node, shapes):
        """A list of strided copies (src arg index, shape, src strides/base, dst strides/base),
        and whether the output is zero-filled first."""
        op, out_shape = node.op, tuple(node.shape)
        copies = []
        if op == "permute":
            dims = node.attr("dims")
            src = _c_strides(shapes[0])
            copies.append((0, out_shape, [src[d] for d in dims], 0, _c_strides(out_shape), 0))
        elif op == "expand":
            src_shape = (1,) * (len(out_shape) - len(shapes[0])) + shapes[0]
            src = _c_strides(src_shape)
            strides = [0 if s == 1 and t != 1 else st
                       for s, t, st in zip(src_shape, out_shape, src)]
            copies.append((0, out_shape, strides, 0, _c_strides(out_shape), 0))
        elif op == "cat":
            dim = node.attr("dim")
            dst = _c_strides(out_shape)
            offset = 0
            for k, shape in enumerate(shapes):
                copies.append((k, shape, _c_strides(shape), 0, dst, offset * dst[dim]))
                offset += shape[dim]
        elif op == "getitem":
            view = _basic_view(shapes[0], node.attr("key"))
            if view is None or tuple(view[1]) != out_shape:
                return None
            offset, shape, strides = view
            copies.append((0, shape, strides, offset, _c_strides(shape), 0))
        elif op == "index_backward":
            view = _basic_view(out_shape, node.attr("key"))
            if view is None or tuple(view[1]) != shapes[0]:
                return None
            offset, shape, strides = view
            copies.append((0, shape, _c_strides(shape), 0, strides, offset))
        plan = {"zero": op == "index_backward", "copies": []}
        for arg, shape, src_strides, src_base, dst_strides, dst_base in copies:
            n = int(np.prod(shape))
            plan["copies"].append(dict(
                arg=arg, n=n, rank=len(shape), shape=_meta(shape),
                src_strides=_meta(src_strides), dst_strides=_meta(dst_strides),
                src_base=int(src_base), dst_base=int(dst_base)))
        return plan

    def _reduce_plan(self, node, in_shape):
        rank = len(in_shape)
        if node.op == "sum_to_size":
            target = tuple(node.attr("shape"))
            lead = rank - len(target)
            padded = (1,) * lead + target
            dims = [d for d in range(rank) if d < lead or (padded[d] == 1 and in_shape[d] != 1)]
        else:
            dims = node.attr("dim")
            dims = list(range(rank)) if dims is None else sorted(dims)
        return self._fold_plan(node.op, in_shape, dims, node.dtype,
                               count=int(np.prod([in_shape[d] for d in dims])))

    def _fold_plan(self, op, in_shape, dims, dtype, count):
        """The reduce_dims passes folding `dims` of a C-contiguous array of `in_shape`: one, or
        (when the outputs are too few to fill the device) a first pass writing per-chunk
        partials of shape (chunks, outputs) and then the same plan over those chunks."""
        from .codegen import cuda_runtime
        stages = []
        while True:
            stage = self._fold_stage(tuple(in_shape), dims)
            stages.append(stage)
            if stage["chunks"] == 1:
                break
            in_shape, dims = (stage["chunks"], stage["n_out"]), [0]
        return dict(kernel=cuda_runtime.reduce_kernel(op, dtype), stages=stages, dtype=dtype,
                    init=reduce_identity(op, dtype), count=max(1, count))

    def _fold_stage(self, in_shape, dims):
        strides = _c_strides(in_shape)
        kept = [d for d in range(len(in_shape)) if d not in dims]
        n_out = int(np.prod([in_shape[d] for d in kept]))
        n_red = int(np.prod([in_shape[d] for d in dims]))
        threads = self.threads
        # 32 outputs per block when they are the input's innermost elements: a warp then reads
        # 32 adjacent elements; otherwise one output per block, its lanes reading along the
        # reduction
        width = 32 if n_out >= 32 and threads >= 32 and strides[kept[-1]] == 1 else 1
        lanes = threads // width
        out_blocks = -(-n_out // width)
        chunks = max(1, min(-(-self.max_blocks // out_blocks), n_red // (lanes * 4)))
        return dict(kshape=_meta(in_shape[d] for d in kept),
                    kstrides=_meta(strides[d] for d in kept), krank=len(kept),
                    rshape=_meta(in_shape[d] for d in dims),
                    rstrides=_meta(strides[d] for d in dims), rrank=len(dims),
                    n_red=n_red, n_out=n_out, width=width, chunks=chunks,
                    blocks=max(1, min(out_blocks * chunks, 1 << 16)), threads=threads)

    def _matmul_plan(self, node, shapes):
        a_shape, b_shape = shapes
        if len(a_shape) < 2 or len(b_shape) < 2:
            raise NotImplementedError("the CUDA backend's matmul takes operands of at least 2 "
                                      f"dims, got {list(a_shape)} and {list(b_shape)}")
        m, k = a_shape[-2:]
        n = b_shape[-1]
        batch = tuple(node.shape[:-2])
        n_batch = int(np.prod(batch))

        def offsets(shape, size):
            own = shape[:-2]
            index = np.arange(int(np.prod(own)), dtype=np.int64).reshape(own)
            padded = index.reshape((1,) * (len(batch) - len(own)) + own)
            return _meta(np.broadcast_to(padded, batch).ravel() * size)

        return dict(a_offsets=offsets(a_shape, m * k), b_offsets=offsets(b_shape, k * n),
                    m=int(m), k=int(k), n=int(n), n_batch=n_batch)

    # -- running ----------------------------------------------------------------------------
    def run(self, arrays):
        """Outputs (device arrays) from inputs (C-contiguous device arrays, in input order)."""
        arrays = [_device_input(nid, array) for nid, array in zip(self.inputs, arrays)]
        env = dict(zip(self.inputs, arrays))
        partials = {}
        for i, step in enumerate(self.steps):
            if isinstance(step, Kernel):
                plan = self.plans[i]
                ins = [env[nid] for nid, _ in plan["inputs"]]
                outs, parts = self._allocate(plan, env, partials)
                direct = plan.get("direct")
                if direct:
                    # the arrays themselves: the launcher knows how the kernel views them
                    direct(ins + outs + parts)
                else:
                    self._launch_kernel(i, plan, ins, outs, parts)
            elif isinstance(step, Finish):
                node = step.node
                out = device_array(node.shape, node.dtype)
                self._fold(self.finish_plans[i], partials.pop(node.id), out)
                env[node.id] = out
            else:
                env[step.node.id] = self._extern(i, step.node, env)
            for nid in self.free_after.get(i, ()):
                env.pop(nid, None)
        return [None if r is None else env[r.id] for r in self.outputs]

    @staticmethod
    def _allocate(plan, env, partials):
        """A kernel step's new outputs (recorded in env) and per-block partials."""
        outs = []
        for nid, shape, dtype, _ in plan["outputs"]:
            env[nid] = device_array(shape, dtype)
            outs.append(env[nid])
        parts = []
        for nid, dtype in plan["partials"]:
            partials[nid] = device_array(plan["blocks"], dtype)
            parts.append(partials[nid])
        return outs, parts

    def _launch_kernel(self, i, plan, ins, outs, parts):
        """Kernel step i through numba views of its arrays; once its packed launcher has run,
        the plan gets a direct launcher (_Packed.direct) that later calls use instead."""
        ins = [a.reshape(view) for a, (_, view) in zip(ins, plan["inputs"])]
        outs = [a.reshape(out[3]) for a, out in zip(outs, plan["outputs"])]
        args = (*ins, *outs, *parts, *plan["sizes"])
        _launch(self.kernels[i], plan["blocks"], plan["threads"], args, plan)
        if isinstance(plan.get("launch"), _Packed) and plan.get("checked"):
            plan["direct"] = plan["launch"].direct(args, (plan["blocks"], 1, 1),
                                                   (plan["threads"], 1, 1))

    def _finish_plan(self, node, n_partials):
        """A Finish step as a fold of the kernel's per-block partials (executor.finish_total on
        the device: sum/mean/amax/amin of the partials, mean divided by the source's size)."""
        source_shape = self.graph.by_id[node.refs()[0].id].shape
        return self._fold_plan(node.op, (n_partials,), [0], node.dtype,
                               count=int(np.prod(source_shape)))

    def _fold(self, plan, src, out):
        src = _flat(src)
        last = len(plan["stages"]) - 1
        for k, stage in enumerate(plan["stages"]):
            dst = _flat(out) if k == last else \
                device_array(stage["chunks"] * stage["n_out"], plan["dtype"])
            _launch(plan["kernel"], stage["blocks"], stage["threads"],
                    (src, dst, stage["kshape"], stage["kstrides"], stage["krank"],
                     stage["rshape"], stage["rstrides"], stage["rrank"], stage["n_red"],
                     plan["init"], plan["count"], stage["n_out"], stage["width"],
                     stage["chunks"], int(k == last)), stage)
            src = dst

    def _extern(self, i, node, env):
        from .codegen import cuda_runtime
        op = node.op
        plan = self.extern_plans[i]
        args = [env[r.id] for r in node.refs()]
        shape, dtype = tuple(node.shape), node.dtype
        if op == "reshape":
            return args[0].reshape(shape)
        out = device_array(shape, dtype)
        if out.size == 0:
            return out
        if op in _REDUCE_OPS:
            self._fold(plan, args[0], out)
        elif op == "matmul" and _cupy() is not None:
            cupy = _cupy()     # cuBLAS; on the legacy default stream, as every launch here
            cupy.matmul(cupy.asarray(args[0]), cupy.asarray(args[1]), out=cupy.asarray(out))
        elif op == "matmul":
            tile = self.tile or cuda_runtime.TILE
            kernel = cuda_runtime.matmul_kernel(dtype, tile)
            limit = cuda_runtime.MAX_GRID_YZ
            grid = (max(1, -(-plan["n"] // tile)), max(1, min(-(-plan["m"] // tile), limit)),
                    max(1, min(plan["n_batch"], limit)))
            kernel[grid, (tile, tile)](_flat(args[0]), _flat(args[1]), _flat(out),
                                       plan["a_offsets"], plan["b_offsets"], plan["m"],
                                       plan["k"], plan["n"], plan["n_batch"])
        else:
            flat = _flat(out)
            if plan["zero"]:
                blocks, threads = cuda_runtime.launch_1d(out.size, self.threads, self.max_blocks)
                _launch(cuda_runtime.fill, blocks, threads,
                        (flat, np.dtype(dtype).type(0), out.size), plan.setdefault("fill", {}))
            for copy in plan["copies"]:
                if copy["n"] == 0:
                    continue
                blocks, threads = cuda_runtime.launch_1d(copy["n"], self.threads,
                                                            self.max_blocks)
                _launch(cuda_runtime.strided_copy, blocks, threads,
                        (_flat(args[copy["arg"]]), flat, copy["shape"], copy["src_strides"],
                         copy["dst_strides"], copy["src_base"], copy["dst_base"],
                         copy["rank"], copy["n"]), copy)
        return out
