"""The op registry and every op, grouped by kind; importing this registers them all."""
from .spec import NUMPY_OPS, REGISTRY, TENSOR_OPS, OpSpec, defop, derivative  # noqa: F401
from . import elementwise, reduce, movement, indexing, matmul, inplace  # noqa: F401,E402
