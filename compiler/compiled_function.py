"""The compiled function: guards over the input signature, a bounded set of compiled variants,
eager fallback on graph breaks, and the compiled autograd node that runs the fused backward."""
import os
import warnings

import numpy as np

from jitgrad import errors, tracing
from jitgrad.autograd.grad_fn import Node, gradient_edge, hand_over, raise_modified
from jitgrad.autograd.grad_mode import ENABLED
from jitgrad.tensor import Tensor

from . import passes
from .capture import GraphBreak, capture, flatten, rebuild
from .codegen import numba_cpu
from . import cache
from .cache import load_module
from .executor import Program
from .passes.fusion import Kernel

MAX_VARIANTS = 8


def _cuda():
    from . import cuda_eager
    return cuda_eager


def _signature(args, kwargs, inputs):
    tensors = tuple((t._data.shape, t._data.dtype.str, t._requires_grad,
                     type(t._data) is np.ndarray) for t in inputs)
    others = repr(_strip_tensors((args, kwargs)))
    return (tensors, others, ENABLED.get())


def _strip_tensors(obj):
    if isinstance(obj, Tensor):
        return "T"
    if isinstance(obj, (tuple, list)):
        return type(obj).__name__, tuple(_strip_tensors(o) for o in obj)
    if isinstance(obj, dict):
        return tuple((k, _strip_tensors(v)) for k, v in obj.items())
    return obj


def _describe_change(old, new):
    (old_t, _, old_g), (new_t, _, new_g) = old, new
    if old_g != new_g:
        return f"grad mode changed ({old_g} -> {new_g})"
    if len(old_t) != len(new_t):
        return f"number of tensor inputs changed ({len(old_t)} -> {len(new_t)})"
    for i, (a, b) in enumerate(zip(old_t, new_t)):
        if a[0] != b[0]:
            return f"input {i} shape changed {list(a[0])} -> {list(b[0])}"
        if a[1] != b[1]:
            return f"input {i} dtype changed {np.dtype(a[1]).name} -> {np.dtype(b[1]).name}"
        if a[2] != b[2]:
            return f"input {i} requires_grad changed {a[2]} -> {b[2]}"
        if a[3] != b[3]:
            where = {True: "cpu", False: "cuda:0"}
            return f"input {i} device changed {where[a[3]]} -> {where[b[3]]}"
    return "non-tensor arguments changed"


def _alias(tensor, kind):
    """An output that is one of the call's tensors, returned as eager mode would: the tensor
    itself, its detach() (same version counter, no gradient) or its .data."""
    if kind == "self":
        return tensor
    return tensor.detach() if kind == "detach" else tensor.data


class Variant:
    """One compiled specialisation: forward and backward programs plus runtime metadata."""

    def __init__(self, cap, signature, dynamic=False, backend="cpu"):
        self.signature = signature
        self.dynamic = dynamic
        self.backend = backend       # "cpu": executor.Program; "cuda": cuda_executor.CudaProgram
        self.kernel_sources = []     # generated module sources, for dumps
        self.backward_failed = None  # why the backward program could not run, if it could not
        self.events = []             # the owning CompiledFunction's event log
        self.capture = cap
        joint = cap.graph
        for _, run_pass in passes.PIPELINE:
            joint = run_pass(joint)
        self.joint = joint
        self.forward_graph, self.backward_graph, self.saved = passes.partition(
            joint, cap.n_forward_outputs)
        self.n_outputs = cap.n_forward_outputs
        self.diff_outputs = joint.meta["diff_outputs"]
        self.grad_inputs = cap.grad_inputs
        self.lifted = cap.lifted
        names = {n.id: n.attr("name") for n in joint.nodes if n.op == "input"}
        forward_inputs = [r.id for r in joint.inputs
                          if joint.by_id[r.id].role == "forward"]
        # Forward program inputs: the call's tensors, then tensors lifted from closures.
        self.arg_ids = forward_inputs
        self.forward = self._compile(self.forward_graph, forward_inputs, "fwd")
        # Where each backward program input comes from: a saved value, the gradient of a
        # differentiable output, or a tensor lifted while recording the backward.
        lifted_index = {}
        for n in joint.nodes:
            if n.op == "input" and names[n.id].startswith("lifted"):
                lifted_index[n.id] = int(names[n.id][len("lifted"):])
        provided = list(self.saved)
        self.backward_sources = [("saved", k) for k in range(len(self.saved))]
        for r in self.backward_graph.inputs:
            if r.id in self.saved:
                continue
            name = names[r.id]
            provided.append(r.id)
            if name.startswith("grad_out"):
                self.backward_sources.append(("grad", int(name[len("grad_out"):])))
            else:
                self.backward_sources.append(("lifted", lifted_index[r.id]))
        # Outputs that are the call's own tensors (or lifted ones) are returned as themselves.
        self.output_is_input = [forward_inputs.index(r.id) if r is not None and
                                r.id in forward_inputs else None
                                for r in joint.outputs[:cap.n_forward_outputs]]
        # Saved values that are the call's own tensors (or lifted ones): version-stamped.
        self.saved_args = [forward_inputs.index(i) for i in self.saved if i in forward_inputs]
        self.backward = self._compile(self.backward_graph, provided, "bwd") \
            if self.backward_graph.outputs else None

    def _compile(self, graph, provided_ids, prefix):
        from .ir import Ref
        if self.backend == "cuda":
            from .cuda_eager import OPTIONS
            from .cuda_executor import CudaProgram
            program = CudaProgram.build(graph, provided_ids, graph.outputs, prefix=prefix,
                                        dynamic=self.dynamic, **OPTIONS)
            if program.source:
                self.kernel_sources.append(program.source)
            return program
        provided = set(provided_ids)
        steps = passes.fuse(graph, provided, graph.outputs, prefix=prefix)
        rendered = []
        index = []
        for i, step in enumerate(steps):
            if isinstance(step, Kernel):
                rendered.append(numba_cpu.render(step, graph, self.dynamic))
                index.append((i, step.name))
        kernels = {}
        if rendered:
            source = numba_cpu.module_source(rendered)
            self.kernel_sources.append(source)
            module = load_module(source)
            kernels = {i: getattr(module, name) for i, name in index}
        return Program(graph, steps, [Ref(i) for i in provided_ids], graph.outputs, kernels)


def _memory(array):
    """What identifies an array's memory: a NumPy array's base (itself when it owns it), a
    device array's numba pointer (its views share it)."""
    if type(array) is np.ndarray:
        return id(array if array.base is None else array.base)
    return id(getattr(array, "gpu_data", array))


def _hand_over(results, inputs):
    """Tell the engine which gradients of a compiled backward no one else holds: arrays that own
    their memory (not views, not the program's inputs, not another result) may become .grad
    without a copy (grad_fn.hand_over)."""
    keys = [None if r is None else _memory(r) for r in results]
    taken = {_memory(a) for a in inputs}
    for r, key in zip(results, keys):
        if key is None or key in taken or keys.count(key) > 1:
            continue
        owns = r.base is None if type(r) is np.ndarray else \
            getattr(r, "gpu_data", None) is not None
        if owns:
            hand_over(r)


class CompiledFunctionBackward(Node):
    """The compiled call as one node of the eager graph: runs the fused backward program."""

    def __init__(self, variant, saved_arrays, inputs, targets, rerun):
        Node.__init__(self)
        self.input_versions = [t._vc[0] for t in inputs]
        self.targets = targets      # the tensors next_functions lead to, in that order
        self.rerun = rerun          # calls the user's function again on this call's arguments
        self.variant = variant
        self.saved_arrays = saved_arrays
        # Inputs the backward reads are version-stamped, as eager saved tensors are.
        every_input = list(inputs) + list(variant.lifted)
        self.saved_inputs = [(every_input[i], every_input[i]._vc[0])
                             for i in variant.saved_args]
        self.inputs = inputs
        self.freed = False
        self.n_outputs = len(variant.diff_outputs)

    def _check_versions(self, pairs):
        for tensor, version in pairs:
            if tensor._vc[0] != version:
                raise_modified(tensor._data, tensor._vc[0], version, tensor._grad_fn,
                               tensor._output_nr)

    def apply(self, grad_outputs, F):
        from jitgrad.ops.spec import NUMPY_OPS
        if self.freed:
            raise RuntimeError(errors.BACKWARD_TWICE)
        self._check_versions(self.saved_inputs)
        variant = self.variant
        graph = variant.capture.graph
        cuda = variant.backend == "cuda"
        grads = []
        for g, k in zip(grad_outputs, variant.diff_outputs):
            if g is None:   # an output whose gradient never arrived: zeros of its shape
                node = graph.by_id[graph.outputs[k].id]
                g = np.zeros(node.shape, dtype=node.dtype) if not cuda else \
                    Tensor._make(_cuda().full(node.shape, node.dtype, 0))
            grads.append(g)
        # The compiled backward runs unless a graph of the backward is wanted: create_graph
        # (grad mode is on while the engine runs) or a tracer recording it. A graph with CUDA
        # nodes has the engine pass Tensors (as_tensor).
        as_tensor = F is not NUMPY_OPS
        if not as_tensor or (not ENABLED.get() and tracing.CURRENT.get() is None):
            grads = [g._data if isinstance(g, Tensor) else np.asarray(g) for g in grads]
            lifted = [t._data for t in variant.lifted]
            if cuda:
                grads = [_cuda().contiguous(g) for g in grads]
                lifted = [_cuda().contiguous(a) for a in lifted]
            values = []
            for kind, k in variant.backward_sources:
                values.append(self.saved_arrays[k] if kind == "saved" else
                              grads[k] if kind == "grad" else lifted[k])
            if variant.backward_failed is None:
                try:
                    result = variant.backward.run(values)
                    _hand_over(result, values)
                except Exception as error:  # noqa: BLE001 - a kernel that fails to build
                    variant.backward_failed = f"{type(error).__name__}: " + (
                        str(error).splitlines() or [""])[0]
                    variant.events.append(("fallback", "backward kernel build failed ("
                                           f"{variant.backward_failed}); backward runs "
                                           "eagerly"))
            if variant.backward_failed is not None:
                grads = [Tensor._make(g) for g in grads]
                result = [None if g is None else g._data for g in self._eager_backward(grads)]
            if as_tensor:
                result = [None if r is None else Tensor._make(r) for r in result]
        else:
            result = self._eager_backward(grads)
        return tuple(result[:len(self.next_functions)])

    def _eager_backward(self, grads):
        """The backward as eager jitgrad ops: re-run the user's function on the same inputs and
        differentiate it (double backward, and the fallback when a backward kernel cannot be
        built). Running the function itself keeps its detach / .data / no_grad cuts exact."""
        import jitgrad
        from jitgrad.autograd.grad_mode import enable_grad
        self._check_versions([(t, v) for t, v in zip(self.inputs, self.input_versions)])
        with enable_grad():
            outputs = flatten(self.rerun())
        variant = self.variant
        diff = [outputs[i] for i in variant.diff_outputs]
        seeds = [g if isinstance(g, Tensor) else Tensor._make(np.asarray(g)) for g in grads]
        pairs = [(o, g) for o, g in zip(diff, seeds) if o._requires_grad]
        if not pairs:
            return [None] * len(self.targets)
        return list(jitgrad.autograd.grad([o for o, _ in pairs], self.targets,
                                          [g for _, g in pairs],
                                          create_graph=jitgrad.is_grad_enabled(),
                                          allow_unused=True))

    def release(self):
        if self.saved_arrays or self.saved_inputs:
            self.saved_arrays = None
            self.saved_inputs = []
            self.freed = True


class CompiledFunction:
    """What `jitgrad.compile(fn)` returns."""

    def __init__(self, fn, backend="cpu", dynamic=False, fullgraph=False,
                 max_variants=MAX_VARIANTS):
        if not callable(fn):
            raise TypeError(f"jitgrad.compile expects a callable, got {type(fn).__name__}")
        if backend not in ("cpu", "cuda", "eager"):
            raise ValueError(f"unknown backend {backend!r}; expected 'cpu', 'cuda' or 'eager'")
        self.fn = fn
        self.backend = backend
        self.dynamic = dynamic
        self.fullgraph = fullgraph
        self.max_variants = max_variants
        self.variants = {}
        self.breaks = {}          # signature -> GraphBreak
        self.events = []          # (kind, text): compiles, recompiles, breaks, fallbacks
        self._warned = False
        self.__wrapped__ = fn
        self.__name__ = getattr(fn, "__name__", "compiled")
        self.__doc__ = getattr(fn, "__doc__", None)

    def __call__(self, *args, **kwargs):
        if self.backend == "eager":
            return self.fn(*args, **kwargs)
        inputs = flatten((args, kwargs))
        signature = _signature(args, kwargs, inputs)
        variant = self.variants.get(signature)
        if variant is None:
            if signature in self.breaks:
                return self.fn(*args, **kwargs)
            variant = self._compile(signature, args, kwargs, inputs)
            if variant is None:
                return self.fn(*args, **kwargs)
        if any(t._data.shape != a.shape or t._data.dtype != a.dtype
               for t, a in zip(variant.lifted, variant.lifted_arrays)):
            self.variants.pop(signature)
            return self(*args, **kwargs)
        if not variant.verified:
            # Numba compiles on first use: a kernel that fails to build falls back to eager.
            try:
                result = self._run(variant, inputs, args, kwargs)
            except Exception as error:  # noqa: BLE001 - any failure means: run eagerly
                self.variants.pop(signature, None)
                reason = GraphBreak(f"kernel build failed: {type(error).__name__}: "
                                    f"{str(error).splitlines()[0] if str(error) else ''}")
                self.breaks[signature] = reason
                self.events.append(("fallback", reason.reason))
                if self.fullgraph:
                    raise
                return self.fn(*args, **kwargs)
            variant.verified = True
            return result
        return self._run(variant, inputs, args, kwargs)

    def _compile(self, signature, args, kwargs, inputs):
        if len(self.variants) >= self.max_variants and self.dynamic:
            # dynamic=True: sizes are kernel arguments, so evicting a variant loses no kernel.
            self.variants.pop(next(iter(self.variants)))
        if len(self.variants) >= self.max_variants:
            if not self._warned:
                last = next(reversed(self.variants))
                warnings.warn(f"jitgrad.compile({self.__name__}): more than "
                              f"{self.max_variants} variants ({_describe_change(last, signature)}"
                              "); running eagerly from now on for new signatures",
                              UserWarning, stacklevel=3)
                self._warned = True
            self.events.append(("fallback", "variant limit reached"))
            return None
        change = None
        if self.variants:
            change = _describe_change(next(reversed(self.variants)), signature)
        built_before = cache.STATS["compiled_modules"]
        need_backward = ENABLED.get() and any(t._requires_grad for t in inputs)
        backend = self._backend(inputs)
        if backend is None:
            reason = GraphBreak("tensor inputs on the CPU and on the CUDA device")
            self.breaks[signature] = reason
            self.events.append(("graph break", reason.reason))
            return None
        try:
            cap, _ = capture(self.fn, args, kwargs, need_backward)
            variant = Variant(cap, signature, self.dynamic, backend)
        except NotImplementedError as error:   # an op the CUDA backend cannot run yet
            if self.fullgraph:
                raise
            reason = GraphBreak(f"not supported on CUDA yet: {error}")
            self.breaks[signature] = reason
            self.events.append(("graph break", reason.reason))
            return None
        except GraphBreak as graph_break:
            if self.fullgraph:
                raise RuntimeError(f"jitgrad.compile(fullgraph=True): graph break: "
                                   f"{graph_break.reason} at {graph_break.where}") from None
            self.breaks[signature] = graph_break
            self.events.append(("graph break", f"{graph_break.reason} at {graph_break.where}"))
            return None
        variant.lifted_arrays = [t._data for t in variant.lifted]
        variant.verified = False
        variant.events = self.events
        dump_dir = os.environ.get("JITGRAD_DUMP")
        if dump_dir:
            from .dump import write_stages
            write_stages(variant, self.__name__.replace("<", "").replace(">", ""), dump_dir)
        self.variants[signature] = variant
        if change is not None:
            reused = cache.STATS["compiled_modules"] == built_before
            self.events.append(("recompile", change + (" (kernels reused)" if reused else "")))
        self.events.append(("compile", f"{len(variant.forward.kernels)} forward and "
                            f"{len(variant.backward.kernels) if variant.backward else 0} "
                            "backward kernels"))
        return variant

    def _backend(self, inputs):
        """"cuda" when asked for or when the tensor inputs live on the device, "cpu" when they
        live on the CPU; None (run eagerly, which accepts CPU scalars among CUDA tensors and
        raises PyTorch's error for others) when they are on both."""
        on_device = [type(t._data) is not np.ndarray for t in inputs]
        if all(on_device) and (on_device or self.backend == "cuda"):
            return "cuda"
        if not any(on_device):
            if self.backend == "cuda" and inputs:
                raise RuntimeError(f"jitgrad.compile({self.__name__}, backend='cuda'): the "
                                   "tensor inputs are on the cpu; move them to the device "
                                   "with .cuda()")
            return "cpu"
        return None

    def _run(self, variant, inputs, args, kwargs):
        fn = self.fn

        def rerun():
            return fn(*args, **kwargs)

        arrays = [t._data for t in inputs] + [t._data for t in variant.lifted]
        if variant.backend == "cuda":
            arrays = [_cuda().contiguous(a) for a in arrays]
        results = variant.forward.run(arrays)
        outputs = results[:variant.n_outputs]
        saved = results[variant.n_outputs:]
        every_input = list(inputs) + list(variant.lifted)
        tensors = [Tensor._make(a) if k is None else _alias(every_input[k], kind)
                   for a, k, kind in zip(outputs, variant.output_is_input,
                                         variant.capture.output_alias)]
        grad_inputs = [inputs[i] for i in variant.grad_inputs]
        if ENABLED.get() and variant.backward is not None and any(
                t._requires_grad for t in grad_inputs + variant.lifted):
            targets = grad_inputs + [t for t in variant.lifted if t._requires_grad]
            node = CompiledFunctionBackward(variant, saved, list(inputs), targets, rerun)
            node._cuda = variant.backend == "cuda"
            node.next_functions = tuple(gradient_edge(t) for t in targets)
            node.meta = tuple((t._data.shape, t._data.dtype) for t in targets)
            for k, index in enumerate(variant.diff_outputs):
                if variant.output_is_input[index] is not None:
                    continue   # the input itself: its gradient reaches it directly
                out = tensors[index]
                out._grad_fn = node
                out._output_nr = k
                out._requires_grad = True
        return rebuild(variant.capture.structure, tensors)
