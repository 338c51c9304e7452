"""Random straight-line programs for differential fuzzing (tests/test_fuzz.py).

A `Program` is data: input specs, a list of op records and the ids of its outputs.  It renders
to readable Python source written against a module `T` (`jitgrad` or `torch`); that source is
what runs, so a failure prints exactly the program that diverged, with its seed.

Programs are valid by construction: the generator tracks every value's shape and a conservative
interval of its values, and only picks ops whose preconditions hold (broadcastable shapes,
positive arguments for sqrt/log, small arguments for exp, divisors away from zero).  Ops with
kinks or branches (relu, abs, clamp, maximum/minimum, where, amax/amin) are recorded with the
points they branch at, so a run can measure how close the inputs came (`kink_margin`): two
libraries rounding differently may land on different sides of a near tie, which is not a bug.

This module imports neither jitgrad nor torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

UNARY_ANY = ("tanh", "sigmoid", "sin", "cos", "relu", "abs", "neg_scalar", "clamp")
REDUCTIONS = ("sum", "mean", "amax", "amin", "logsumexp", "softmax", "log_softmax")
MOVEMENT = ("reshape", "permute", "transpose", "unsqueeze", "squeeze", "expand", "slice")
BACKWARD_MODES = ("backward", "retain", "double", "second_no_retain")


@dataclass(frozen=True)
class Input:
    vid: int                 # value id (inputs may be created between ops, e.g. matmul weights)
    shape: tuple
    dtype: str
    requires_grad: bool
    lo: float
    hi: float


@dataclass(frozen=True)
class Op:
    out: int                 # value id
    kind: str
    args: tuple              # value ids
    params: tuple = ()       # hashable parameters
    no_grad: bool = False    # run inside `with T.no_grad():`


@dataclass(frozen=True)
class Program:
    seed: int
    inputs: tuple            # Input records
    ops: tuple               # Op records
    outputs: tuple           # value ids returned
    mode: str = "backward"   # one of BACKWARD_MODES

    @property
    def dtype(self) -> str:
        """The lowest precision among the inputs (what tolerances follow)."""
        return "float32" if any(i.dtype == "float32" for i in self.inputs) else "float64"

    def source(self, intermediates: bool = False) -> str:
        _a.inputs = {i.vid for i in self.inputs}
        names = [f"x{i.vid}" for i in self.inputs]
        lines = [f"def prog({', '.join(names)}):"]
        for op in self.ops:
            expr = render_op(op)
            if op.no_grad:
                lines.append("    with T.no_grad():")
                lines.append(f"        v{op.out} = {expr}")
            else:
                lines.append(f"    v{op.out} = {expr}")
        outs = ", ".join(_name(self, o) for o in self.outputs)
        if intermediates:
            every = ", ".join(_name(self, i) for i in self.vids())
            lines.append(f"    return [{outs}], [{every}]")
        else:
            lines.append(f"    return [{outs}]")
        return "\n".join(lines) + "\n"

    def vids(self) -> list:
        """Every value id, ascending (the order of `source(intermediates=True)`'s second list)."""
        return sorted([i.vid for i in self.inputs] + [o.out for o in self.ops])

    def describe(self) -> str:
        ins = "\n".join(f"#   x{i.vid}: shape={i.shape} {i.dtype} requires_grad={i.requires_grad} "
                        f"values in [{i.lo}, {i.hi}]" for i in self.inputs)
        return (f"# seed={self.seed} mode={self.mode}\n{ins}\n" + self.source())

    def build(self, T, intermediates: bool = False):
        ns = {"T": T}
        exec(compile(self.source(intermediates), f"<fuzz program seed={self.seed}>", "exec"), ns)
        return ns["prog"]


def _name(prog: Program, vid: int) -> str:
    return f"x{vid}" if any(i.vid == vid for i in prog.inputs) else f"v{vid}"


def _a(vid):
    return f"x{vid}" if vid in _a.inputs else f"v{vid}"


_a.inputs = set()


def render_op(op: Op) -> str:
    a = [_a(v) for v in op.args]
    k, p = op.kind, op.params
    if k in ("add", "sub", "mul", "div"):
        sym = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[k]
        if len(a) == 2:
            return f"{a[0]} {sym} {a[1]}"
        scalar, right = p
        return f"{a[0]} {sym} {scalar!r}" if right else f"{scalar!r} {sym} {a[0]}"
    if k == "neg_scalar":
        return f"-{a[0]} * {p[0]!r}"
    if k in ("exp", "tanh", "sigmoid", "sin", "cos", "relu", "abs", "sqrt", "log"):
        return f"T.{k}({a[0]})" if p and p[0] == "fn" else f"{a[0]}.{k}()"
    if k == "pow":
        return f"{a[0]} ** {p[0]!r}"
    if k == "clamp":
        return f"T.clamp({a[0]}, min={p[0]!r}, max={p[1]!r})"
    if k in ("maximum", "minimum"):
        return f"T.{k}({a[0]}, {a[1]})"
    if k == "where":
        return f"T.where({a[0]} > {p[0]!r}, {a[0]}, {a[1]})"
    if k in ("sum", "mean", "amax", "amin", "logsumexp"):
        dim, keep = p
        if dim is None:
            return f"{a[0]}.{k}()"
        return f"{a[0]}.{k}(dim={dim!r}, keepdim={keep!r})" if k != "logsumexp" else \
            f"T.logsumexp({a[0]}, dim={dim!r}, keepdim={keep!r})"
    if k in ("softmax", "log_softmax"):
        return f"T.{k}({a[0]}, dim={p[0]!r})"
    if k == "reshape":
        return f"{a[0]}.reshape({p[0]!r})"
    if k == "permute":
        return f"{a[0]}.permute({p[0]!r})"
    if k == "transpose":
        return f"{a[0]}.transpose({p[0]}, {p[1]})"
    if k == "unsqueeze":
        return f"{a[0]}.unsqueeze({p[0]})"
    if k == "squeeze":
        return f"{a[0]}.squeeze({p[0]})"
    if k == "expand":
        return f"{a[0]}.expand({p[0]!r})"
    if k == "slice":
        dim, start, stop = p
        return f"{a[0]}[{':, ' * dim}{start}:{stop}]"
    if k == "matmul":
        return f"{a[0]} @ {a[1]}"
    if k == "detach":
        return f"{a[0]}.detach()"
    if k == "data":
        return f"{a[0]}.data"
    raise ValueError(k)




# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------

@dataclass
class _Val:
    shape: tuple
    lo: float
    hi: float


@dataclass
class _Gen:
    rng: np.random.Generator
    dtype: str
    avoid: tuple = ()
    inputs: list = field(default_factory=list)
    ops: list = field(default_factory=list)
    vals: list = field(default_factory=list)

    def new_input(self, shape, lo=None, hi=None, same_dtype=False):
        r = self.rng
        if lo is None:
            lo, hi = [(-2.0, 2.0), (0.5, 2.0), (-1.0, 1.0), (0.3, 1.5)][r.integers(4)]
        dtype = self.dtype
        if same_dtype and self.inputs:
            dtype = self.inputs[0].dtype
        elif r.random() < 0.1:
            dtype = "float64" if dtype == "float32" else "float32"
        self.inputs.append(Input(len(self.vals), tuple(shape), dtype,
                                 bool(not self.inputs or r.random() < 0.75), lo, hi))
        self.vals.append(_Val(tuple(shape), lo, hi))
        return len(self.vals) - 1

    def emit(self, kind, args, params, shape, lo, hi, no_grad=False):
        vid = len(self.vals)
        self.ops.append(Op(vid, kind, tuple(args), tuple(params), no_grad))
        lo, hi = float(max(lo, -1e6)), float(min(hi, 1e6))
        self.vals.append(_Val(tuple(shape), lo, hi))
        return vid


def _bshape(a, b):
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return None


def _interval(kind, a, b):
    (al, ah), (bl, bh) = a, b
    if kind == "add":
        return al + bl, ah + bh
    if kind == "sub":
        return al - bh, ah - bl
    if kind == "mul":
        c = [al * bl, al * bh, ah * bl, ah * bh]
        return min(c), max(c)
    if kind == "div":  # b excludes zero
        c = [al / bl, al / bh, ah / bl, ah / bh]
        return min(c), max(c)
    raise ValueError(kind)


def _mag(v):
    return max(abs(v.lo), abs(v.hi))


def _choose(r, seq):
    return seq[int(r.integers(len(seq)))]


def _scalar(r):
    return _choose(r, [0.5, 2.0, -1.5, 3.0, 0.25, 1.0])


def _step(g: _Gen):
    r = g.rng
    n = len(g.vals)
    # prefer recent values so programs are chains, not forests
    vid = int(max(0, n - 1 - r.geometric(0.5) + 1)) if r.random() < 0.8 else int(r.integers(n))
    v = g.vals[vid]
    no_grad = bool(r.random() < 0.05)
    big = _mag(v) > 20
    cat = r.random()
    if big:   # squash first
        kind = _choose(r, ["tanh", "sigmoid", "sin"])
        lo, hi = {"tanh": (-1, 1), "sigmoid": (0, 1), "sin": (-1, 1)}[kind]
        return g.emit(kind, [vid], [_choose(r, ["fn", "method"])], v.shape, lo, hi, no_grad)
    if cat < 0.30:  # unary elementwise
        choices = list(UNARY_ANY)
        if v.hi <= 4:
            choices.append("exp")
        if v.lo >= 0.1:
            choices += ["sqrt", "log"]
        if _mag(v) <= 4:
            choices.append("pow")
        kind = _choose(r, choices)
        form = _choose(r, ["fn", "method"])
        if kind == "tanh":
            return g.emit(kind, [vid], [form], v.shape, -1, 1, no_grad)
        if kind == "sigmoid":
            return g.emit(kind, [vid], [form], v.shape, 0, 1, no_grad)
        if kind in ("sin", "cos"):
            return g.emit(kind, [vid], [form], v.shape, -1, 1, no_grad)
        if kind == "relu":
            return g.emit(kind, [vid], [form], v.shape, max(0, v.lo), max(0, v.hi), no_grad)
        if kind == "abs":
            lo = 0 if v.lo <= 0 <= v.hi else min(abs(v.lo), abs(v.hi))
            return g.emit(kind, [vid], [form], v.shape, lo, _mag(v), no_grad)
        if kind == "exp":
            return g.emit(kind, [vid], [form], v.shape, math.exp(v.lo), math.exp(v.hi), no_grad)
        if kind == "sqrt":
            return g.emit(kind, [vid], [form], v.shape, math.sqrt(v.lo), math.sqrt(v.hi),
                          no_grad)
        if kind == "log":
            return g.emit(kind, [vid], [form], v.shape, math.log(v.lo), math.log(v.hi), no_grad)
        if kind == "neg_scalar":
            s = _scalar(r)
            lo, hi = sorted([-v.lo * s, -v.hi * s])
            return g.emit(kind, [vid], [s], v.shape, lo, hi, no_grad)
        if kind == "pow":
            exps = [2, 3, 2.0]
            if v.lo >= 0.1:
                exps += [0.5, 1.5, -1.0]
            e = _choose(r, exps)
            cands = [v.lo ** e, v.hi ** e] + ([0.0] if v.lo < 0 < v.hi else [])
            lo, hi = min(cands), max(cands)
            if e == 3:
                lo, hi = v.lo ** 3, v.hi ** 3
            return g.emit(kind, [vid], [e], v.shape, lo, hi, no_grad)
        if kind == "clamp":
            lo_c = float(np.round(r.uniform(v.lo, (v.lo + v.hi) / 2), 3))
            hi_c = float(np.round(lo_c + r.uniform(0.2, 1.5), 3))
            return g.emit(kind, [vid], [lo_c, hi_c], v.shape, lo_c, hi_c, no_grad)
    if cat < 0.55:  # binary elementwise
        partners = [u for u in range(n) if _bshape(g.vals[u].shape, v.shape) is not None
                    and len(_bshape(g.vals[u].shape, v.shape)) <= 4]
        kind = _choose(r, ["add", "sub", "mul", "div", "maximum", "minimum", "where",
                           "scalar", "scalar"])
        if kind == "scalar" or not partners:
            op = _choose(r, ["add", "sub", "mul", "div"])
            s, right = _scalar(r), bool(r.random() < 0.7)
            if op == "div" and not right and v.lo * v.hi <= 0.0 or \
                    op == "div" and not right and min(abs(v.lo), abs(v.hi)) < 0.3:
                op = "mul"
            a = (v.lo, v.hi)
            sv = (s, s)
            lo, hi = _interval(op, a, sv) if right else _interval(op, sv, a)
            return g.emit(op, [vid], [s, right], v.shape, lo, hi, no_grad)
        u = _choose(r, partners)
        w = g.vals[u]
        shape = _bshape(v.shape, w.shape)
        if kind == "div" and (w.lo * w.hi <= 0 or min(abs(w.lo), abs(w.hi)) < 0.3):
            kind = "mul"
        if kind in ("add", "sub", "mul", "div"):
            lo, hi = _interval(kind, (v.lo, v.hi), (w.lo, w.hi))
            return g.emit(kind, [vid, u], [], shape, lo, hi, no_grad)
        lo, hi = min(v.lo, w.lo), max(v.hi, w.hi)
        if kind == "where":
            t = float(np.round(r.uniform(v.lo, v.hi), 3))
            return g.emit(kind, [vid, u], [t], shape, lo, hi, no_grad)
        return g.emit(kind, [vid, u], [], shape, lo, hi, no_grad)
    if cat < 0.72:  # reduction
        if len(v.shape) == 0:
            return g.emit("tanh", [vid], ["method"], v.shape, -1, 1, no_grad)
        kind = _choose(r, list(REDUCTIONS))
        nd = len(v.shape)
        if kind in ("softmax", "log_softmax"):
            d = int(r.integers(-nd, nd))
            size = v.shape[d]
            if kind == "softmax":
                return g.emit(kind, [vid], [d], v.shape, 0, 1, no_grad)
            lo = v.lo - v.hi - math.log(max(size, 1))
            return g.emit(kind, [vid], [d], v.shape, lo, 0, no_grad)
        keep = bool(r.random() < 0.4)
        if kind in ("sum", "mean") and r.random() < 0.2:
            dims, red = None, list(range(nd))
            keep = False
        elif r.random() < 0.3 and nd >= 2 and kind != "logsumexp":
            red = sorted(r.choice(nd, size=2, replace=False).tolist())
            dims = tuple(red)
        else:
            d = int(r.integers(-nd, nd))
            red, dims = [d % nd], d
        count = int(np.prod([v.shape[i] for i in red])) if red else 1
        if keep:
            shape = tuple(1 if i in red else s for i, s in enumerate(v.shape))
        else:
            shape = tuple(s for i, s in enumerate(v.shape) if i not in red)
        if dims is None:
            shape = ()
        if kind == "sum":
            lo, hi = v.lo * count, v.hi * count
        elif kind == "logsumexp":
            lo, hi = v.lo, v.hi + math.log(max(count, 1))
        else:
            lo, hi = v.lo, v.hi
        return g.emit(kind, [vid], [dims, keep], shape, min(lo, hi), max(lo, hi), no_grad)
    if cat < 0.90:  # movement
        if "no_grad_view" in g.avoid:
            no_grad = False
        kind = _choose(r, list(MOVEMENT))
        nd = len(v.shape)
        shp = v.shape
        if kind == "reshape":
            total = int(np.prod(shp))
            divs = [d for d in range(1, total + 1) if total % d == 0]
            opts = [(-1,), (total,), (1, total)]
            dd = _choose(r, divs)
            opts.append((dd, total // dd))
            opts.append((dd, -1))
            new = _choose(r, opts)
            out = tuple(total if s == -1 and len(new) == 1 else (total // dd if s == -1 else s)
                        for s in new)
            return g.emit(kind, [vid], [new], out, v.lo, v.hi, no_grad)
        if kind == "permute" and nd >= 2:
            perm = tuple(int(i) for i in r.permutation(nd))
            return g.emit(kind, [vid], [perm], tuple(shp[i] for i in perm), v.lo, v.hi, no_grad)
        if kind == "transpose" and nd >= 2:
            d0, d1 = (int(i) for i in r.choice(nd, 2, replace=False))
            s = list(shp)
            s[d0], s[d1] = s[d1], s[d0]
            return g.emit(kind, [vid], [d0, d1], tuple(s), v.lo, v.hi, no_grad)
        if kind == "squeeze" and 1 in shp:
            d = shp.index(1)
            return g.emit(kind, [vid], [d], shp[:d] + shp[d + 1:], v.lo, v.hi, no_grad)
        if kind == "expand" and nd <= 3:
            new = tuple(int(r.integers(2, 4)) if s == 1 else s for s in shp)
            if r.random() < 0.5 or new == shp:
                new = (int(r.integers(2, 4)),) + new
            return g.emit(kind, [vid], [new], new, v.lo, v.hi, no_grad)
        if kind == "slice" and nd >= 1 and max(shp) >= 2:
            d = int(np.argmax(shp)) if r.random() < 0.5 else int(r.integers(nd))
            size = shp[d]
            if size >= 2:
                start = int(r.integers(0, size - 1))
                stop = int(r.integers(start + 1, size + 1))
                new = shp[:d] + (stop - start,) + shp[d + 1:]
                return g.emit(kind, [vid], [d, start, stop], new, v.lo, v.hi, no_grad)
        if nd < 4:
            d = int(r.integers(0, nd + 1))
            return g.emit("unsqueeze", [vid], [d], shp[:d] + (1,) + shp[d:], v.lo, v.hi,
                          no_grad)
        return g.emit("sum", [vid], [0, False], shp[1:], v.lo * shp[0], v.hi * shp[0], no_grad)
    if cat < 0.95 and len(v.shape) >= 1 and _mag(v) <= 4 and (
            "matmul_mixed_dtype" not in g.avoid or len({i.dtype for i in g.inputs}) == 1):
        # matmul with a new or an existing value
        k = v.shape[-1]
        partners = [u for u in range(n) if len(g.vals[u].shape) == 2 and g.vals[u].shape[0] == k
                    and _mag(g.vals[u]) <= 4]
        if partners and r.random() < 0.5:
            u = _choose(r, partners)
        else:
            u = g.new_input((k, int(r.integers(1, 5))), -1.0, 1.0, same_dtype=True)
        w = g.vals[u]
        m = k * _mag(v) * _mag(w)
        shape = v.shape[:-1] + (w.shape[1],)
        return g.emit("matmul", [vid, u], [], shape, -m, m, no_grad)
    if cat < 0.95:  # matmul did not fit: a squashing op instead
        return g.emit("tanh", [vid], ["method"], v.shape, -1, 1, no_grad)
    kind = "detach" if r.random() < 0.6 else "data"
    return g.emit(kind, [vid], [], v.shape, v.lo, v.hi)


# Constructs that hit known divergences (xfail regression tests in tests/test_fuzz.py); the
# generator avoids them so the fuzz run keeps finding new ones.
KNOWN_BUGS = ()


def has_cut(prog: Program) -> bool:
    """Whether the program detaches, takes .data or computes something under no_grad."""
    return any(o.no_grad or o.kind in ("detach", "data") for o in prog.ops)


def generate(seed: int, n_ops: int | None = None, shape=None, dtype: str | None = None,
             avoid=KNOWN_BUGS) -> Program:
    r = np.random.default_rng(seed)
    if dtype is None:
        dtype = "float32" if r.random() < 0.5 else "float64"
    g = _Gen(r, dtype, tuple(avoid))
    if shape is None:
        nd = int(r.integers(0, 4))
        shape = tuple(int(r.integers(1, 5)) for _ in range(nd))
    g.new_input(shape)
    for _ in range(int(r.integers(0, 3))):   # more inputs, broadcastable against the first
        sub = tuple(1 if r.random() < 0.3 else s for s in shape[len(shape) - int(
            r.integers(0, len(shape) + 1)):])
        g.new_input(sub)
    if n_ops is None:
        n_ops = int(r.integers(1, 13))
    for _ in range(n_ops):
        _step(g)
    last = len(g.vals) - 1
    outputs = [last]
    if r.random() < 0.3 and last > 0:
        extra = int(r.integers(0, last))
        if "compiled_output_is_input" in g.avoid and extra in {i.vid for i in g.inputs}:
            extra = last - 1
        if extra not in outputs and extra not in {i.vid for i in g.inputs}:
            outputs.append(extra)
    mode = _choose(r, ["backward", "backward", "retain", "double", "second_no_retain"])
    if mode == "double" and "relu_double_backward" in g.avoid and any(
            o.kind == "relu" for o in g.ops):
        mode = "retain"
    return Program(seed, tuple(g.inputs), tuple(g.ops), tuple(outputs), mode)


# --------------------------------------------------------------------------------------------
# Inputs and kink margins
# --------------------------------------------------------------------------------------------

def input_arrays(prog: Program) -> list:
    r = np.random.default_rng(prog.seed + 7919)
    return [np.asarray(r.uniform(i.lo, i.hi, i.shape)).astype(i.dtype) for i in prog.inputs]


def kink_margin(prog: Program, values: list) -> float:
    """The smallest distance of a branching op's input from its branch point (NumPy values of
    every value id, as float64), scaled by the values' magnitude."""
    values = dict(zip(prog.vids(), values))
    m = math.inf
    for op in prog.ops:
        args = [np.asarray(values[a], dtype=np.float64) for a in op.args]
        k = op.kind
        d = None
        if k in ("relu", "abs"):
            d = np.abs(args[0])
        elif k == "clamp":
            d = np.minimum(np.abs(args[0] - op.params[0]), np.abs(args[0] - op.params[1]))
        elif k in ("maximum", "minimum"):
            d = np.abs(args[0] - args[1])
        elif k == "where":
            d = np.abs(args[0] - op.params[0])
        elif k in ("amax", "amin"):
            x = args[0]
            dims, _ = op.params
            dims = tuple(range(x.ndim)) if dims is None else (
                dims if isinstance(dims, tuple) else (dims,))
            dims = tuple(dd % x.ndim for dd in dims)
            rest = [i for i in range(x.ndim) if i not in dims]
            flat = np.transpose(x, rest + list(dims)).reshape(
                [x.shape[i] for i in rest] + [-1])
            if flat.shape[-1] >= 2:
                s = np.sort(flat, axis=-1)
                d = (s[..., -1] - s[..., -2]) if k == "amax" else (s[..., 1] - s[..., 0])
        if d is not None and d.size:
            m = min(m, float(np.min(d)))
    return m


def shrink(prog: Program, fails) -> Program:
    """Greedy: fewer outputs, drop unreferenced ops, inputs not requiring grad, plain backward."""
    def used(p):
        need = set(p.outputs)
        for op in reversed(p.ops):
            if op.out in need:
                need.update(op.args)
        return need

    def prune(p):
        need = used(p)
        return replace(p, ops=tuple(o for o in p.ops if o.out in need))

    changed = True
    cur = prog
    while changed:
        changed = False
        cands = []
        if len(cur.outputs) > 1:
            cands += [replace(cur, outputs=(o,)) for o in cur.outputs]
        for op in cur.ops:  # make an earlier value the output
            cands.append(replace(cur, outputs=(op.out,)))
        for j, op in enumerate(cur.ops):
            if op.no_grad:
                cands.append(replace(cur, ops=cur.ops[:j] + (replace(op, no_grad=False),)
                                     + cur.ops[j + 1:]))
        for k, i in enumerate(cur.inputs):
            if i.requires_grad:
                ins = cur.inputs[:k] + (replace(i, requires_grad=False),) + cur.inputs[k + 1:]
                cands.append(replace(cur, inputs=ins))
        if cur.mode != "backward":
            cands.append(replace(cur, mode="backward"))
        for c in cands:
            c = prune(c)
            if c != cur and _size(c) < _size(cur) + (0 if c.ops == cur.ops else 1) and fails(c):
                cur = c
                changed = True
                break
    return cur


def _size(p):
    return (len(p.ops) + len(p.outputs) + sum(i.requires_grad for i in p.inputs)
            + (p.mode != "backward") + sum(o.no_grad for o in p.ops))
