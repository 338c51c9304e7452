"""jitgrad's graph compiler: capture, joint forward + backward graph, fusion, Numba kernels.

Imported lazily by `jitgrad.compile`; `import jitgrad` never loads this package or Numba.
"""

from .cache import cache_info, clear_cache  # noqa: E402
from .compiled_function import CompiledFunction  # noqa: E402
from .dump import dump  # noqa: E402,F401
from .explain import compare, explain  # noqa: E402,F401


def compile(fn=None, *, backend="cpu", dynamic=False, fullgraph=False, **options):
    """Compile `fn`; usable as `compile(fn)`, `@compile` and `@compile(backend=...)`."""
    if fn is None:
        return lambda f: CompiledFunction(f, backend, dynamic, fullgraph, **options)
    return CompiledFunction(fn, backend, dynamic, fullgraph, **options)
