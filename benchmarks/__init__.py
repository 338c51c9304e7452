"""jitgrad's benchmarks: `suite.py` (the fused-kernel suite behind `jitgrad bench`), its
workloads in `workloads.py`, and `eager_overhead.py` (per-op eager overhead)."""
