"""Per-op eager overhead: 200 elementwise ops on 16-element tensors plus backward, in jitgrad
and (if installed) PyTorch, side by side. Prints both medians and the ratio."""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def chain(T, x, w, c, n_ops=200):
    """The W4 workload: cycle add-scalar, mul by a tensor, sin, exp-of-small, tanh, sub."""
    y = x
    for i in range(n_ops):
        k = i % 6
        if k == 0:
            y = y + 0.5
        elif k == 1:
            y = y * w
        elif k == 2:
            y = T.sin(y)
        elif k == 3:
            y = T.exp(y * 0.01)
        elif k == 4:
            y = T.tanh(y)
        else:
            y = y - c
    return y.sum()


def step(T, x, w, c):
    x.grad = None
    w.grad = None
    chain(T, x, w, c).backward()
    return x.grad


def setup(T, size=16):
    import numpy as np
    rng = np.random.default_rng(0)
    data = [rng.standard_normal(size).astype(np.float32) for _ in range(3)]
    x = T.tensor(data[0], requires_grad=True)
    w = T.tensor(data[1], requires_grad=True)
    c = T.tensor(data[2])
    for _ in range(5):
        step(T, x, w, c)
    return x, w, c


def timed(T, inputs):
    start = time.perf_counter()
    step(T, *inputs)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args(argv)
    import numpy as np
    import jitgrad
    peers = {"jitgrad": jitgrad}
    try:
        import torch
        torch.set_num_threads(1)
        peers["torch"] = torch
    except ImportError:
        pass
    inputs = {name: setup(T) for name, T in peers.items()}
    times = {name: [] for name in peers}
    # Interleaved rounds: drift on a shared machine hits every peer alike.
    for _ in range(args.repeats):
        for name, T in peers.items():
            times[name].append(timed(T, inputs[name]))
    for name in peers:
        print(f"{name:8s} median {statistics.median(times[name]) * 1e3:8.3f} ms per step "
              "(200 ops + backward)")
    if "torch" in peers:
        grads = [inputs[name][0].grad.detach().numpy() for name in ("jitgrad", "torch")]
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)
        ratios = [a / b for a, b in zip(times["jitgrad"], times["torch"])]
        print(f"ratio jitgrad/torch: median of times {statistics.median(times['jitgrad']) / statistics.median(times['torch']):.2f}, "
              f"median of per-round ratios {statistics.median(ratios):.2f}  "
              "(goal <= 1.0; gradients agree)")


if __name__ == "__main__":
    main()
