"""The min-cut partition: what it saves and recomputes on captured joint graphs, its contract
with compiled_function.Variant, and compiled-equals-eager for the same functions."""
import numpy as np
import pytest

import jitgrad
from compiler import passes
from compiler.capture import capture
from compiler.ir import Ref
from compiler.passes.partition import partition, recomputable
from jitgrad.ops import REGISTRY

F = jitgrad.nn.functional


# -- functions under test -------------------------------------------------------------------

def chain(x, w):
    return jitgrad.tanh(jitgrad.exp(jitgrad.sin(x) * w) * x + w).sum()


def sin_matmul(x, w):
    return jitgrad.sin(x @ w).sum()


def mlp(x, w1, w2):
    return (jitgrad.tanh(x @ w1) @ w2).sigmoid().sum()


def softmax_weighted(x, w):
    return (F.softmax(x * w, dim=-1) * x).sum()


def layer_norm(x, w, b):
    return (F.layer_norm(x, (x.shape[-1],), w, b) * x).sum()


def amax_of_exp(x):
    return jitgrad.exp(x).amax(dim=1).sum()


def _leaves(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [jitgrad.tensor(rng.standard_normal(s), dtype=jitgrad.float64, requires_grad=True)
            for s in shapes]


CASES = {
    "chain": (chain, [(8, 16), (8, 16)]),
    "sin_matmul": (sin_matmul, [(8, 16), (16, 4)]),
    "mlp": (mlp, [(8, 16), (16, 32), (32, 4)]),
    "softmax": (softmax_weighted, [(8, 16), (8, 16)]),
    "layer_norm": (layer_norm, [(8, 16), (16,), (16,)]),
    "amax_of_exp": (amax_of_exp, [(32, 4)]),    # short rows: a bool mask beats the maxima
}


# -- helpers ------------------------------------------------------------------------------

def joint_graph(fn, shapes):
    cap, _ = capture(fn, tuple(_leaves(*shapes)), {}, need_backward=True)
    graph = cap.graph
    for _, run_pass in passes.PIPELINE:
        graph = run_pass(graph)
    return graph, cap.n_forward_outputs


def naive_saved(graph, n_forward_outputs):
    """The old partition's choice: every forward value a backward node (or output) reads."""
    forward_ids = {n.id for n in graph.nodes if n.role == "forward"}
    saved = []
    for node in graph.nodes:
        if node.role == "backward":
            for r in node.refs():
                if r.id in forward_ids and r.id not in saved:
                    saved.append(r.id)
    for r in graph.outputs[n_forward_outputs:]:
        if r is not None and r.id in forward_ids and r.id not in saved:
            saved.append(r.id)
    return saved


def saved_bytes(graph, saved):
    """(all bytes saved, bytes saved beyond the graph's inputs)."""
    nodes = [graph.by_id[i] for i in saved]
    return (sum(n.nbytes for n in nodes), sum(n.nbytes for n in nodes if n.op != "input"))


def computed(g):
    return {n.id for n in g.nodes if n.op != "input"}


def check_contract(graph, n_forward_outputs, forward, backward, saved):
    by_id = graph.by_id
    assert forward.outputs == tuple(graph.outputs[:n_forward_outputs]) + tuple(
        Ref(i) for i in saved)
    assert backward.outputs == tuple(graph.outputs[n_forward_outputs:])
    bw_inputs = [n.id for n in graph.nodes if n.op == "input" and n.role == "backward"]
    assert [r.id for r in backward.inputs] == list(saved) + bw_inputs
    assert len(set(saved)) == len(saved)
    for g, provided in ((forward, {r.id for r in forward.inputs}),
                        (backward, {r.id for r in backward.inputs})):
        ids = [n.id for n in g.nodes]
        assert len(ids) == len(set(ids)), "a value is computed twice in one graph"
        defined = set()
        for n in g.nodes:
            if n.op == "input":
                assert n.id in provided
            else:
                assert n.id not in provided
                assert all(r.id in defined for r in n.refs()), "not in topological order"
                assert n == by_id[n.id], "a computed node differs from the joint graph's"
            defined.add(n.id)
        assert all(r.id in defined for r in g.outputs if r is not None)
    # Everything the backward computes that the forward also owns is a cheap recomputation.
    for nid in computed(backward):
        node = by_id[nid]
        if node.role == "forward":
            assert recomputable(node), f"{node.op} recomputed in the backward"


def run_partition(name):
    fn, shapes = CASES[name]
    graph, n_out = joint_graph(fn, shapes)
    forward, backward, saved = partition(graph, n_out)
    check_contract(graph, n_out, forward, backward, saved)
    return graph, n_out, forward, backward, saved


# -- what the cut saves -------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CASES))
def test_contract_and_no_more_bytes_than_naive(name):
    graph, n_out, _, _, saved = run_partition(name)
    naive = naive_saved(graph, n_out)
    total, extra = saved_bytes(graph, saved)
    naive_total, naive_extra = saved_bytes(graph, naive)
    assert extra <= naive_extra
    assert total <= naive_total


def test_elementwise_chain_recomputes_instead_of_saving():
    graph, n_out, forward, backward, saved = run_partition("chain")
    naive = naive_saved(graph, n_out)
    _, extra = saved_bytes(graph, saved)
    _, naive_extra = saved_bytes(graph, naive)
    assert naive_extra > 0 and extra < naive_extra
    # The inputs exist anyway: the backward recomputes the chain from them.
    assert all(graph.by_id[i].op == "input" for i in saved)
    intermediates = [i for i in naive if graph.by_id[i].op != "input"]
    recomputed = [i for i in intermediates if i in computed(backward)]
    assert recomputed and not set(recomputed) & set(saved)
    # The forward no longer computes values only the backward needed (cos(x) never was there).
    assert computed(forward) == {n.id for n in graph.nodes
                                 if n.role == "forward" and n.op != "input"}


@pytest.mark.parametrize("name", ["sin_matmul", "mlp"])
def test_matmul_is_never_recomputed(name):
    graph, _, forward, backward, saved = run_partition(name)
    matmuls = {n.id for n in graph.nodes if n.op == "matmul" and n.role == "forward"}
    assert matmuls and matmuls <= computed(forward)
    assert not matmuls & computed(backward)


def test_matmul_output_is_saved_when_the_backward_reads_it():
    # sin's rule reads cos(x @ w): recomputing from the (free) inputs would save fewer bytes,
    # but a matmul may not be recomputed, so its output is saved.
    graph, _, _, _, saved = run_partition("sin_matmul")
    (mm,) = [n.id for n in graph.nodes if n.op == "matmul" and n.role == "forward"]
    assert mm in saved


@pytest.mark.parametrize("name", ["softmax", "layer_norm"])
def test_reductions_are_never_recomputed(name):
    graph, n_out, forward, backward, saved = run_partition(name)
    reductions = {n.id for n in graph.nodes if n.role == "forward" and n.op != "input"
                  and REGISTRY[n.op].kind == "reduction"}
    assert reductions and not reductions & computed(backward)
    # Small per-row statistics (a reduction, or rsqrt of one) are saved and the full-size
    # values recomputed from them and the inputs.
    _, extra = saved_bytes(graph, saved)
    _, naive_extra = saved_bytes(graph, naive_saved(graph, n_out))
    assert extra < naive_extra
    rows = int(np.prod(graph.by_id[graph.inputs[0].id].shape[:-1]))
    assert all(graph.by_id[i].op == "input" or graph.by_id[i].nbytes <= rows * 8 for i in saved)


def test_unclaimed_backward_value_moves_to_forward_when_smaller():
    # amax's rule compares exp(x) with the row maxima: with rows of 4, a bool mask (4 bytes a
    # row) is saved instead of the maxima (8 bytes a row), and never exp(x) itself.
    graph, _, forward, backward, saved = run_partition("amax_of_exp")
    saved_nodes = [graph.by_id[i] for i in saved]
    masks = [n for n in saved_nodes if n.dtype == np.bool_]
    assert masks and all(n.role == "backward" for n in masks)
    assert not any(n.op == "exp" for n in saved_nodes)


def test_no_backward_saves_nothing():
    x, w = _leaves((4, 3), (4, 3))
    cap, _ = capture(chain, (x, w), {}, need_backward=False)
    forward, backward, saved = partition(cap.graph, cap.n_forward_outputs)
    assert saved == [] and forward.outputs == cap.graph.outputs
    assert backward.outputs == ()


# -- compiled equals eager ----------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_equals_eager(name):
    fn, shapes = CASES[name]
    compiled = jitgrad.compile(fn, fullgraph=True)
    for _ in range(2):      # compile, then the cached variant
        got_leaves = _leaves(*shapes, seed=1)
        got = compiled(*got_leaves)
        got.backward()
    want_leaves = _leaves(*shapes, seed=1)
    want = fn(*want_leaves)
    want.backward()
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10)
    for g, w in zip(got_leaves, want_leaves):
        np.testing.assert_allclose(g.grad.numpy(), w.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert [kind for kind, _ in compiled.events] == ["compile"]


# Fusion: sums over the leading dim are accumulated inside the kernel, per block of rows, into
# a partial array a Finish step adds up (the bias gradient of a linear layer, a layer norm's
# gain, the j-sum of pair forces). Each case: the kernel holds a column sum, and compiled
# values and gradients equal eager.
@pytest.mark.parametrize("fn,shapes", [
    (lambda x, b: jitgrad.tanh(x + b).sum(), [(300, 33), (33,)]),          # bias gradient
    (lambda x, g: (jitgrad.nn.functional.layer_norm(x, (17,), g, None) ** 2).sum(),
     [(40, 17), (17,)]),
    (lambda x: (x.sum(0) * 2).sum(), [(50, 7, 3)]),
    (lambda x: ((x * x).sum(0, keepdim=True) + x.mean(1, keepdim=True)).sum(), [(300, 5)]),
], ids=["bias", "layer_norm_gain", "leading_of_3d", "with_row_reduction"])
def test_column_sums_fused(fn, shapes):
    rng = np.random.default_rng(3)
    data = [rng.standard_normal(s) for s in shapes]
    compiled = jitgrad.compile(fn)
    results = []
    for f in (fn, compiled):
        xs = [jitgrad.tensor(d, requires_grad=True) for d in data]
        out = f(*xs)
        out.backward()
        results.append([out.item()] + [x.grad.numpy() for x in xs])
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    (variant,) = compiled.variants.values()
    steps = variant.forward.steps + variant.backward.steps
    assert any(getattr(s, "columns", None) for s in steps)


def test_row_buffer_keeps_exp_between_passes():
    # softmax(x) * t summed: the exp of the sum pass is kept in a per-block row buffer for the
    # normalising pass instead of being recomputed; shape large enough for the parallel loop.
    def f(x, t):
        return (jitgrad.softmax(x * 0.5, dim=-1) * t).sum()
    rng = np.random.default_rng(5)
    data = [rng.standard_normal((300, 257)).astype(np.float32) for _ in range(2)]
    compiled = jitgrad.compile(f)
    results = []
    for fn in (f, compiled):
        x = jitgrad.tensor(data[0], requires_grad=True)
        out = fn(x, jitgrad.tensor(data[1]))
        out.backward()
        results.append((out.item(), x.grad.numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-4, atol=1e-7)
    (variant,) = compiled.variants.values()
    forward = variant.kernel_sources[0]
    assert "prange" in forward and "rb" in forward and "= rb" in forward
