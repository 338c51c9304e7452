"""Small programs whose graph dumps tests/test_inspection.py checks against golden text.
Keep line numbers stable: the dumps name them."""
import jitgrad
import jitgrad.nn.functional as F


def eager_with_detach_cut(x):
    y = x * 2
    return (y.detach() * x + x.exp()).sum()


def mlp(x, w1, b1, w2):
    h = jitgrad.tanh(x @ w1 + b1)
    return (h @ w2).sum()


def layer_norm(x, g, b):
    return F.layer_norm(x, (x.shape[-1],), g, b)
