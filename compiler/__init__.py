"""jitgrad's graph compiler: capture, joint forward + backward graph, fusion, Numba kernels.

Imported lazily by `jitgrad.compile`; `import jitgrad` never loads this package or Numba.
"""
