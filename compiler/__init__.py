"""jitgrad's graph compiler: capture, joint forward + backward graph, fusion, Numba kernels.

Imported lazily by `jitgrad.compile`; `import jitgrad` never loads this package or Numba.
"""
import os

# Numba's OpenMP workers spin after each parallel kernel and starve the BLAS threads of the
# matmuls between kernels (measured: an MLP step's matmuls took 2x as long). Passive waiting
# costs nothing measurable per kernel launch here. Set before Numba loads OpenMP; a user's
# own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .cache import cache_info, clear_cache  # noqa: E402
from .compiled_function import CompiledFunction  # noqa: E402
from .dump import dump  # noqa: E402,F401
from .explain import compare, explain  # noqa: E402,F401


def compile(fn=None, *, backend="cpu", dynamic=False, fullgraph=False, **options):
    """Compile `fn`; usable as `compile(fn)`, `@compile` and `@compile(backend=...)`.

    backend: "cpu" (Numba CPU kernels), "cuda" (numba.cuda kernels; the tensor inputs must live
    on the device; a call whose inputs all do gets it without asking) or "eager"."""
    if fn is None:
        return lambda f: CompiledFunction(f, backend, dynamic, fullgraph, **options)
    return CompiledFunction(fn, backend, dynamic, fullgraph, **options)
