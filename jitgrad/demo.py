"""`jitgrad demo`: fit a small model by gradient descent, print the loss falling, and check the
autograd gradients against central finite differences."""
import numpy as np

import jitgrad


def _model(w1, b1, w2, b2, x):
    hidden = jitgrad.tanh(x @ w1 + b1)
    return hidden @ w2 + b2


def _loss(params, x, y):
    return jitgrad.nn.functional.mse_loss(_model(*params, x), y)


def finite_difference_check(params, x, y, eps=1e-6, samples=6, seed=0):
    """Max relative error between autograd and central differences on a few coordinates."""
    rng = np.random.default_rng(seed)
    double = [p.detach().double().requires_grad_(True) for p in params]
    x64, y64 = x.double(), y.double()
    loss = _loss(double, x64, y64)
    grads = jitgrad.autograd.grad(loss, double)
    worst = 0.0
    for p, g in zip(double, grads):
        flat = p.detach().numpy().reshape(-1)
        for k in rng.choice(flat.size, size=min(samples, flat.size), replace=False):
            original = flat[k]
            flat[k] = original + eps
            plus = _loss(double, x64, y64).item()
            flat[k] = original - eps
            minus = _loss(double, x64, y64).item()
            flat[k] = original
            numeric = (plus - minus) / (2 * eps)
            analytic = g.reshape(-1)[int(k)].item()
            worst = max(worst, abs(numeric - analytic) / max(1e-8, abs(numeric), abs(analytic)))
    return worst


def main(steps=300, lr=0.1, print_every=50, out=print):
    """Fit y = sin(3x) + 0.5x with a 1-32-1 tanh network; return (first loss, last loss, error)."""
    jitgrad.manual_seed(0)
    x = jitgrad.linspace(-1.5, 1.5, 128).reshape(-1, 1)
    y = jitgrad.sin(3 * x) + 0.5 * x
    params = [jitgrad.randn(1, 32) * 1.0, jitgrad.zeros(32), jitgrad.randn(32, 1) * 0.2,
              jitgrad.zeros(1)]
    for p in params:
        p.requires_grad_(True)
    optimizer = jitgrad.optim.Adam(params, lr=lr * 0.1)
    out("jitgrad demo: fitting y = sin(3x) + 0.5x with a 1-32-1 tanh network (Adam)")
    first = last = None
    for step in range(steps + 1):
        optimizer.zero_grad()
        loss = _loss(params, x, y)
        loss.backward()
        optimizer.step()
        last = loss.item()
        first = last if first is None else first
        if step % print_every == 0:
            out(f"  step {step:4d}   loss {last:.6f}")
    error = finite_difference_check(params, x, y)
    out(f"loss fell from {first:.4f} to {last:.4f} ({first / last:.0f}x)")
    out(f"gradients vs central finite differences (float64): max relative error {error:.2e} "
        f"({'OK' if error < 1e-5 else 'MISMATCH'})")
    return first, last, error
