"""Inspection: dumps (text golden files, DOT that parses, JSON that round-trips through
networkx), explain naming deliberate refusals, breaks and recompiles, and compare finding a
deliberately planted divergence."""
import json
import os
import sys

import networkx as nx
import numpy as np
import pytest

import jitgrad
from jitgrad.ops import REGISTRY
from jitgrad.ops.spec import defop, derivative

sys.path.insert(0, os.path.dirname(__file__))
import dump_programs as P  # noqa: E402

f64 = jitgrad.float64


def mlp_args():
    return (jitgrad.ones(2, 3, dtype=f64, requires_grad=True),
            jitgrad.ones(3, 4, dtype=f64, requires_grad=True),
            jitgrad.zeros(4, dtype=f64, requires_grad=True),
            jitgrad.ones(4, 1, dtype=f64, requires_grad=True))


def test_dot_output_parses_with_kernels_as_clusters():
    pydot = pytest.importorskip("pydot")
    compiled = jitgrad.compile(P.layer_norm)
    compiled(jitgrad.ones(2, 4, dtype=f64, requires_grad=True),
             jitgrad.ones(4, dtype=f64, requires_grad=True),
             jitgrad.zeros(4, dtype=f64, requires_grad=True))
    for stage in ("fused", "backward", "joint"):
        (graph,) = pydot.graph_from_dot_data(jitgrad.dump(compiled, format="dot", stage=stage))
        assert graph.get_nodes() or graph.get_subgraphs()
    (graph,) = pydot.graph_from_dot_data(jitgrad.dump(compiled, format="dot", stage="fused"))
    assert [s.get_name().strip('"') for s in graph.get_subgraphs()] == ["cluster_fwd0"]
    x = jitgrad.tensor([1.0, 2.0], requires_grad=True)
    (eager,) = pydot.graph_from_dot_data(jitgrad.dump(P.eager_with_detach_cut(x), format="dot"))
    # leaf -> Mul, leaf -> Exp, Mul -> Add, Exp -> Add, Add -> Sum; the detached input of Mul
    # is a cut: no edge.
    assert len(eager.get_edges()) == 5


def test_json_round_trips_through_networkx():
    compiled = jitgrad.compile(P.mlp)
    compiled(*mlp_args())
    for stage in ("captured", "joint", "forward", "backward", "fused"):
        text = jitgrad.dump(compiled, format="json", stage=stage)
        graph = nx.node_link_graph(json.loads(text), edges="links")
        again = nx.node_link_graph(json.loads(json.dumps(nx.node_link_data(graph,
                                                                           edges="links"))),
                                   edges="links")
        assert nx.is_directed_acyclic_graph(graph)
        assert sorted(graph.nodes(data=True)) == sorted(again.nodes(data=True))
        assert sorted(graph.edges()) == sorted(again.edges())
        assert all("op" in data and "shape" in data for _, data in graph.nodes(data=True))
    fused = nx.node_link_graph(json.loads(jitgrad.dump(compiled, format="json")), edges="links")
    ops = {data["op"] for _, data in fused.nodes(data=True)}
    assert {"matmul", "tanh", "add"} <= ops


def test_explain_names_refusal_break_and_recompile():
    def middle_sums(x):
        # Summing a (3, 4, 64) value over its middle dim would stride over 64 kept elements
        # per step: refused (a sum over dim 0 would be a column sum, fused).
        return (x.exp().sum(1) * 2).sum()
    compiled = jitgrad.compile(middle_sums)
    report = str(jitgrad.explain(compiled, jitgrad.ones(3, 4, 64, requires_grad=True)))
    assert "not fused" in report
    assert "a strided reduction (kept inner dims of 64 elements)" in report
    report = str(jitgrad.explain(compiled, jitgrad.ones(5, 4, 64, requires_grad=True)))
    assert "recompiled: input 0 shape changed [3, 4, 64] -> [5, 4, 64]" in report

    def branchy(x):
        return x * 2 if x.sum().item() > 0 else x * 3
    report = str(jitgrad.explain(branchy, jitgrad.ones(3, requires_grad=True)))
    assert "graph break, runs eagerly: 'item' takes a value out of the graph" in report
    assert "test_inspection.py" in report


@pytest.fixture
def planted_op():
    # A test-only op whose compiled template is wrong on purpose: eager negates, the kernel
    # does not.
    spec = defop("planted_neg", np.negative, template="({0})")

    @derivative(spec)
    def _rule(F, ctx, g):
        return (-g,)
    from jitgrad.dispatch import apply
    yield lambda x: apply(spec, (x,))
    del REGISTRY["planted_neg"]


def test_compare_names_the_planted_divergent_node(planted_op):
    def f(x):
        y = x.exp() * 2
        return (planted_op(y) + 1).sum()
    x = jitgrad.tensor([0.5, 1.0, 1.5], dtype=f64, requires_grad=True)
    result = jitgrad.compare(f, x)
    assert not result.ok
    node, err = result.first_divergence
    assert node.op == "planted_neg" and err > 1
    assert "first divergent node" in str(result) and "planted_neg" in str(result)


def test_compare_reports_match_for_correct_programs():
    result = jitgrad.compare(P.mlp, *mlp_args())
    assert result.ok and result.first_divergence is None


def test_jitgrad_dump_directory_gets_every_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("JITGRAD_DUMP", str(tmp_path))
    compiled = jitgrad.compile(P.layer_norm)
    compiled(jitgrad.ones(2, 4, dtype=f64, requires_grad=True),
             jitgrad.ones(4, dtype=f64, requires_grad=True),
             jitgrad.zeros(4, dtype=f64, requires_grad=True))
    names = sorted(p.name for p in tmp_path.iterdir())
    suffixes = ["_backward.txt", "_captured.txt", "_forward.txt", "_fused.txt", "_graph.json",
                "_joint.txt", "_output_code.py"]
    assert len(names) == len(suffixes)
    assert all(any(n.endswith(s) for n in names) for s in suffixes)
    code = next(tmp_path.glob("*output_code.py")).read_text()
    assert "def fwd0(" in code and "dump_programs.py:18" in code


# -- golden text dumps --------------------------------------------------------------------
# Regenerate deliberately with JITGRAD_UPDATE_GOLDEN=1 and read the diff before committing.

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")


def _golden(name, text):
    path = os.path.join(GOLDEN, name)
    if os.environ.get("JITGRAD_UPDATE_GOLDEN") == "1":
        with open(path, "w") as handle:
            handle.write(text + "\n")
    with open(path) as handle:
        assert text + "\n" == handle.read(), f"dump differs from {path}"


def test_golden_eager_graph_with_detach_cut():
    x = jitgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    _golden("eager_detach_cut.txt", jitgrad.dump(P.eager_with_detach_cut(x)))


@pytest.mark.parametrize("stage", ["forward", "backward", "fused"])
def test_golden_compiled_mlp(stage):
    compiled = jitgrad.compile(P.mlp)
    compiled(*mlp_args())
    _golden(f"mlp_{stage}.txt", jitgrad.dump(compiled, stage=stage))


def test_golden_layer_norm():
    compiled = jitgrad.compile(P.layer_norm)
    compiled(jitgrad.ones(2, 4, dtype=f64, requires_grad=True),
             jitgrad.ones(4, dtype=f64, requires_grad=True),
             jitgrad.zeros(4, dtype=f64, requires_grad=True))
    _golden("layer_norm_fused.txt", jitgrad.dump(compiled, stage="fused"))
