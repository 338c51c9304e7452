"""The op record (OpSpec), the registry of all ops, and the two rule namespaces built from it.

An op is one record: PyTorch's name, its NumPy forward, what it saves for backward, its derivative
rule, a scalar template for the compiler, and the dtype rule the dispatcher applies. Derivative
rules are written once, as `rule(F, ctx, grad)`, against a namespace `F` of ops:

- `NUMPY_OPS` runs each op's NumPy forward directly on arrays: eager backward without
  `create_graph`, the fast path.
- `TENSOR_OPS` runs each op through the dispatcher on Tensors, so the rule itself is recorded:
  `create_graph=True`, and the compiler's tracer replaying rules into the joint graph.

Python operators (`g * out`, `1 - y`) work in both namespaces, so most rules read like maths.
"""
import numpy as np

REGISTRY = {}


class OpSpec:
    """One op. See the module docstring; fields are documented where `defop` takes them."""

    __slots__ = ("name", "forward", "rule", "saves", "save_out", "template", "dtype_rule",
                 "kind", "view", "n_outputs", "node_class", "inplace_forward", "differentiable",
                 "reduce_template", "identity")

    def __init__(self, name, forward, *, rule=None, saves=(), save_out=False, template=None,
                 dtype_rule="same", kind="elementwise", view=False, n_outputs=1,
                 grad_fn_name=None, inplace_forward=None, differentiable=True,
                 reduce_template=None, identity=None):
        self.name = name
        self.forward = forward
        self.rule = rule
        self.saves = tuple(saves)
        self.save_out = save_out
        self.template = template
        self.dtype_rule = dtype_rule
        self.kind = kind
        self.view = view
        self.n_outputs = n_outputs
        self.inplace_forward = inplace_forward
        self.differentiable = differentiable
        self.reduce_template = reduce_template
        self.identity = identity
        from ..autograd.grad_fn import OpNode
        class_name = grad_fn_name or _camel(name) + "Backward0"
        self.node_class = type(class_name, (OpNode,), {"spec": self})

    def __repr__(self):
        return f"<op {self.name}>"


def _camel(name):
    return "".join(part.capitalize() for part in name.split("_"))


def defop(name, forward, **fields):
    """Register an op; `rule` may also be attached afterwards with `@spec.derivative`."""
    if name in REGISTRY:
        raise ValueError(f"op {name!r} is registered twice")
    spec = OpSpec(name, forward, **fields)
    REGISTRY[name] = spec
    return spec


def derivative(spec):
    """Decorator: attach `rule(F, ctx, grad) -> tuple of input gradients` to `spec`."""
    def attach(rule):
        spec.rule = rule
        return rule
    return attach


class _Namespace:
    """A namespace of ops for derivative rules; see the module docstring."""

    def __init__(self, name, make, const, zeros):
        self._name = name
        self._make = make
        self.const = const
        self.zeros = zeros

    def __getattr__(self, op_name):
        try:
            spec = REGISTRY[op_name]
        except KeyError:
            raise AttributeError(f"no op named {op_name!r}") from None
        fn = self._make(spec)
        setattr(self, op_name, fn)
        return fn

    def __repr__(self):
        return f"<rule namespace {self._name}>"


def _numpy_op(spec):
    forward = spec.forward

    def run(*args, **attrs):
        return forward(*args, **attrs)
    run.__name__ = spec.name
    return run


def _numpy_zeros(shape, like):
    return np.zeros(shape, dtype=like.dtype)


NUMPY_OPS = _Namespace("numpy", _numpy_op, const=lambda array: array, zeros=_numpy_zeros)


def _publish_numpy_ops():
    from ..autograd import grad_fn
    grad_fn.NUMPY_OPS_REF[0] = NUMPY_OPS


_publish_numpy_ops()


def _tensor_op(spec):
    from ..dispatch import apply

    def run(*args, **attrs):
        return apply(spec, args, attrs)
    run.__name__ = spec.name
    return run


def _tensor_const(array):
    # A constant computed from data (max(dim)'s one-hot mask) cannot be baked into a graph.
    from ..tensor import Tensor
    from ..tracing import notify_escape
    notify_escape(None, "a data-dependent constant in a derivative rule")
    return Tensor._make(np.asarray(array))


def _tensor_zeros(shape, like):
    from ..tensor import Tensor
    data = like._data
    if type(data) is not np.ndarray:   # on like's CUDA device
        from ..cuda import backend
        return Tensor._make(backend().full(shape, data.dtype, 0))
    return Tensor._make(np.zeros(shape, dtype=data.dtype))


TENSOR_OPS = _Namespace("tensor", _tensor_op, const=_tensor_const, zeros=_tensor_zeros)
