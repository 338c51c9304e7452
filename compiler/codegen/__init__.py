"""Code generation: fused groups rendered to readable Python source for Numba."""
