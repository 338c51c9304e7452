"""The one place that runs an op: the dtype rule, the NumPy forward, recording the GradFn (the
only reader of grad mode here), bumping versions for in-place ops, and notifying the tracer."""
import warnings

import numpy as np

from . import dtypes, errors, tracing
from .autograd.grad_fn import gradient_edge
from .autograd.grad_mode import ENABLED

_grad_enabled = ENABLED.get
from .tensor import Tensor

_ndarray = np.ndarray
_tracer = tracing.CURRENT
# Set by jitgrad.cuda.backend() when the first tensor goes to a CUDA device; until then the
# CPU paths pay one test of this flag per op and nothing else.
_cuda_active = False


def _common_dtype(arrays, to_float):
    """The dtype an op computes in, by PyTorch's promotion (see dtypes.result_type)."""
    first = None
    mixed = False
    has_scalar = False
    for x in arrays:
        if type(x) is _ndarray:
            if first is None:
                first = x.dtype
            elif x.dtype != first:
                mixed = True
        elif x is not None:
            has_scalar = True
    if mixed or has_scalar or first is None:
        common = dtypes.result_type(*[x for x in arrays if x is not None])
    else:
        common = first
    if to_float and common.kind != "f":
        common = dtypes.default_float()
    return common


def _cast(arrays, common):
    return [x.astype(common) if type(x) is _ndarray and x.dtype != common else x
            for x in arrays]


def _prepare(spec, args):
    """Unwrap tensors to arrays and apply the op's dtype rule."""
    rule = spec.dtype_rule
    if len(args) == 1:
        x = args[0]
        x = x._data if isinstance(x, Tensor) else np.asarray(x)
        if rule == "float" and x.dtype.kind != "f":
            return [x.astype(dtypes.default_float())]
        if rule == "float_only":
            _require_float(spec, x)
        return [x]
    if len(args) == 2 and rule != "where":
        a, b = args
        a = a._data if type(a) is Tensor or isinstance(a, Tensor) else a
        b = b._data if type(b) is Tensor or isinstance(b, Tensor) else b
        arrays = [a, b]
        if rule == "same":
            return arrays
        # Fast path: two arrays of one dtype, or an array and a Python scalar of no higher
        # category (PyTorch and NumPy agree there).
        if type(a) is _ndarray:
            if type(b) is _ndarray:
                if a.dtype == b.dtype and (rule != "float" or a.dtype.kind == "f"):
                    return arrays
            elif type(b) is float:
                if a.dtype.kind == "f":
                    return arrays
            elif type(b) is int and a.dtype.kind in "fi" and rule != "float":
                return arrays
        elif type(b) is _ndarray:
            if (type(a) is float and b.dtype.kind == "f") or \
                    (type(a) is int and b.dtype.kind in "fi" and rule != "float"):
                return arrays
    else:
        arrays = [a._data if isinstance(a, Tensor) else a for a in args]
        if rule == "same":
            return arrays
    if rule == "promote" or rule == "compare":
        return _cast(arrays, _common_dtype(arrays, False))
    if rule == "float":
        return _cast(arrays, _common_dtype(arrays, True))
    if rule == "where":
        cond = arrays[0]
        if type(cond) is _ndarray and cond.dtype.kind != "b":
            raise RuntimeError("where expected condition to be a boolean tensor, but got a "
                               f"tensor with dtype {errors.scalar_type_name(cond.dtype)}")
        return [cond] + _cast(arrays[1:], _common_dtype(arrays[1:], False))
    raise AssertionError(f"unknown dtype rule {rule!r}")


def _require_float(spec, x):
    if x.dtype.kind != "f":
        raise RuntimeError(
            f"{spec.name}(): could not infer output dtype. Input dtype must be either a "
            f"floating point or complex dtype. Got: {errors.scalar_type_name(x.dtype)}")


def quiet_numpy_warnings():
    """NumPy warns on log(0), x / 0 and overflow where PyTorch is silent. Filter only warnings
    raised from jitgrad's own modules (users' NumPy code keeps its warnings). Test runners
    reset the filter list per test, so the dispatcher re-checks it (one comparison per op)."""
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"jitgrad(\.|$)")
    _QUIET[0] = warnings.filters[0]


_QUIET = [None]


def _translate_value_error(spec, arrays, error):
    shapes = [a.shape for a in arrays if type(a) is _ndarray]
    if "broadcast" in str(error) and len(shapes) >= 2:
        a, b = shapes[0], shapes[1]
        for i in range(1, max(len(a), len(b)) + 1):
            da = a[-i] if i <= len(a) else 1
            db = b[-i] if i <= len(b) else 1
            if da != db and da != 1 and db != 1:
                dim = max(len(a), len(b)) - i
                return RuntimeError(f"The size of tensor a ({da}) must match the size of "
                                    f"tensor b ({db}) at non-singleton dimension {dim}")
    return error


def apply(spec, args, attrs=None):
    """Run `spec` on `args` (Tensors and Python scalars) and return the result Tensor(s)."""
    if _cuda_active and (spec.name == "to_device" or _on_device(args)):
        return _apply_device(spec, args, attrs)
    if warnings.filters[0] is not _QUIET[0]:
        quiet_numpy_warnings()
    arrays = _prepare(spec, args)
    try:
        out = spec.forward(*arrays, **attrs) if attrs else spec.forward(*arrays)
    except ValueError as error:
        raise _translate_value_error(spec, arrays, error) from None
    extra = None
    if spec.n_outputs > 1:
        out, *extra = out
    if type(out) is not _ndarray:
        out = np.asarray(out)
    result = _make(out)
    if spec.view:
        _mark_view(result, args[0], spec, attrs)
    if _grad_enabled() and spec.differentiable and out.dtype.kind == "f":
        if len(args) == 1:
            needs = (args[0]._requires_grad,) if isinstance(args[0], Tensor) else (False,)
        elif len(args) == 2:
            a, b = args
            needs = ((type(a) is Tensor or isinstance(a, Tensor)) and a._requires_grad,
                     (type(b) is Tensor or isinstance(b, Tensor)) and b._requires_grad)
        else:
            needs = tuple([isinstance(a, Tensor) and a._requires_grad for a in args])
        if True in needs:
            result._grad_fn = _record(spec, args, attrs, needs, result, extra)
            result._requires_grad = True
    if extra is not None:
        result = (result, *[_wrap(e) for e in extra])
    tracer = _tracer.get()
    if tracer is not None:
        tracer.record(spec, args, attrs, result)
    return result


_make = Tensor._make


def apply_binary(spec, a, b):
    """`apply` for the hot case of operators: a float Tensor with a Tensor of its dtype or a
    Python float, no attributes. Anything else goes through `apply` (same semantics)."""
    if _cuda_active and _on_device((a, b)):
        return _apply_device(spec, (a, b), None)
    if type(a) is not Tensor or warnings.filters[0] is not _QUIET[0] or spec.view:
        return apply(spec, (a, b))
    x = a._data
    kind = type(b)
    if kind is Tensor:
        y = b._data
        if x.dtype is not y.dtype:
            return apply(spec, (a, b))
        b_grad = b._requires_grad
    elif kind is float:
        y = b
        b_grad = False
    else:
        return apply(spec, (a, b))
    if x.dtype.kind != "f" or spec.dtype_rule == "where" or spec.n_outputs != 1:
        return apply(spec, (a, b))
    try:
        out = spec.forward(x, y)
    except ValueError:
        return apply(spec, (a, b))   # re-raised there with PyTorch's wording
    if type(out) is not _ndarray:
        out = np.asarray(out)
    result = _make(out)
    a_grad = a._requires_grad
    if (a_grad or b_grad) and spec.differentiable and _grad_enabled() and \
            out.dtype.kind == "f":
        result._grad_fn = _record(spec, (a, b), None, (a_grad, b_grad), result, None)
        result._requires_grad = True
    tracer = _tracer.get()
    if tracer is not None:
        tracer.record(spec, (a, b), None, result)
    return result


def apply_unary(spec, x):
    """`apply` for the hot case of unary ops: a float Tensor, no attributes."""
    if _cuda_active and _on_device((x,)):
        return _apply_device(spec, (x,), None)
    if type(x) is not Tensor or warnings.filters[0] is not _QUIET[0] or spec.view or \
            spec.n_outputs != 1:
        return apply(spec, (x,))
    data = x._data
    if data.dtype.kind != "f" or spec.dtype_rule == "float_only":
        return apply(spec, (x,))
    out = spec.forward(data)
    if type(out) is not _ndarray:
        out = np.asarray(out)
    result = _make(out)
    if x._requires_grad and spec.differentiable and _grad_enabled() and out.dtype.kind == "f":
        result._grad_fn = _record(spec, (x,), None, (True,), result, None)
        result._requires_grad = True
    tracer = _tracer.get()
    if tracer is not None:
        tracer.record(spec, (x,), None, result)
    return result


def _wrap(array):
    if type(array) is not _ndarray:
        array = np.asarray(array)
    return Tensor._make(array)


def _edge(a):
    if a._base is None:
        grad_fn = a._grad_fn
        if grad_fn is not None:
            return grad_fn, a._output_nr
    return gradient_edge(a)


def _record(spec, args, attrs, needs, result, extra):
    node = spec.node_class(attrs, needs)
    if len(args) == 1:
        a = args[0]
        edge = _edge(a)
        node.next_functions = (edge,)
        node.meta = ((a._data.shape, a._data.dtype),)
        if edge[0] is None:
            node.needs = (False,)   # a view made under no_grad: its gradient goes nowhere
    elif len(args) == 2:
        a, b = args
        na, nb = needs
        if na:
            edge_a = (a._grad_fn, a._output_nr) if a._grad_fn is not None and \
                a._base is None else gradient_edge(a)
        else:
            edge_a = (None, 0)
        if nb:
            edge_b = (b._grad_fn, b._output_nr) if b._grad_fn is not None and \
                b._base is None else gradient_edge(b)
        else:
            edge_b = (None, 0)
        node.next_functions = (edge_a, edge_b)
        if (na and edge_a[0] is None) or (nb and edge_b[0] is None):
            node.needs = (na and edge_a[0] is not None, nb and edge_b[0] is not None)
        node.meta = ((a._data.shape, a._data.dtype) if na else None,
                     (b._data.shape, b._data.dtype) if nb else None)
    else:
        node.next_functions = tuple([_edge(a) if n else (None, 0) for a, n in zip(args, needs)])
        node.needs = tuple([n and e[0] is not None for n, e in zip(needs, node.next_functions)])
        node.meta = tuple([(a._data.shape, a._data.dtype) if n else None
                           for a, n in zip(args, needs)])
    if spec.saves:
        saved = [None] * len(args)
        for i in spec.saves:
            a = args[i]
            saved[i] = (a, a._vc[0]) if isinstance(a, Tensor) else a
        node.saved = saved
    if spec.save_out:
        node.saved_out = (result._data, result._vc, result._vc[0], True)
    if extra is not None:
        node.extra = extra
    return node


def _mark_view(result, source, spec, attrs):
    """A NumPy view of the source's memory is a view: it shares the version counter, and
    remembers its base and the chain of view ops that rebuilds it from the base."""
    array = result._data
    source_array = source._data
    root = source_array if source_array.base is None else source_array.base
    if array.base is None or (array.base is not root and array.base is not source_array):
        return
    _link_view(result, source, spec, attrs)


def _link_view(result, source, spec, attrs):
    """Make `result` a view of `source`: shared version counter, base, view chain, and
    PyTorch's no_grad view rules."""
    result._vc = source._vc
    if source._base is None:
        result._base = source
        result._view_chain = ((spec, attrs),)
    else:
        result._base = source._base
        result._view_chain = source._view_chain + ((spec, attrs),)
    result._view_version = source._vc[0]
    if source._no_grad_view is not None:
        if _grad_enabled():
            result._no_grad_view = "of_view"
        else:
            result._requires_grad = True
            result._no_grad_view = True
    elif source._requires_grad and not _grad_enabled():
        # PyTorch: the view requires grad (through its base) and is a leaf whose gradient
        # goes nowhere; modifying it in place with grad mode on is an error.
        result._requires_grad = True
        result._no_grad_view = True


def replay_view(chain, value, F):
    """Re-apply a view's chain of view ops to `value` (its base, or a gradient of base shape)."""
    for spec, attrs in chain:
        value = getattr(F, spec.name)(value, **(attrs or {}))
    return value


# -- in-place ops -------------------------------------------------------------------------

def check_inplace(target):
    """PyTorch's errors for in-place ops on leaves (and views of leaves) that require grad."""
    if not _grad_enabled():
        return
    if target._requires_grad and target._grad_fn is None and target._base is None:
        raise RuntimeError(errors.LEAF_INPLACE)
    if target._no_grad_view is not None:
        if target._no_grad_view is True or target._grad_fn is None:
            raise RuntimeError(errors.NO_GRAD_VIEW_INPLACE)
        op = type(target._grad_fn).__name__.rstrip("0123456789").removesuffix("Backward")
        raise RuntimeError(errors.no_grad_view_of_view_inplace(op))
    base = target._base
    if base is not None and base._requires_grad and base._grad_fn is None:
        raise RuntimeError(errors.VIEW_OF_LEAF_INPLACE)


def apply_inplace(spec, target, args, attrs=None):
    """Run `spec` with `target` (= args[0]) as its output, in place; bump the version once."""
    check_inplace(target)
    tracer = _tracer.get()
    if tracer is not None:
        # Before the write: a tracer that cannot capture in-place ops must leave data untouched.
        tracer.record_inplace(spec, target, args, attrs)
    device = _cuda_active and _on_device(args)
    if device:
        args = _common_device(spec, args, inplace=True)
        arrays = args
    else:
        arrays = _prepare(spec, args)
    data = target._data
    recording = _grad_enabled() and spec.differentiable and any(
        isinstance(a, Tensor) and a._requires_grad for a in args)
    if recording:
        needs = tuple([isinstance(a, Tensor) and a._requires_grad for a in args])
        old_edge = gradient_edge(target) if needs[0] else (None, 0)
        if 0 in spec.saves:
            # The rule needs self's value from before the write: save a copy of it.
            old = Tensor._make(_cuda_backend().copy(data) if device else data.copy())
            old._requires_grad = target._requires_grad
            old._grad_fn, old._output_nr = old_edge if needs[0] else (None, 0)
            args = (old,) + tuple(args[1:])
    if device:
        _cuda_backend().run_inplace(spec, target, arrays, attrs)
    elif spec.inplace_forward is not None:
        spec.inplace_forward(*arrays, **(attrs or {}))
    else:
        out = spec.forward(*arrays, **attrs) if attrs else spec.forward(*arrays)
        out = np.asarray(out)
        check_inplace_result(out, data, data.flags.writeable)
        np.copyto(data, out, casting="unsafe")
    target._vc[0] += 1
    if recording:
        node = _record(spec, args, attrs, needs, target, None)
        node.next_functions = (old_edge,) + node.next_functions[1:]
        node.meta = ((data.shape, data.dtype),) + node.meta[1:]
        if device:
            node._cuda = True
        if spec.save_out:
            node.saved_out = (target._data, target._vc, target._vc[0], True)
        if target._base is None:
            target._grad_fn = node
            target._output_nr = 0
            target._requires_grad = True
        else:
            _rebase_view(target, node)
    return target


def check_inplace_result(out, data, writeable):
    """PyTorch's errors for an in-place result that cannot be written into `data`."""
    if not dtypes.can_cast(out.dtype, data.dtype):
        raise RuntimeError(
            f"result type {errors.scalar_type_name(out.dtype)} can't be cast to the "
            f"desired output type {errors.scalar_type_name(data.dtype)}")
    if tuple(out.shape) != tuple(data.shape):
        raise RuntimeError(
            f"output with shape {errors.size_str(data.shape)} doesn't match the broadcast "
            f"shape {errors.size_str(out.shape)}")
    if not writeable:
        raise RuntimeError(
            "unsupported operation: more than one element of the written-to tensor refers "
            "to a single memory location. Please clone() the tensor before performing the "
            "operation.")


# -- CUDA tensors ---------------------------------------------------------------------------

def _cuda_backend():
    from .cuda import backend
    return backend()


def _on_device(args):
    """Whether a tensor argument lives on the CUDA device."""
    for a in args:
        if isinstance(a, Tensor) and type(a._data) is not _ndarray:
            return True
    return False


def _common_device(spec, args, inplace=False):
    """The arguments of an op with a CUDA tensor argument, all on the device: another tensor
    on the CPU is PyTorch's error, except a 0-dim one of an elementwise op (a CPU scalar, which
    PyTorch accepts; it is copied over, with autograd). An in-place op's target is no scalar."""
    from .device import CUDA
    first = None
    scalars = False
    for i, a in enumerate(args):
        if not isinstance(a, Tensor):
            continue
        host = type(a._data) is _ndarray
        if host and a._data.ndim == 0 and spec.kind == "elementwise" and \
                not (inplace and i == 0):
            scalars = True
            continue
        where = "cpu" if host else "cuda:0"
        if first is None:
            first = where
        elif where != first:
            ndims = tuple(len(t._data.shape) for t in args if isinstance(t, Tensor))
            raise RuntimeError(errors.device_mismatch(spec.name, first, where, i, ndims))
    if scalars:
        args = tuple(transfer(a, CUDA) if isinstance(a, Tensor) and
                     type(a._data) is _ndarray else a for a in args)
    return args


def transfer(x, device):
    """`x` on `device` (a jitgrad device), as PyTorch's _to_copy: a copy, differentiable
    (ToCopyBackward0 sends the gradient back to x's device). Itself if already there."""
    source = "cpu" if type(x._data) is _ndarray else "cuda:0"
    target = str(device)
    if source == target:
        return x
    _cuda_backend()
    from .ops.spec import REGISTRY
    return _apply_device(REGISTRY["to_device"], (x,), {"device": target, "source": source})


def _apply_device(spec, args, attrs):
    """`apply` for ops with an argument on the device: the backend computes the device array
    (or view); the result is recorded exactly as on the CPU, its node marked as a CUDA node
    (the engine then runs the graph's rules as device ops)."""
    backend = _cuda_backend()
    is_view = False
    if spec.name == "to_device":
        out = backend.transfer(args[0]._data, attrs["device"])
    else:
        args = _common_device(spec, args)
        if spec.view:
            out, is_view = backend.view(spec, args[0]._data, attrs)
        else:
            out = backend.run(spec, args, attrs)
    result = _make(out)
    if is_view:
        _link_view(result, args[0], spec, attrs)
    if _grad_enabled() and spec.differentiable and out.dtype.kind == "f":
        needs = tuple([isinstance(a, Tensor) and a._requires_grad for a in args])
        if True in needs:
            node = _record(spec, args, attrs, needs, result, None)
            node._cuda = True
            result._grad_fn = node
            result._requires_grad = True
    tracer = _tracer.get()
    if tracer is not None:
        tracer.record(spec, args, attrs, result)
    return result


def _rebase_view(view, fn_node):
    """PyTorch's CopySlices: the base's graph now routes the view's region through fn_node."""
    from .autograd.copy_slices import CopySlices
    base = view._base
    base_edge = gradient_edge(base)
    node = CopySlices(base_edge, (base._data.shape, base._data.dtype), view._view_chain, fn_node)
    base._grad_fn = node
    base._output_nr = 0
    base._requires_grad = True
    regenerate_view_grad_fn(view)


def regenerate_view_grad_fn(view):
    """Give a view the grad_fn of replaying its view chain on its base's current graph."""
    from .autograd.grad_mode import enable_grad
    base = view._base
    with enable_grad():
        token = _tracer.set(None)
        try:
            replayed = replay_view(view._view_chain, base, _tensor_ops())
        finally:
            _tracer.reset(token)
    view._grad_fn = replayed._grad_fn
    view._output_nr = replayed._output_nr
    view._requires_grad = replayed._requires_grad
    view._view_version = view._vc[0]


_TENSOR_OPS = []


def _tensor_ops():
    if not _TENSOR_OPS:
        from .ops.spec import TENSOR_OPS
        _TENSOR_OPS.append(TENSOR_OPS)
    return _TENSOR_OPS[0]
