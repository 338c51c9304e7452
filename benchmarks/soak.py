"""Soak: many training steps of a small MLP, eager and compiled, watching for leaks.

Each step is forward + cross entropy + backward + an SGD update. After warm-up the run checks:

- resident memory (RSS, from /proc/self/statm) and the number of live Python objects stay flat;
- every `check_every` steps, that the step's graph and saved values are freed: weak references
  to an activation's array (saved for backward) die at backward while the loss is still alive,
  and to the loss's grad_fn when the loss goes;
- no kernel is compiled or loaded after warm-up (compile events, kernel-cache loads).

    python benchmarks/soak.py [--steps 10000]
"""
import argparse
import gc
import os
import sys
import time
import weakref

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jitgrad  # noqa: E402
import jitgrad.nn.functional as F  # noqa: E402

WARMUP = 200


def rss_bytes():
    """Current resident set size (Linux); None where /proc is not available."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def _model(seed=0, sizes=(16, 32, 4)):
    r = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = (r.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        params += [jitgrad.tensor(w, requires_grad=True),
                   jitgrad.zeros(fan_out, requires_grad=True)]
    return params


def _forward(x, y, w1, b1, w2, b2):
    h = jitgrad.tanh(x @ w1 + b1)
    return F.cross_entropy(h @ w2 + b2, y), h


def soak(mode, steps=10_000, check_every=500, batch=8, seed=0):
    """Run `steps` training steps; return the figures (see the module docstring)."""
    from compiler import cache
    r = np.random.default_rng(seed + 1)
    x = jitgrad.tensor(r.standard_normal((batch, 16)).astype(np.float32))
    y = jitgrad.tensor(r.integers(0, 4, batch))
    params = _model(seed)
    step_fn = jitgrad.compile(_forward) if mode == "compiled" else _forward
    lr = 0.05
    figures = {"mode": mode, "steps": steps, "graphs_checked": 0, "graphs_leaked": 0,
               "saved_leaked": 0}
    loss_first = loss_last = None      # (a list of every loss would itself grow memory)
    t0 = time.perf_counter()
    for step in range(steps):
        if step == WARMUP:
            gc.collect()
            figures["rss_after_warmup"] = rss_bytes()
            figures["objects_after_warmup"] = len(gc.get_objects())
            events_after_warmup = len(getattr(step_fn, "events", ()))
            loads_after_warmup = dict(cache.STATS)
            t0 = time.perf_counter()
        loss, h = step_fn(x, y, *params)
        check = step >= WARMUP and step % check_every == 0
        if check:
            saved = weakref.ref(h._data)
            node = weakref.ref(loss.grad_fn)
        del h
        loss.backward()
        if check:
            figures["graphs_checked"] += 1
            figures["saved_leaked"] += saved() is not None   # freed by backward, loss alive
        loss_last = loss.item()
        if loss_first is None:
            loss_first = loss_last
        del loss
        if check:
            figures["graphs_leaked"] += node() is not None
            figures.setdefault("rss_samples", []).append(rss_bytes())
        with jitgrad.no_grad():
            for p in params:
                p -= lr * p.grad
                p.grad = None
    figures["seconds"] = time.perf_counter() - t0     # steps after warm-up
    gc.collect()
    figures["rss_end"] = rss_bytes()
    figures["objects_end"] = len(gc.get_objects())
    figures["rss_growth"] = None if figures["rss_end"] is None else \
        figures["rss_end"] - figures["rss_after_warmup"]
    samples = figures.get("rss_samples") or [None]
    half = samples[len(samples) // 2]
    figures["rss_growth_second_half"] = None if half is None or figures["rss_end"] is None \
        else figures["rss_end"] - half
    figures["object_growth"] = figures["objects_end"] - figures["objects_after_warmup"]
    figures["compile_events_after_warmup"] = \
        len(getattr(step_fn, "events", ())) - events_after_warmup
    figures["kernel_loads_after_warmup"] = sum(cache.STATS.values()) - \
        sum(loads_after_warmup.values())
    figures["loss_first"], figures["loss_last"] = loss_first, loss_last
    return figures


def format_figures(rows):
    lines = [f"{'mode':<10}{'steps':>7}{'s/step':>10}{'RSS warm':>11}{'RSS end':>10}"
             f"{'growth':>9}{'2nd half':>10}{'objects +':>11}{'graphs freed':>14}{'saved freed':>13}"
             f"{'compiles':>10}{'loss':>18}"]
    for f in rows:
        mib = (lambda b: "n/a" if b is None else f"{b / 2**20:.2f}M")
        lines.append(
            f"{f['mode']:<10}{f['steps']:>7}"
            f"{f['seconds'] / max(1, f['steps'] - WARMUP) * 1e6:>8.0f}us"
            f"{mib(f['rss_after_warmup']):>11}{mib(f['rss_end']):>10}"
            f"{mib(f['rss_growth']):>9}{mib(f['rss_growth_second_half']):>10}"
            f"{f['object_growth']:>+11d}"
            f"{f['graphs_checked'] - f['graphs_leaked']:>8}/{f['graphs_checked']:<5}"
            f"{f['graphs_checked'] - f['saved_leaked']:>7}/{f['graphs_checked']:<5}"
            f"{f['compile_events_after_warmup'] + f['kernel_loads_after_warmup']:>10}"
            f"{f['loss_first']:>9.4f}->{f['loss_last']:.4f}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    args = parser.parse_args(argv)
    rows = [soak(mode, args.steps) for mode in ("eager", "compiled")]
    print(format_figures(rows))


if __name__ == "__main__":
    main()
