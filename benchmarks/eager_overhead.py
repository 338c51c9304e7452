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


def measure(T, repeats, size=16):
    import numpy as np
    rng = np.random.default_rng(0)
    data = [rng.standard_normal(size).astype(np.float32) for _ in range(3)]
    x = T.tensor(data[0], requires_grad=True)
    w = T.tensor(data[1], requires_grad=True)
    c = T.tensor(data[2])
    for _ in range(5):
        step(T, x, w, c)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(T, x, w, c)
        times.append(time.perf_counter() - start)
    return statistics.median(times), x.grad.detach().numpy().copy()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    import numpy as np
    import jitgrad
    results = {"jitgrad": measure(jitgrad, args.repeats)}
    try:
        import torch
        torch.set_num_threads(1)
        results["torch"] = measure(torch, args.repeats)
    except ImportError:
        pass
    for name, (median, _) in results.items():
        print(f"{name:8s} median {median * 1e3:8.3f} ms per step (200 ops + backward)")
    if "torch" in results:
        ratio = results["jitgrad"][0] / results["torch"][0]
        np.testing.assert_allclose(results["jitgrad"][1], results["torch"][1], rtol=1e-4,
                                   atol=1e-5)
        print(f"ratio jitgrad/torch: {ratio:.2f}  (goal <= 1.0; gradients agree)")


if __name__ == "__main__":
    main()
