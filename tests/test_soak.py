"""Soak (benchmarks/soak.py): 10,000 training steps of a small MLP, eager and compiled. Resident
memory and live objects stay flat after warm-up, every checked step's graph and saved values are
freed (weak references), and nothing is compiled or loaded after warm-up."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.soak import soak  # noqa: E402

STEPS = 10_000
RSS_BOUND = 8 * 2**20          # after warm-up (step 200): the allocator settling, not a leak
RSS_SECOND_HALF = 256 * 2**10  # 5,000 steps: a 52-byte-per-step leak would cross it


@pytest.mark.parametrize("mode", ["eager", "compiled"])
def test_soak(mode):
    f = soak(mode, STEPS)
    assert f["graphs_checked"] >= 19
    assert f["graphs_leaked"] == 0 and f["saved_leaked"] == 0, f
    assert f["compile_events_after_warmup"] == 0 and f["kernel_loads_after_warmup"] == 0, f
    assert abs(f["object_growth"]) <= 50, f["object_growth"]
    if f["rss_growth"] is not None:
        assert f["rss_growth"] <= RSS_BOUND, (f["rss_growth"], f.get("rss_samples"))
        assert f["rss_growth_second_half"] <= RSS_SECOND_HALF, (f["rss_growth_second_half"],
                                                                 f.get("rss_samples"))
    assert f["loss_last"] < f["loss_first"] / 100       # it trained
