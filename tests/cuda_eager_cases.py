"""Cases for tests/test_cuda_eager.py: CUDA tensors, eager ops on the device, autograd there and
compiled CUDA functions, run in a subprocess under Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM
must be set before Numba is imported; see tests/test_cuda_sim.py).

`python tests/cuda_eager_cases.py [names...]` runs some cases (all by default) and prints one
JSON object: case name -> {"ok", "errors", "seconds"}. Each case compares the device with the
CPU (values, gradients, dtypes, grad_fn names) or checks PyTorch's errors and wording. With
`--ptx` (no simulator) it instead compiles the eager path's kernels to PTX with Numba's real
CUDA compiler (needs libNVVM, no GPU).
"""
import copy
import os
import pickle
import sys
import time
import traceback

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import jitgrad  # noqa: E402
import jitgrad.nn.functional as F  # noqa: E402
from cuda_sim_cases import report, script  # noqa: E402

CASES = {}
MIXED = ("Expected all tensors to be on the same device, but found at least two devices, "
         "{} and {}!")


def case(fn):
    CASES[fn.__name__] = fn
    return fn


class Errors(list):
    def check(self, condition, message):
        if not condition:
            self.append(message)

    def close(self, got, want, label, rtol=1e-5):
        """A CUDA tensor (or None) equal to a CPU tensor (or None): values, dtype, shape."""
        if got is None or want is None:
            self.check(got is None and want is None, f"{label}: one side is None")
            return
        self.check(got.is_cuda, f"{label}: result not on the device ({got.device})")
        host = got.detach().cpu()
        if host.dtype != want.dtype or tuple(host.shape) != tuple(want.shape):
            self.append(f"{label}: {host.dtype}{list(host.shape)} vs "
                        f"{want.dtype}{list(want.shape)}")
            return
        g, w = host.numpy(), want.detach().numpy()
        if not np.allclose(g, w, rtol=rtol, atol=rtol, equal_nan=True):
            self.append(f"{label}: max abs error {np.max(np.abs(g.astype(float) - w)):.3g}")

    def raises(self, kind, text, fn, label):
        try:
            fn()
        except kind as error:
            self.check(text in str(error), f"{label}: message {str(error)!r} lacks {text!r}")
        except Exception as error:  # noqa: BLE001
            self.append(f"{label}: {type(error).__name__} instead of {kind.__name__}: {error}")
        else:
            self.append(f"{label}: no {kind.__name__}")


def rng(seed=0):
    return np.random.default_rng(seed)


def host_and_device(*arrays, requires_grad=True):
    """The same values as CPU leaves and as CUDA leaves."""
    cpu = [jitgrad.tensor(a, requires_grad=requires_grad and a.dtype.kind == "f")
           for a in arrays]
    dev = [jitgrad.tensor(a, device="cuda", requires_grad=requires_grad and a.dtype.kind == "f")
           for a in arrays]
    return cpu, dev


def compare_fn(errors, label, fn, arrays, rtol=1e-5):
    """fn on CPU leaves and on CUDA leaves: outputs, grad_fn names, and the leaves' gradients
    from a backward with a fixed random seed gradient."""
    cpu, dev = host_and_device(*arrays)
    want, got = fn(*cpu), fn(*dev)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    for k, (w, g) in enumerate(zip(want, got)):
        errors.close(g, w, f"{label} output {k}", rtol)
        w_name = type(w.grad_fn).__name__ if w.grad_fn else None
        g_name = type(g.grad_fn).__name__ if g.grad_fn else None
        errors.check(w_name == g_name, f"{label} output {k}: grad_fn {g_name} vs {w_name}")
    pairs = [(w, g) for w, g in zip(want, got) if w.requires_grad]
    if not pairs:
        return
    seeds = [rng(7).standard_normal(w.shape).astype(w.numpy(force=True).dtype)
             for w, _ in pairs]
    jitgrad.autograd.backward([w for w, _ in pairs], [jitgrad.tensor(s) for s in seeds])
    jitgrad.autograd.backward([g for _, g in pairs],
                              [jitgrad.tensor(s, device="cuda") for s in seeds])
    for k, (c, d) in enumerate(zip(cpu, dev)):
        errors.close(d.grad, c.grad, f"{label} grad {k}", rtol)


# -- device tensors ------------------------------------------------------------------------
@case
def device_objects(e):
    e.check(jitgrad.cuda.is_available() and jitgrad.cuda.device_count() == 1,
            "the simulator's device is not available")
    e.check(jitgrad.cuda.current_device() == 0 and
            isinstance(jitgrad.cuda.get_device_name(), str), "current_device / get_device_name")
    e.check(str(jitgrad.device("cuda")) == "cuda", "device('cuda')")
    e.check(repr(jitgrad.device("cuda:0")) == "device(type='cuda', index=0)", "device repr")
    x = jitgrad.zeros(2, device="cuda")
    e.check(x.device == jitgrad.device("cuda:0") and str(x.device) == "cuda:0",
            f"tensor device {x.device!r}")
    e.check(x.is_cuda and not x.is_cpu, "is_cuda / is_cpu")
    e.check(not jitgrad.zeros(2).is_cuda and jitgrad.zeros(2).device.type == "cpu", "CPU device")
    e.raises(RuntimeError, "invalid device ordinal", lambda: jitgrad.zeros(1, device="cuda:1"),
             "cuda:1")


@case
def creation(e):
    jitgrad.manual_seed(3)
    want_randn = jitgrad.randn(2, 3)
    jitgrad.manual_seed(3)
    got_randn = jitgrad.randn(2, 3, device="cuda")
    e.close(got_randn, want_randn, "randn")
    base = jitgrad.tensor([[1.5, -2.0], [3.0, 4.25]])
    dev_base = base.cuda()
    pairs = [
        (jitgrad.tensor([1.0, 2.0], device="cuda"), jitgrad.tensor([1.0, 2.0]), "tensor"),
        (jitgrad.tensor([1, 2], device=jitgrad.device("cuda")), jitgrad.tensor([1, 2]),
         "int tensor"),
        (jitgrad.zeros(2, 3, device="cuda"), jitgrad.zeros(2, 3), "zeros"),
        (jitgrad.ones((2,), dtype=jitgrad.float64, device="cuda:0"),
         jitgrad.ones(2, dtype=jitgrad.float64), "ones"),
        (jitgrad.full((2, 2), 7.0, device="cuda"), jitgrad.full((2, 2), 7.0), "full"),
        (jitgrad.empty(3, device="cuda"), jitgrad.empty(3), "empty"),
        (jitgrad.arange(5, device="cuda"), jitgrad.arange(5), "arange"),
        (jitgrad.linspace(0, 1, 5, device="cuda"), jitgrad.linspace(0, 1, 5), "linspace"),
        (jitgrad.eye(3, device="cuda"), jitgrad.eye(3), "eye"),
        (jitgrad.zeros_like(dev_base), jitgrad.zeros_like(base), "zeros_like keeps the device"),
        (jitgrad.ones_like(dev_base), jitgrad.ones_like(base), "ones_like"),
        (jitgrad.empty_like(dev_base), jitgrad.empty_like(base), "empty_like"),
        (jitgrad.full_like(dev_base, 2.0), jitgrad.full_like(base, 2.0), "full_like"),
        (dev_base.new_zeros(4), base.new_zeros(4), "new_zeros"),
        (jitgrad.as_tensor(np.arange(3.0), device="cuda"),
         jitgrad.as_tensor(np.arange(3.0)), "as_tensor(ndarray, device=)"),
    ]
    for got, want, label in pairs:
        e.close(got, want, label)
    r = jitgrad.rand_like(dev_base)
    e.check(r.is_cuda and r.shape == base.shape, "rand_like")
    e.check(jitgrad.randn_like(dev_base).is_cuda, "randn_like")
    leaf = jitgrad.ones(3, device="cuda", requires_grad=True)
    e.check(leaf.requires_grad and leaf.is_leaf and leaf.is_cuda, "requires_grad= on device")
    e.check(jitgrad.zeros_like(dev_base, device="cpu").is_cpu, "zeros_like(device='cpu')")


@case
def host_access(e):
    x = jitgrad.tensor([1.0, 2.0], device="cuda")
    e.check(repr(x) == "tensor([1., 2.], device='cuda:0')", f"repr {x!r}")
    y = jitgrad.tensor([1.0, 2.0], dtype=jitgrad.float64, device="cuda", requires_grad=True)
    # the device comes first, then the suffixes a CPU tensor has
    e.check(repr(y) == "tensor([1., 2.], device='cuda:0', dtype=jitgrad.float64, "
            "requires_grad=True)", f"repr {y!r}")
    e.check(repr(y * 2).endswith("device='cuda:0', dtype=jitgrad.float64, "
                                 "grad_fn=<MulBackward0>)"), f"repr {y * 2!r}")
    e.check(x.tolist() == [1.0, 2.0] and x[1].item() == 2.0, "tolist / item")
    e.check(float(x.sum()) == 3.0 and bool(x[0] == 1.0), "float() / bool()")
    message = ("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the "
               "tensor to host memory first.")
    e.raises(TypeError, message, x.numpy, "numpy()")
    e.raises(TypeError, message, y.numpy, "numpy() of a tensor requiring grad: device first")
    e.raises(TypeError, message, lambda: np.asarray(x), "np.asarray")
    e.check(np.array_equal(x.numpy(force=True), [1.0, 2.0]), "numpy(force=True) copies")
    e.check(x.cpu().numpy().tolist() == [1.0, 2.0], ".cpu().numpy()")
    back = pickle.loads(pickle.dumps(y))
    e.check(back.is_cuda and back.requires_grad and back.tolist() == [1.0, 2.0], "pickle")
    clone = copy.deepcopy(x)
    e.check(clone.is_cuda and clone.data_ptr() != x.data_ptr() and clone.tolist() == [1, 2],
            "deepcopy")
    e.check(x.is_contiguous() and not x.expand(2, 2).is_contiguous(), "is_contiguous")


@case
def transfers(e):
    x = jitgrad.tensor([1.0, -2.0, 3.0])
    d = x.cuda()
    e.check(d.is_cuda and d.tolist() == x.tolist(), ".cuda()")
    e.check(x.to("cpu") is x and d.to("cuda") is d and d.cuda() is d, "same device: itself")
    e.check(d.to(jitgrad.device("cpu")).is_cpu and x.to("cuda:0").is_cuda, ".to(device)")
    e.check(x.to(d).is_cuda and d.to(x).is_cpu, ".to(other tensor) takes its device")
    both = x.to("cuda", jitgrad.float64)
    e.check(both.is_cuda and both.dtype == jitgrad.float64, ".to(device, dtype)")
    e.check(x.to(0).is_cuda, ".to(0): a device index")
    # autograd across devices, both ways (ToCopyBackward0)
    leaf = jitgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    moved = leaf.cuda()
    e.check(type(moved.grad_fn).__name__ == "ToCopyBackward0", "grad_fn of .cuda()")
    (moved * moved).sum().backward()
    e.check(leaf.grad is not None and leaf.grad.is_cpu and leaf.grad.tolist() == [2, 4, 6],
            f"CPU leaf through .cuda(): {leaf.grad}")
    dleaf = jitgrad.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    out = dleaf.cpu()
    e.check(out.is_cpu and type(out.grad_fn).__name__ == "ToCopyBackward0", ".cpu() grad_fn")
    (out * 3).sum().backward()
    e.check(dleaf.grad is not None and dleaf.grad.is_cuda and dleaf.grad.tolist() == [3, 3],
            f"CUDA leaf through .cpu(): {dleaf.grad}")
    # a round trip with create_graph: second derivative across devices
    a = jitgrad.tensor([2.0], requires_grad=True)
    (g,) = jitgrad.autograd.grad((a.cuda() ** 3).sum(), a, create_graph=True)
    g.sum().backward()
    e.check(g.is_cpu and a.grad.tolist() == [12.0], f"double backward across devices {a.grad}")


@case
def shared_memory(e):
    from numba import cuda
    array = cuda.to_device(np.arange(4.0))
    shared = jitgrad.as_tensor(array)
    e.check(shared.is_cuda and shared.tolist() == [0, 1, 2, 3], "as_tensor(device array)")
    shared.mul_(2.0)
    e.check(array.copy_to_host().tolist() == [0, 2, 4, 6], "as_tensor shares the memory")
    copied = jitgrad.tensor(array)
    copied.add_(1.0)
    e.check(array.copy_to_host().tolist() == [0, 2, 4, 6], "tensor(device array) copies")
    cast = jitgrad.as_tensor(array, dtype=jitgrad.float32)
    e.check(cast.is_cuda and cast.dtype == jitgrad.float32, "as_tensor(dtype=) on the device")
    x = jitgrad.ones(2, device="cuda")
    e.check(not hasattr(jitgrad.ones(2), "__cuda_array_interface__"),
            "a CPU tensor has no __cuda_array_interface__")
    e.raises(RuntimeError, "Can't get __cuda_array_interface__ on Variable that requires grad",
             lambda: jitgrad.ones(2, device="cuda", requires_grad=True).__cuda_array_interface__,
             "interface of a tensor requiring grad")
    if hasattr(x._data, "__cuda_array_interface__"):   # a real device; the simulator has none
        interface = x.__cuda_array_interface__
        e.check(interface["shape"] == (2,) and interface["typestr"] == "<f4", "interface")
    # numba kernels take CUDA tensors' arrays directly; in-place changes are seen
    view = jitgrad.as_tensor(x._data)
    view.add_(1.0)
    e.check(x.tolist() == [2.0, 2.0], "as_tensor(tensor's array) aliases it")


@case
def mixed_devices(e):
    c = jitgrad.ones(3, device="cuda")
    h = jitgrad.ones(3)
    e.raises(RuntimeError, MIXED.format("cuda:0", "cpu"), lambda: c + h, "cuda + cpu")
    e.raises(RuntimeError, MIXED.format("cpu", "cuda:0"), lambda: h * c, "cpu * cuda")
    e.raises(RuntimeError, MIXED.format("cuda:0", "cpu"), lambda: jitgrad.where(c > 0, c, h),
             "where")
    e.raises(RuntimeError, MIXED.format("cpu", "cuda:0"), lambda: h.add_(c), "cpu.add_(cuda)")
    e.raises(RuntimeError, "Expected all tensors to be on the same device, but got mat2 is on "
             "cpu, different from other tensors on cuda:0 (when checking argument in method "
             "wrapper_CUDA_mm)", lambda: jitgrad.ones(2, 2, device="cuda") @ jitgrad.ones(2, 2),
             "mm")
    e.raises(RuntimeError, "invalid gradient at index 0 - expected device cuda:0 but got cpu",
             lambda: jitgrad.ones(2, device="cuda", requires_grad=True).backward(
                 jitgrad.ones(2)), "backward with a CPU gradient")
    # a CPU 0-dim tensor is a scalar to a CUDA op (and gets its gradient back on the CPU)
    s = jitgrad.tensor(2.0, requires_grad=True)
    r = c * s
    e.check(r.is_cuda and r.tolist() == [2.0, 2.0, 2.0], "CPU scalar tensor * CUDA tensor")
    r.sum().backward()
    e.check(s.grad is not None and s.grad.is_cpu and s.grad.item() == 3.0,
            f"gradient of the CPU scalar {s.grad}")
    # copy_ and setitem copy across devices
    h2 = jitgrad.zeros(3)
    h2.copy_(c)
    e.check(h2.tolist() == [1, 1, 1], "cpu.copy_(cuda)")
    c2 = jitgrad.zeros(2, 3, device="cuda")
    c2[0] = jitgrad.tensor([1.0, 2.0, 3.0])
    e.check(c2.tolist() == [[1, 2, 3], [0, 0, 0]], "cuda[0] = cpu tensor")


# -- eager ops -------------------------------------------------------------------------------
def _arr(*shape, seed=0, dtype=np.float32, positive=False):
    a = rng(seed).standard_normal(shape).astype(dtype)
    return np.abs(a) + 0.5 if positive else a


ELEMENTWISE = {
    "unary": (lambda x: (x.exp() + x.sin() * x.cos() - x.tanh() + x.sigmoid() + x.relu()
                         + x.abs() - (-x)), [_arr(3, 4)]),
    "log_sqrt": (lambda x: x.log() + x.sqrt() + x.rsqrt() + x.log1p() + x.reciprocal(),
                 [_arr(3, 4, positive=True)]),
    "broadcast_binary": (lambda x, y, z: (x + y) * z - x / (y * y + 1) + jitgrad.maximum(x, z),
                         [_arr(3, 4), _arr(4, seed=1), _arr(3, 1, seed=2)]),
    "scalars": (lambda x: 2 - x * 3.5 + x ** 2 + 2.0 ** x - 1 / (x * x + 1) + x.clamp(-0.5, 0.5),
                [_arr(2, 3)]),
    "where_compare": (lambda x, y: jitgrad.where(x > y, x, y * 2) + (x >= 0).float()
                      + jitgrad.where(x < 0, 0.0, x), [_arr(3, 4), _arr(3, 4, seed=1)]),
    "float64": (lambda x, y: (x * y).tanh() + x.pow(3),
                [_arr(4, dtype=np.float64), _arr(4, seed=1, dtype=np.float64)]),
    "mixed_dtypes": (lambda x, y: x * y + y, [_arr(3), _arr(3, seed=1, dtype=np.float64)]),
    "int_promotion": (lambda i, x: i * x + i + (i * 2).float() / 3, [
        np.array([1, 2, 3], dtype=np.int64), _arr(3)]),
}
REDUCTIONS = {
    "sum_mean": (lambda x: (x.sum(), x.sum(1), x.mean(0, keepdim=True), x.sum((0, 2))),
                 [_arr(2, 3, 4)]),
    "amax_amin_prod": (lambda x: (x.amax(), x.amax(-1), x.amin(0), x.prod(1), x.max()),
                       [_arr(3, 5)]),
    "var_norm_logsumexp": (lambda x: (x.var(1), x.std(), x.norm(), x.logsumexp(1)),
                           [_arr(4, 6)]),
    "softmax": (lambda x: (F.softmax(x, dim=-1), F.log_softmax(x, dim=0)), [_arr(3, 5)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (6,), w, b),
                   [_arr(4, 6), _arr(6, seed=1), _arr(6, seed=2)]),
    "losses": (lambda x, t: (F.mse_loss(x, t), F.binary_cross_entropy_with_logits(x, t.sigmoid())),
               [_arr(4, 3), _arr(4, 3, seed=1)]),
}
MATMUL = {
    "mm": (lambda a, b: a @ b, [_arr(3, 4), _arr(4, 5, seed=1)]),
    "batched_broadcast": (lambda a, b: jitgrad.matmul(a, b), [_arr(2, 3, 4), _arr(4, 2, seed=1)]),
    "vectors": (lambda a, b, v: (a @ v, v @ b, v @ v, jitgrad.mv(a, v)),
                [_arr(3, 4), _arr(4, 2, seed=1), _arr(4, seed=2)]),
    "linear": (lambda x, w, b: F.linear(x, w, b).relu(),
               [_arr(5, 3), _arr(4, 3, seed=1), _arr(4, seed=2)]),
}
MOVEMENT = {
    "reshape_view": (lambda x: (x.reshape(6, 2) * 2, x.view(-1).exp(), x.flatten()),
                     [_arr(3, 4)]),
    "permute_transpose": (lambda x: (x.permute(2, 0, 1) * 1.5, x.transpose(0, 2).sum(0), x.T),
                          [_arr(2, 3, 4)]),
    "permute_then_reshape": (lambda x: x.permute(1, 0).reshape(-1) * x.t().flatten(),
                             [_arr(3, 4)]),
    "expand": (lambda x: (x.expand(3, 4) * 2, x.expand(2, 3, 4).sum()), [_arr(3, 1)]),
    "getitem": (lambda x: (x[1], x[:, 1:3] * 2, x[None, ..., ::2], x[-1, -1], x[0:2, None]),
                [_arr(3, 4)]),
    "cat_stack": (lambda x, y: (jitgrad.cat([x, y], 1), jitgrad.stack([x, x * 2], 0),
                                x.unsqueeze(0).squeeze()), [_arr(2, 3), _arr(2, 2, seed=1)]),
    "split_chunk": (lambda x: tuple(p * (i + 1) for i, p in enumerate(x.split(2, dim=1))),
                    [_arr(3, 5)]),
    "casts": (lambda x: (x.double() * 2, x.to(jitgrad.float64).sum(), x.half().float()),
              [_arr(4)]),
}
GROUPS = {"elementwise": ELEMENTWISE, "reductions": REDUCTIONS, "matmul": MATMUL,
          "movement": MOVEMENT}


def _group_case(group):
    def run(e):
        for name, (fn, arrays) in GROUPS[group].items():
            compare_fn(e, name, fn, arrays, rtol=2e-3 if name == "casts" else 1e-5)
    run.__name__ = f"ops_{group}"
    return run


for _group in GROUPS:
    case(_group_case(_group))


@case
def inplace_and_views(e):
    def fn(x, y):
        base = x * 1.0
        base[0].mul_(2.0)                 # in place through a view: CopySlices
        base[:, 1] += y                   # through a column view (strided)
        base.t()[2].sigmoid_()            # through a transposed view
        z = base.clone()
        z[1:, :2] = 0.5                   # setitem of a scalar into a region
        z[0] = y[:3] * 3                  # setitem of a tensor
        w = x.detach().clone()
        w.clamp_(-0.5, 0.5)
        return base, z, base.exp() * w
    compare_fn(e, "inplace", fn, [_arr(3, 3), _arr(3, seed=1)])
    x = jitgrad.zeros(2, 3, device="cuda")
    v = x[1]
    v.fill_(4.0)
    e.check(x.tolist() == [[0, 0, 0], [4, 4, 4]] and x._version == 1 and v._version == 1,
            f"a view's in-place op writes the base and shares its version {x.tolist()}")
    x.zero_()
    e.check(v.tolist() == [0, 0, 0], "the base's in-place op is seen by its view")
    e.raises(RuntimeError, "more than one element of the written-to tensor refers to a single "
             "memory location", lambda: jitgrad.zeros(1, device="cuda").expand(3).add_(1.0),
             "in-place on an expanded view")
    e.raises(RuntimeError, "output with shape [3] doesn't match the broadcast shape [2, 3]",
             lambda: jitgrad.zeros(3, device="cuda").add_(jitgrad.ones(2, 3, device="cuda")),
             "in-place broadcast error")
    i = jitgrad.arange(3, device="cuda")
    e.raises(RuntimeError, "result type Float can't be cast to the desired output type Long",
             lambda: i.mul_(1.5), "in-place dtype error")


@case
def edge_cases(e):
    x = jitgrad.arange(6.0, device="cuda")
    x[1:] = x[:-1]                    # overlapping source and target: read first
    e.check(x.tolist() == [0, 0, 1, 2, 3, 4], f"overlapping assignment {x.tolist()}")
    z = jitgrad.zeros(0, 3, device="cuda")
    e.check((z + 1).shape == (0, 3) and z.sum().item() == 0 and z.sum(0).tolist() == [0] * 3,
            "empty tensors")
    s = jitgrad.tensor(3.0, device="cuda", requires_grad=True)
    (s * s + 1).backward()
    e.check(s.grad.item() == 6.0 and s.grad.shape == (), "0-dim tensors")
    b = jitgrad.tensor([True, False], device="cuda")
    e.check((~b).tolist() == [False, True] and b.sum().item() == 1 and
            (b & jitgrad.ones(2, device="cuda").bool()).tolist() == [True, False], "bool ops")
    i = jitgrad.arange(4, device="cuda")
    e.check((i * 3 - 1).tolist() == [-1, 2, 5, 8] and (i / 2).tolist() == [0, 0.5, 1, 1.5] and
            i.dtype == jitgrad.int64 and i.sum().item() == 6, "int64 ops")
    e.check(jitgrad.result_type(i, 2.5) == jitgrad.float32, "result_type of a CUDA tensor")
    w = jitgrad.ones(2, device="cuda", requires_grad=True)

    def assign_grad():
        w.grad = jitgrad.ones(2)
    e.raises(RuntimeError, "assigned grad has data located on a different device", assign_grad,
             "a CPU .grad for a CUDA tensor")
    model = jitgrad.nn.Linear(3, 2)
    weight = model.weight
    model.cuda()
    out = model(jitgrad.ones(4, 3, device="cuda"))
    e.check(model.weight is weight and weight.is_cuda and out.is_cuda and out.shape == (4, 2),
            "Module.cuda() moves the parameters in place")
    out.sum().backward()
    e.check(weight.grad.is_cuda and weight.grad.tolist() == [[4.0] * 3] * 2,
            "a Linear layer's gradient on the device")
    e.check(model.cpu().weight.is_cpu, "Module.cpu()")


@case
def autograd_semantics(e):
    x = jitgrad.tensor([1.0, 2.0, 3.0], device="cuda", requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    first = x.grad
    y.backward()
    e.check(x.grad is first and x.grad.tolist() == [4, 8, 12] and x.grad.is_cuda,
            f"accumulation into the same .grad {x.grad}")
    e.check(first._version == 1, f".grad accumulated in place (version {first._version})")
    e.raises(RuntimeError, "Trying to backward through the graph a second time",
             y.backward, "retain_graph")
    z = (x * x.detach()).sum()
    x.grad = None
    z.backward()
    e.check(x.grad.tolist() == [1, 2, 3], f"detach cuts the gradient {x.grad}")
    s = x.sigmoid()
    s.mul_(2.0)
    e.raises(RuntimeError, "one of the variables needed for gradient computation has been "
             "modified by an inplace operation: [torch.cuda.FloatTensor [3]], which is output 0 "
             "of SigmoidBackward0, is at version 1; expected version 0 instead",
             lambda: s.sum().backward(), "version counter")
    x.grad = None
    with jitgrad.no_grad():
        n = x * 2
    e.check(not n.requires_grad and n.grad_fn is None, "no_grad")
    # create_graph: second derivative on the device
    (g,) = jitgrad.autograd.grad((x ** 3).sum(), x, create_graph=True)
    e.check(g.is_cuda and g.grad_fn is not None, "create_graph gives a graph")
    g.sum().backward()
    e.check(x.grad.tolist() == [6, 12, 18], f"double backward {x.grad}")
    # hooks and retain_grad
    x.grad = None
    h = x * 2
    h.retain_grad()
    h.register_hook(lambda grad: grad * 10)
    (h * h).sum().backward()
    e.check(h.grad.is_cuda and h.grad.tolist() == [40, 80, 120], f"retain_grad {h.grad}")
    e.check(x.grad.tolist() == [80, 160, 240], f"hook replaced the gradient {x.grad}")
    # autograd.grad, allow_unused / materialize_grads
    u = jitgrad.ones(2, device="cuda", requires_grad=True)
    (gx, gu) = jitgrad.autograd.grad(x.sum(), (x, u), materialize_grads=True)
    e.check(gu.is_cuda and gu.tolist() == [0, 0] and gx.tolist() == [1, 1, 1],
            "materialize_grads zeros on the device")
    # custom Function on the device
    class Double(jitgrad.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2
    x.grad = None
    Double.apply(x).sum().backward()
    e.check(x.grad.tolist() == [2, 2, 2], f"custom Function {x.grad}")


@case
def unsupported(e):
    x = jitgrad.ones(2, 3, device="cuda")
    e.raises(NotImplementedError, "'max_dim' is not supported on CUDA yet",
             lambda: x.max(dim=1), "max(dim)")
    e.raises(NotImplementedError, "not supported on CUDA yet",
             lambda: x[jitgrad.tensor([0, 1], device="cuda")], "advanced indexing")
    e.raises(NotImplementedError, "not supported on CUDA yet", lambda: x[:, ::-1],
             "negative step")
    e.raises(NotImplementedError, "'remainder' is not supported on CUDA yet", lambda: x % 2,
             "remainder")
    e.check(x.__dlpack_device__() == (2, 0), "__dlpack_device__ of a CUDA tensor")
    e.raises(BufferError, "DLPack exchange of CUDA tensors is not supported yet",
             x.__dlpack__, "DLPack export of a CUDA tensor")
    w = jitgrad.ones(2, device="cuda", requires_grad=True)
    e.raises(NotImplementedError, "gradcheck is not supported on CUDA yet",
             lambda: jitgrad.autograd.gradcheck(lambda t: t * 2, (w,)), "gradcheck")


@case
def index_and_logical_reductions(e):
    # argmax / argmin (ties: the first index; NaN: the first NaN, as PyTorch), all / any
    x = np.array([[1.0, 3.0, 3.0, -2.0], [np.nan, 0.0, 5.0, np.nan], [4.0, 4.0, 0.0, -7.0]],
                 dtype=np.float32)
    ints = np.array([[2, 9, 9], [0, -1, 0]], dtype=np.int64)
    flags = np.array([[True, False, True], [True, True, True]])
    for label, array in [("float", x), ("int", ints), ("bool", flags)]:
        cpu, dev = jitgrad.tensor(array), jitgrad.tensor(array, device="cuda")
        for name in ("argmax", "argmin", "all", "any"):
            for kwargs in ({}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": -1},
                           {"keepdim": True} if name in ("argmax", "argmin") else {"dim": 1}):
                if name in ("all", "any") and "dim" not in kwargs:
                    kwargs = {}
                want = getattr(cpu, name)(**kwargs)
                got = getattr(dev, name)(**kwargs)
                e.close(got, want, f"{label} {name}({kwargs})", rtol=0)
    e.raises(IndexError, "Expected reduction dim to be specified",
             jitgrad.zeros(0, device="cuda").argmax, "argmax of an empty tensor")


@case
def class_index_losses(e):
    logits, labels = _arr(5, 4), np.array([0, 3, 1, 3, 2])
    for label, fn in [
            ("cross_entropy", lambda x, y: F.cross_entropy(x, y)),
            ("cross_entropy sum, ignore_index", lambda x, y: F.cross_entropy(
                x, y, reduction="sum", ignore_index=3)),
            ("label_smoothing", lambda x, y: F.cross_entropy(x, y, label_smoothing=0.1)),
            ("nll_loss none", lambda x, y: F.nll_loss(F.log_softmax(x, 1), y,
                                                      reduction="none"))]:
        compare_fn(e, label, fn, [logits, labels])
    compiled = jitgrad.compile(lambda x, y: F.cross_entropy(x, y), fullgraph=True)
    _, (x, y) = host_and_device(logits, labels)
    want = F.cross_entropy(jitgrad.tensor(logits), jitgrad.tensor(labels))
    e.close(compiled(x, y), want, "compiled cross_entropy")
    bad = jitgrad.tensor([0, 4, 1, 3, 2], device="cuda")
    e.raises(IndexError, "Target 4 is out of bounds.",
             lambda: F.cross_entropy(x, bad), "label out of range")


@case
def optimizers(e):
    # SGD (momentum, nesterov, weight decay, maximize) and Adam (amsgrad) on CUDA parameters
    # follow the same steps on CPU parameters
    arrays = [_arr(3, 4), _arr(4, seed=1)]
    for label, make in [
            ("SGD", lambda ps: jitgrad.optim.SGD(ps, lr=0.1)),
            ("SGD momentum", lambda ps: jitgrad.optim.SGD(ps, lr=0.1, momentum=0.9,
                                                          nesterov=True, weight_decay=0.01)),
            ("SGD maximize", lambda ps: jitgrad.optim.SGD(ps, lr=0.1, momentum=0.5,
                                                          dampening=0.2, maximize=True)),
            ("Adam", lambda ps: jitgrad.optim.Adam(ps, lr=0.01, amsgrad=True,
                                                   weight_decay=0.1))]:
        cpu, dev = host_and_device(*arrays)
        opts = make(cpu), make(dev)
        for step in range(3):
            for params, opt in zip((cpu, dev), opts):
                opt.zero_grad(set_to_none=step != 1)
                ((params[0] * params[1]).tanh() * (step + 1)).sum().backward()
                opt.step()
            for k, (c, d) in enumerate(zip(cpu, dev)):
                e.close(d, c, f"{label} step {step} param {k}")
        e.check(dev[0]._version == cpu[0]._version,
                f"{label}: version {dev[0]._version} vs {cpu[0]._version}")


# -- compiled CUDA -------------------------------------------------------------------------
def mlp(x, w1, b1, w2, b2, target):
    h = (x @ w1 + b1).tanh()
    out = h @ w2 + b2
    return ((out - target) ** 2).mean()


def softmax_layer_norm(x, w, b):
    p = F.softmax(x, dim=-1)
    return F.layer_norm(p * x, (x.shape[-1],), w, b).sum(0)


MLP_ARRAYS = [_arr(8, 6), _arr(6, 12, seed=1) * 0.5, _arr(12, seed=2),
              _arr(12, 3, seed=3) * 0.5, _arr(3, seed=4), _arr(8, 3, seed=5)]


def _compiled_vs_eager(e, label, fn, arrays, **options):
    cpu, dev = host_and_device(*arrays)
    compiled = jitgrad.compile(fn, fullgraph=True, **options)
    got = compiled(*dev)
    want = fn(*cpu)
    e.close(got, want, f"{label} forward")
    e.check(type(got.grad_fn).__name__ == "CompiledFunctionBackward",
            f"{label}: grad_fn {type(got.grad_fn).__name__}")
    seed = rng(3).standard_normal(tuple(want.shape)).astype(np.float32)
    got.backward(jitgrad.tensor(seed, device="cuda"))
    want.backward(jitgrad.tensor(seed))
    for k, (c, d) in enumerate(zip(cpu, dev)):
        e.close(d.grad, c.grad, f"{label} grad {k}")
    (variant,) = compiled.variants.values()
    e.check(variant.backend == "cuda", f"{label}: backend {variant.backend}")
    from compiler.cuda_executor import CudaProgram
    e.check(isinstance(variant.forward, CudaProgram) and isinstance(variant.backward,
                                                                    CudaProgram),
            f"{label}: programs are not CUDA programs")
    return compiled, dev


@case
def compiled_mlp(e):
    compiled, dev = _compiled_vs_eager(e, "mlp", mlp, MLP_ARRAYS)
    # training steps: the compiled device step follows the eager CPU one
    cpu, _ = host_and_device(*MLP_ARRAYS)
    params_cpu, params_dev = cpu[1:5], dev[1:5]
    for p in params_cpu + params_dev:
        p.grad = None
    for step in range(3):
        loss_cpu = mlp(*cpu)
        loss_dev = compiled(*dev)
        e.close(loss_dev, loss_cpu, f"step {step} loss")
        loss_cpu.backward()
        loss_dev.backward()
        with jitgrad.no_grad():
            for p in params_cpu + params_dev:
                p -= 0.1 * p.grad
                p.grad = None
    e.check(len(compiled.variants) == 1, "one variant for the training steps")


@case
def compiled_softmax_layer_norm(e):
    _compiled_vs_eager(e, "softmax+layer_norm", softmax_layer_norm,
                       [_arr(4, 7), _arr(7, seed=1), _arr(7, seed=2)])
    # backend="cuda" explicitly; CPU inputs are refused
    _compiled_vs_eager(e, "explicit backend", lambda x: (x.exp() * x).sum(1),
                       [_arr(3, 5)], backend="cuda")
    e.raises(RuntimeError, "move them to the device",
             lambda: jitgrad.compile(lambda x: x * 2, backend="cuda")(jitgrad.ones(2)),
             "backend='cuda' with CPU inputs")


@case
def compiled_semantics(e):
    def fn(x, y):
        return (x * y.detach()).sin() * y
    x = jitgrad.tensor([0.5, 1.0, 1.5], device="cuda", requires_grad=True)
    y = jitgrad.tensor([2.0, -1.0, 0.25], device="cuda", requires_grad=True)
    compiled = jitgrad.compile(fn)
    out = compiled(x, y)
    out.sum().backward(retain_graph=True)
    gx, gy = x.grad.cpu(), y.grad.cpu()
    xc = jitgrad.tensor([0.5, 1.0, 1.5], requires_grad=True)
    yc = jitgrad.tensor([2.0, -1.0, 0.25], requires_grad=True)
    fn(xc, yc).sum().backward()
    e.check(np.allclose(gx.numpy(), xc.grad.numpy(), atol=1e-6) and
            np.allclose(gy.numpy(), yc.grad.numpy(), atol=1e-6), "detach cut in compiled fn")
    out.sum().backward()            # retained: a second backward works, then frees
    e.raises(RuntimeError, "Trying to backward through the graph a second time",
             lambda: out.sum().backward(), "retain_graph lifetime")
    out2 = compiled(x, y)
    with jitgrad.no_grad():
        y.mul_(2.0)
    e.raises(RuntimeError, "modified by an inplace operation", lambda: out2.sum().backward(),
             "version check of a saved input")
    # double backward through the eager fallback
    z = jitgrad.tensor([0.5, 1.0], device="cuda", requires_grad=True)
    cube = jitgrad.compile(lambda t: (t ** 3).sum())
    (g,) = jitgrad.autograd.grad(cube(z), z, create_graph=True)
    g.sum().backward()
    e.check(z.grad.is_cuda and np.allclose(z.grad.cpu().numpy(), [3.0, 6.0]),
            f"double backward {z.grad}")
    e.check(all(v.backend == "cuda" for v in compiled.variants.values()), "auto CUDA backend")
    # inputs on both devices (a CPU scalar tensor among CUDA ones): run eagerly, as eager does
    mixed = jitgrad.compile(lambda a, s: a * s)
    r = mixed(x, jitgrad.tensor(2.0))
    e.check(r.is_cuda and r.tolist() == [1.0, 2.0, 3.0] and not mixed.variants and
            any("both" in text or "CUDA" in text for _, text in mixed.events),
            f"mixed-device inputs run eagerly: {mixed.events}")
    e.raises(RuntimeError, MIXED.format("cuda:0", "cpu"),
             lambda: mixed(x, jitgrad.ones(3)), "mixed devices: the eager error")


class _Layout:
    """Shape and dtype of a device argument, for building one-op graphs without a device."""
    __cuda_ndarray__ = True

    def __init__(self, shape, dtype):
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), len(shape)


def _ptx_ops():
    """(label, op, args, attrs): one-op programs of the eager device path, typed as they come."""
    f32, f64, f16, i64, b = (np.float32, np.float64, np.float16, np.int64, np.bool_)
    from jitgrad.ops import REGISTRY
    ops = []
    for name, spec in REGISTRY.items():
        if spec.kind != "elementwise" or spec.template is None or \
                name in ("remainder", "floor_divide", "clamp", "to_dtype", "where"):
            continue
        dtype = b if name.startswith("logical") or name == "bitwise_not" else \
            i64 if name.startswith("bitwise") else f32
        args = [_Layout((3, 4), dtype)]
        if "{1}" in spec.template:
            args.append(_Layout((4,), dtype))
        ops.append((name, name, args, {}))
    x = _Layout((3, 4), f32)
    ops += [
        ("scalar mul", "mul", [x, 2.5], {}), ("scalar rsub int", "rsub", [x, 2], {}),
        ("scalar pow", "pow", [x, 2], {}), ("scalar base pow", "pow", [2.0, x], {}),
        ("clamp", "clamp", [x], {"min": -0.5, "max": 0.5}),
        ("where scalar", "where", [_Layout((3, 4), b), x, 0.0], {}),
        ("to float64", "to_dtype", [x], {"dtype": np.dtype(f64)}),
        ("to bool", "to_dtype", [x], {"dtype": np.dtype(b)}),
        ("int to float", "to_dtype", [_Layout((3,), i64)], {"dtype": np.dtype(f32)}),
        ("int ops", "mul", [_Layout((3,), i64), 3], {}),
        ("int div", "div", [_Layout((3,), i64), 2], {}),
        ("mixed dtypes", "add", [x, _Layout((4,), f64)], {}),
        ("half", "mul", [_Layout((3,), f16), _Layout((3,), f16)], {}),
        ("half exp", "exp", [_Layout((3,), f16)], {}),
        ("fill", "fill", [x, 1.5], {}), ("fill int", "fill", [_Layout((3,), i64), 0], {}),
        ("compare scalar", "gt", [x, 0.5], {}),
        ("sum rows", "sum", [x], {"dim": (1,), "keepdim": False}),
        ("sum total", "sum", [x], {"dim": None, "keepdim": False}),
        ("mean keepdim", "mean", [x], {"dim": (0,), "keepdim": True}),
        ("amax", "amax", [x], {"dim": (1,), "keepdim": True}),
        ("amin total", "amin", [x], {"dim": None, "keepdim": False}),
        ("sum int", "sum", [_Layout((3, 4), i64)], {"dim": None, "keepdim": False}),
        ("sum bool", "sum", [_Layout((3, 4), b)], {"dim": (1,), "keepdim": False}),
        ("sum_to_size", "sum_to_size", [x], {"shape": (1, 4)}),
    ]
    return ops


def ptx_main(names):
    """Compile the kernels of one-op device programs (every elementwise op with a template,
    scalars, casts, int / bool / half dtypes, fused reductions) and the copy and fill kernels
    for every dtype the device path moves, with Numba's real CUDA compiler for compute
    capability 8.0 (libNVVM, no GPU). JSON: label -> errors."""
    import numba
    from cuda_sim_cases import arr, compile_ptx, ptx_program, ptx_setup
    if not ptx_setup():
        return
    from compiler import cuda_eager
    from compiler.codegen import cuda_runtime
    from compiler.passes.fusion import fuse
    from jitgrad.ops import REGISTRY
    results = {}
    for label, op, args, attrs in _ptx_ops():
        if names and label not in names:
            continue
        errors = []
        try:
            graph, _ = cuda_eager.op_graph(REGISTRY[op], args, attrs)
            inputs = {r.id for r in graph.inputs}
            ptx_program(graph, fuse(graph, inputs, graph.outputs, prefix="e"))
        except Exception:  # noqa: BLE001 - reported per op
            errors.append(traceback.format_exc())
        results[label] = errors
    errors = []
    i64 = numba.int64
    for dtype in (np.int64, np.int32, np.bool_, np.float16):
        try:
            compile_ptx(cuda_runtime.strided_copy, [arr(dtype)] * 2 + [arr(np.int64)] * 3 +
                        [i64] * 4)
            compile_ptx(cuda_runtime.fill, [arr(dtype), numba.from_dtype(np.dtype(dtype)), i64])
        except Exception:  # noqa: BLE001
            errors.append(f"{np.dtype(dtype).name}: {traceback.format_exc()}")
    results["copy and fill"] = errors
    report(results)


def main(names):
    import simulator
    simulator.prepare("tests/test_cuda_eager.py")
    from compiler import cuda_eager
    cuda_eager.OPTIONS.update(threads=32, max_blocks=4, tile=8)
    results = {}
    for name in names or list(CASES):
        start = time.perf_counter()
        errors = Errors()
        try:
            CASES[name](errors)
        except Exception:  # noqa: BLE001 - reported per case
            errors.append(traceback.format_exc())
        results[name] = {"ok": not errors, "errors": list(errors),
                         "seconds": round(time.perf_counter() - start, 2)}
    report(results)


if __name__ == "__main__":
    script(main, ptx_main)
