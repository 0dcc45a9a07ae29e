"""Tracing and drawing the computational graph (xpnet.graph) and the sigmoid's primitive layers.

Backend tests take the ``be`` fixture of tests/conftest.py (every installed backend)."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xpnet import graph as xg
from xpnet.backend import to_numpy
from xpnet.graph import (
    EXAMPLES,
    GraphvizNotFoundError,
    build_example,
    format_value,
    register_layer,
    render_example,
    sigmoid_from_primitives,
    trace,
)
from xpnet.layers import (
    AddLayer,
    Affine,
    ExpLayer,
    MulLayer,
    ReciprocalLayer,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)
from xpnet.net import TwoLayerNet

ROOT = Path(__file__).resolve().parents[1]
HAS_DOT = shutil.which("dot") is not None

# --------------------------------------------------------------------------------------------
# Reading the DOT text back: every drawn edge with its tail, head, forward and backward text

_STMT_NODE = re.compile(r"^  (\w+) \[(.*)\];$")
_STMT_IN = re.compile(r"^  (\w+) -> (e\d+):w \[arrowhead=none\];$")
_STMT_OUT = re.compile(r"^  (e\d+):e -> (\w+);$")
_ROWS = re.compile(r'<TR><TD WIDTH="\d+">(.*?)</TD></TR><HR/><TR><TD WIDTH="\d+">(.*?)</TD></TR>')


def _text(fragment: str) -> str:
    fragment = re.sub(r'<FONT COLOR="gray40">.*?</FONT> ', "", fragment)  # a value's name
    fragment = fragment.replace("<BR/>", "\n").replace("&#160;", "")
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def parse_dot(dot: str) -> list[dict[str, str]]:
    """Edges as dicts: tail, head (node labels; layer nodes as 'label:forward value of their
    output'), fwd, bwd (the drawn text), bwd_red (whether the gradient is in red)."""
    labels: dict[str, str] = {}
    tables: dict[str, tuple[str, str]] = {}
    tails: dict[str, str] = {}
    heads: dict[str, str] = {}
    for line in dot.splitlines():
        if m := _STMT_IN.match(line):
            tails[m[2]] = m[1]
        elif m := _STMT_OUT.match(line):
            heads[m[1]] = m[2]
        elif m := _STMT_NODE.match(line):
            node, attrs = m[1], m[2]
            if rows := _ROWS.search(attrs):
                tables[node] = (rows[1], rows[2])
            elif lab := re.search(r'label="((?:[^"\\]|\\.)*)"', attrs):
                labels[node] = lab[1].replace('\\"', '"')
    assert set(tables) == set(tails) == set(heads), "every edge label sits on one drawn edge"
    raw = [(tails[e], heads[e], *tables[e]) for e in sorted(tables, key=lambda e: int(e[1:]))]
    out_value = {tail: _text(top) for tail, _, top, _ in raw if tail.startswith("op")}

    def describe(node: str) -> str:
        return f"{labels[node]}:{out_value[node]}" if node.startswith("op") else labels[node]

    return [{"tail": describe(t), "head": describe(h), "fwd": _text(top), "bwd": _text(bottom),
             "bwd_red": bottom == "&#160;" or '<FONT COLOR="red">' in bottom}
            for t, h, top, bottom in raw]


def _edge_set(dot: str) -> set[tuple[str, str, str, str]]:
    edges = parse_dot(dot)
    assert all(e["bwd_red"] for e in edges)
    return {(e["tail"], e["head"], e["fwd"], e["bwd"]) for e in edges}


APPLE_EDGES = {
    ("apple", "×:200", "100", "2.2"),
    ("apple_num", "×:200", "2", "110"),
    ("×:200", "×:220", "200", "1.1"),
    ("tax", "×:220", "1.1", "200"),
    ("×:220", "price", "220", "1"),
}

APPLE_ORANGE_EDGES = {
    ("apple", "×:200", "100", "2.2"),
    ("apple_num", "×:200", "2", "110"),
    ("orange", "×:450", "150", "3.3"),
    ("orange_num", "×:450", "3", "165"),
    ("×:200", "+:650", "200", "1.1"),
    ("×:450", "+:650", "450", "1.1"),
    ("+:650", "×:715", "650", "1.1"),
    ("tax", "×:715", "1.1", "650"),
    ("×:715", "price", "715", "1"),
}


# --------------------------------------------------------------------------------------------
# The book's figures: each drawn edge carries the right forward and backward value


def test_apple_plain_numbers_edges() -> None:
    dot = build_example("apple", backend=None).to_dot()
    assert _edge_set(dot) == APPLE_EDGES


def test_apple_orange_plain_numbers_edges() -> None:
    dot = build_example("apple-orange", backend=None).to_dot()
    assert _edge_set(dot) == APPLE_ORANGE_EDGES


def test_apple_examples_on_every_backend(be: Any) -> None:
    apple = build_example("apple", backend=be.xp, device=be.device)
    assert _edge_set(apple.to_dot()) == APPLE_EDGES
    both = build_example("apple-orange", backend=be.xp, device=be.device)
    assert _edge_set(both.to_dot()) == APPLE_ORANGE_EDGES


def test_apple_graph_object_holds_the_values() -> None:
    g = build_example("apple", backend=None)
    got = {(e.tail.label, e.head.label, e.value, e.grad) for e in g.edges()}
    assert ("apple", "×", 100, 1.1 * 2) in got
    assert ("tax", "×", 1.1, 200) in got
    (last,) = [e for e in g.edges() if e.head.kind == "output"]
    assert last.head.label == "price"
    assert last.value == pytest.approx(220)
    assert last.grad == 1
    kinds = [n.kind for n in g.nodes()]
    assert kinds.count("layer") == 2
    assert kinds.count("input") == 3
    assert kinds.count("output") == 1


def test_tracing_the_book_code_verbatim() -> None:
    """The book's own code inside a trace, leaves named up front."""
    with trace() as g:
        apple, apple_num, tax = g.name(100, "apple"), g.name(2, "apple_num"), g.name(1.1, "tax")
        mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()
        apple_price = mul_apple_layer.forward(apple, apple_num)
        price = mul_tax_layer.forward(apple_price, tax)
        g.name(price, "price")
        dprice = 1
        dapple_price, _dtax = mul_tax_layer.backward(dprice)
        _dapple, _dapple_num = mul_apple_layer.backward(dapple_price)
    assert _edge_set(g.to_dot()) == APPLE_EDGES


def test_named_intermediate_value_is_drawn_on_its_edge() -> None:
    with trace() as g:
        apple_price = MulLayer().forward(g.name(100, "apple"), g.name(2, "apple_num"))
        g.name(apple_price, "apple_price")
        MulLayer().forward(apple_price, g.name(1.1, "tax"))
    (edge,) = [e for e in g.edges() if e.tail.kind == "layer" and e.head.kind == "layer"]
    assert edge.name == "apple_price"
    assert '<FONT COLOR="gray40">apple_price</FONT> 200' in g.to_dot()


def test_small_int_names_given_first_make_leaves() -> None:
    """CPython shares small ints: an output 2 and a later literal 2 are one object. A name given
    before use makes the literal a leaf; without one, identity links it to the output."""
    with trace() as g:
        g.name(2, "two")
        m1, m2 = MulLayer(), AddLayer()
        a = m1.forward(1, 2)  # uses the named 2 as a leaf, returns the shared small int 2
        m2.forward(a, 5)
    edges = {(e.tail.label, e.head.label, e.value) for e in g.edges()}
    assert ("two", "×", 2) in edges
    assert ("×", "+", 2) in edges  # the output reached the AddLayer as one edge


def test_unnamed_plain_numbers_get_one_leaf_per_use() -> None:
    with trace() as g:
        MulLayer().forward(3.0, 3.0)
    leaves = [n for n in g.nodes() if n.kind == "input"]
    assert len(leaves) == 2


def test_array_used_twice_is_one_leaf() -> None:
    x = np.linspace(-1.0, 1.0, 4)
    with trace() as g:
        g.name(x, "x")
        a = Relu().forward(x)
        b = Sigmoid().forward(x)
        AddLayer().forward(a, b)
    leaves = [n for n in g.nodes() if n.kind == "input"]
    assert [n.label for n in leaves] == ["x"]
    assert sum(e.tail is leaves[0] for e in g.edges()) == 2


def test_constants_of_array_ops_fold_into_the_node(be: Any) -> None:
    xp, device = be.xp, be.device
    x = xp.asarray(1.0, dtype=xp.float64, device=device)
    with trace() as g:
        g.name(x, "x")
        y, _ = sigmoid_from_primitives(x)
        g.name(y, "y")
    ops = [n.label for n in g.nodes() if n.kind == "layer"]
    assert ops == ["×(-1)", "exp", "+1", "/"]
    edges = _edge_set(g.to_dot())
    y_ = 1 / (1 + np.exp(-1.0))
    assert ("/:" + f"{y_:.6g}", "y", f"{y_:.6g}", "1") in edges
    assert ("x", "×(-1):-1", "1", f"{y_ * (1 - y_):.6g}") in edges


# --------------------------------------------------------------------------------------------
# Primitive layers and the composed sigmoid


def test_composed_sigmoid_matches_sigmoid_layer(be: Any) -> None:
    xp, device = be.xp, be.device
    rng = np.random.default_rng(5)
    x = xp.asarray(rng.uniform(-6, 6, (4, 7)), dtype=xp.float64, device=device)
    dout = xp.asarray(rng.standard_normal((4, 7)), dtype=xp.float64, device=device)
    dout_before = to_numpy(dout).copy()
    y, dx = sigmoid_from_primitives(x, dout)
    layer = Sigmoid()
    y_ref = layer.forward(x)
    dx_ref = layer.backward(dout)
    for a in (y, dx):
        assert a.dtype == xp.float64
        assert a.device == x.device
    np.testing.assert_allclose(to_numpy(y), to_numpy(y_ref), rtol=1e-14, atol=0)
    np.testing.assert_allclose(to_numpy(dx), to_numpy(dx_ref), rtol=1e-12, atol=1e-300)
    y_host = to_numpy(y_ref)
    np.testing.assert_allclose(to_numpy(dx), to_numpy(dout) * y_host * (1 - y_host), rtol=1e-12)
    np.testing.assert_array_equal(to_numpy(dout), dout_before)


def test_composed_sigmoid_on_plain_floats() -> None:
    y, dx = sigmoid_from_primitives(0.3, 2.0)
    s = 1 / (1 + np.exp(-0.3))
    assert type(y) is float
    assert type(dx) is float
    assert y == pytest.approx(s, rel=1e-15)
    assert dx == pytest.approx(2.0 * s * (1 - s), rel=1e-14)


@pytest.mark.parametrize("layer_cls", [ExpLayer, ReciprocalLayer])
def test_primitives_keep_dtype_and_device(layer_cls: type, be: Any) -> None:
    xp, device = be.xp, be.device
    x = xp.asarray([0.5, 1.0, 2.0], dtype=xp.float32, device=device)
    dout = xp.asarray([1.0, -2.0, 3.0], dtype=xp.float32, device=device)
    before = to_numpy(dout).copy()
    layer = layer_cls()
    out = layer.forward(x)
    dx = layer.backward(dout)
    for a in (out, dx):
        assert a.dtype == xp.float32
        assert a.device == x.device
    host = to_numpy(x).astype(np.float64)
    if layer_cls is ExpLayer:
        expect_out, expect_dx = np.exp(host), before * np.exp(host)
    else:
        expect_out, expect_dx = 1 / host, -before / host**2
    np.testing.assert_allclose(to_numpy(out), expect_out, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(dx), expect_dx, rtol=1e-6)
    np.testing.assert_array_equal(to_numpy(dout), before)


def test_primitives_on_python_numbers() -> None:
    e = ExpLayer()
    assert e.forward(1.0) == pytest.approx(np.e)
    assert type(e.forward(0)) is float
    assert e.backward(2.0) == 2.0
    r = ReciprocalLayer()
    assert r.forward(4) == 0.25
    assert r.backward(1.0) == -0.0625
    assert type(ExpLayer().forward(np.float64(0.0))) is np.float64  # NumPy scalars keep type


def test_primitives_refuse_lists() -> None:
    with pytest.raises(TypeError, match="list"):
        ExpLayer().forward([1.0, 2.0])
    with pytest.raises(TypeError, match="list"):
        ReciprocalLayer().forward([1.0, 2.0])


# --------------------------------------------------------------------------------------------
# Zero cost when off: the classes hold their original functions outside a trace

_PATCHED = [(cls, m) for cls in (AddLayer, MulLayer, Relu, Sigmoid, Affine, SoftmaxWithLoss,
                                 ExpLayer, ReciprocalLayer) for m in ("forward", "backward")]
_PATCHED += [(TwoLayerNet, m) for m in ("predict", "loss", "gradient")]


def _originals() -> dict[tuple[type, str], Any]:
    return {(cls, m): cls.__dict__[m] for cls, m in _PATCHED}


def test_methods_are_replaced_only_inside_the_trace() -> None:
    before = _originals()
    with trace():
        for (cls, m), func in before.items():
            assert cls.__dict__[m] is not func, f"{cls.__name__}.{m} is not traced"
            assert cls.__dict__[m].__wrapped__ is func
    assert _originals() == before
    for (cls, m), func in before.items():
        assert cls.__dict__[m] is func
        assert not hasattr(func, "__wrapped__")


def test_methods_restored_after_an_exception() -> None:
    before = _originals()
    def fail() -> None:
        with trace():
            MulLayer().forward(1, 2)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail()
    assert _originals() == before
    with trace() as g:  # and a new trace can start
        MulLayer().forward(1, 2)
    assert len(g.edges()) == 3


def test_nested_trace_refused_and_outer_still_restores() -> None:
    before = _originals()
    with trace(), pytest.raises(RuntimeError, match="already active"), trace():
        pass
    assert _originals() == before


def test_inherited_methods_are_restored_by_deleting() -> None:
    class Doubler(MulLayer):
        pass

    register_layer(Doubler, "2×")
    try:
        assert "forward" not in Doubler.__dict__
        with trace() as g:
            Doubler().forward(3.0, 4.0)
            MulLayer().forward(1.0, 2.0)
        assert "forward" not in Doubler.__dict__
        assert "backward" not in Doubler.__dict__
        assert [n.label for n in g.nodes() if n.kind == "layer"] == ["2×", "×"]
    finally:
        xg._REGISTRY.pop(Doubler)


def test_nothing_recorded_outside_or_from_other_threads() -> None:
    layer = MulLayer()
    with trace() as g:
        worker = threading.Thread(target=lambda: layer.forward(2.0, 3.0))
        worker.start()
        worker.join()
    layer.forward(4.0, 5.0)
    layer.backward(1.0)
    assert g.nodes() == []
    assert g.edges() == []


def test_register_layer_checks_its_arguments() -> None:
    class NoBackward:
        def forward(self, x: Any) -> Any:
            return x

    with pytest.raises(TypeError, match="backward"):
        register_layer(NoBackward, "id")
    with pytest.raises(ValueError, match="not arguments"):
        register_layer(MulLayer, "×", grads=("z",))
    with trace(), pytest.raises(RuntimeError, match="trace is active"):
        register_layer(MulLayer, "×")


# --------------------------------------------------------------------------------------------
# TwoLayerNet, expanded into its layers or as one node


def _net_graph(be: Any, expand: bool) -> Any:
    xp, device = be.xp, be.device
    net = TwoLayerNet(6, 4, 3, xp=xp, device=device, seed=1)
    rng = np.random.default_rng(2)
    x = xp.asarray(rng.random((2, 6)), dtype=net.dtype, device=net.device)
    t = xp.asarray(np.array([0, 2]), device=net.device)
    with trace(expand=expand) as g:
        grads = net.gradient(x, t)
    return g, grads


def test_two_layer_net_expanded(be: Any) -> None:
    g, grads = _net_graph(be, expand=True)
    edges = {(e["tail"].split(":")[0], e["head"].split(":")[0]): e for e in parse_dot(g.to_dot())}
    assert set(edges) == {
        ("x", "Affine1"), ("W1", "Affine1"), ("b1", "Affine1"), ("Affine1", "Relu1"),
        ("Relu1", "Affine2"), ("W2", "Affine2"), ("b2", "Affine2"),
        ("Affine2", "Softmax-with-Loss"), ("t", "Softmax-with-Loss"), ("Softmax-with-Loss", "L"),
    }
    assert edges[("W1", "Affine1")]["fwd"] == "(6, 4) float64"
    assert edges[("W1", "Affine1")]["bwd"] == "(6, 4) float64"
    assert edges[("x", "Affine1")]["bwd"] == ""  # the first layer skips dx
    assert edges[("t", "Softmax-with-Loss")]["bwd"] == ""
    assert edges[("Softmax-with-Loss", "L")]["bwd"] == "1"
    (w1,) = [e for e in g.edges() if e.tail.label == "W1"]
    assert w1.grad is grads["W1"]


def test_two_layer_net_as_one_node(be: Any) -> None:
    g, grads = _net_graph(be, expand=False)
    assert [n.label for n in g.nodes() if n.kind == "layer"] == ["TwoLayerNet"]
    edges = {e.tail.label: e for e in g.edges() if e.head.kind == "layer"}
    assert set(edges) == {"x", "t", "W1", "b1", "W2", "b2"}
    for k in ("W1", "b1", "W2", "b2"):
        assert edges[k].grad is grads[k]
    (loss,) = [e for e in g.edges() if e.head.kind == "output"]
    assert loss.head.label == "L"
    assert loss.grad == 1.0


# --------------------------------------------------------------------------------------------
# Labels


def test_format_value_numbers() -> None:
    assert format_value(220.00000000000003) == "220"
    assert format_value(110.00000000000001) == "110"
    assert format_value(1.1) == "1.1"
    assert format_value(2) == "2"
    assert format_value(-0.0) == "0"
    assert format_value(np.float64(3.3000000000000003)) == "3.3"
    assert format_value(None) == ""
    assert format_value(True) == "True"


def test_format_value_arrays(be: Any) -> None:
    xp, device = be.xp, be.device
    big = xp.zeros((100, 50), dtype=xp.float32, device=device)
    assert format_value(big) == "(100, 50) float32"
    assert format_value(big, show_values=True) == "(100, 50) float32"  # too big to list
    small = xp.asarray([1.5, -2.0, 0.25], dtype=xp.float64, device=device)
    assert format_value(small) == "(3,) float64"
    assert format_value(small, show_values=True) == "(3,) float64\n[ 1.5 , -2.  ,  0.25]"
    assert format_value(xp.asarray(715.0000000000001, dtype=xp.float64, device=device)) == "715"
    assert format_value(xp.asarray([3], dtype=xp.int64, device=device)) == "(1,) int64"


def test_show_values_puts_lines_on_both_sides_of_the_rule() -> None:
    x = np.asarray([1.0, -1.0])
    with trace() as g:
        r = Relu()
        r.forward(x)
        r.backward(np.asarray([0.5, 0.5]))
    (edge_in, _) = parse_dot(g.to_dot(show_values=True))
    assert edge_in["fwd"] == "(2,) float64\n[ 1., -1.]"
    assert edge_in["bwd"] == "(2,) float64\n[0.5, 0. ]"


def test_labels_are_escaped() -> None:
    with trace() as g:
        MulLayer().forward(g.name(1.0, 'a<b & "c"'), 2.0)
    dot = g.to_dot(title="x < y")
    assert 'label="a<b & \\"c\\""' in dot
    assert "x &lt; y" in dot


# --------------------------------------------------------------------------------------------
# Rendering


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz 'dot' is not on PATH")
def test_render_png_with_dot(tmp_path: Path) -> None:
    path = build_example("apple").render(tmp_path / "apple.png")
    data = path.read_bytes()
    assert path == tmp_path / "apple.png"
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["apple.png"]  # no temp file left behind


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz 'dot' is not on PATH")
def test_render_example_svg(tmp_path: Path) -> None:
    path = render_example("sigmoid", out=tmp_path)
    assert path == tmp_path / "sigmoid.svg"
    text = path.read_text()
    assert "<svg" in text
    assert "0.731059" in text
    assert "0.196612" in text


def test_missing_graphviz_writes_dot_and_says_how_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    path = render_example("apple", fmt="png", out=tmp_path / "apple.png")
    assert path == tmp_path / "apple.dot"
    assert _edge_set(path.read_text()) == APPLE_EDGES
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    for hint in ("apt-get install graphviz", "brew install graphviz", "conda install graphviz",
                 str(path)):
        assert hint in err
    assert not (tmp_path / "apple.png").exists()
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        build_example("apple").render(tmp_path / "b.svg", fallback=False)


def test_missing_graphviz_via_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert not xg.graphviz_available()
    path = build_example("sigmoid").render(tmp_path / "s.svg")
    assert path.suffix == ".dot"
    assert path.read_text().startswith("digraph")
    assert "Graphviz" in capsys.readouterr().err


def test_dot_format_needs_no_graphviz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    path = render_example("apple-orange", fmt="dot", out=tmp_path / "g.dot")
    assert path == tmp_path / "g.dot"
    assert _edge_set(path.read_text()) == APPLE_ORANGE_EDGES
    assert capsys.readouterr().err == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dot"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # the usual permissions, not mkstemp's


def test_render_failure_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'syntax error' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: str(fake))
    with pytest.raises(RuntimeError, match=r"exit 3.*syntax error"):
        build_example("apple").render(tmp_path / "a.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dot"]


def test_render_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(*args: Any, **kwargs: Any) -> Any:
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])

    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: "/usr/bin/dot")
    monkeypatch.setattr(subprocess, "run", slow)
    with pytest.raises(RuntimeError, match=r"longer than 0\.5 s"):
        build_example("apple").render(tmp_path / "a.svg", timeout=0.5)
    assert list(tmp_path.iterdir()) == []


def test_render_example_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="apple, apple-orange, sigmoid, two-layer-net"):
        render_example("banana")
    with pytest.raises(ValueError, match="format"):
        render_example("apple", fmt="pdf", out=tmp_path / "a.pdf")
    with pytest.raises(ValueError, match=r"ends in \.png"):
        render_example("apple", fmt="svg", out=tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)
    assert render_example("apple_orange", fmt="dot") == Path("apple-orange.dot")
    assert render_example("apple", fmt=None, out="x.dot") == Path("x.dot")
    assert (tmp_path / "apple-orange.dot").is_file()
    assert (tmp_path / "x.dot").is_file()


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_on_every_backend(name: str, be: Any,
                                        tmp_path: Path) -> None:
    g = build_example(name, backend=be.xp, device=be.device)
    path = g.render(tmp_path / f"{name}.dot")
    edges = parse_dot(path.read_text())
    assert edges
    assert all(e["fwd"] for e in edges)
    assert any(e["bwd"] for e in edges)


@pytest.mark.parametrize("script", ["graph_apple", "graph_apple_orange", "graph_sigmoid",
                                    "graph_two_layer_net"])
def test_example_scripts(script: str, tmp_path: Path) -> None:
    out = tmp_path / f"{script}.dot"
    done = subprocess.run([sys.executable, str(ROOT / "examples" / f"{script}.py"), str(out)],
                          capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("digraph")
    assert str(out) in done.stdout


def test_named_layers_and_forward_only_graphs() -> None:
    relu, affine = Relu(), Affine(np.ones((2, 3)), np.zeros(3))
    with trace() as g:
        g.name_layer(relu, "relu_1")
        h = relu.forward(np.asarray([[1.0, -1.0]]))
        affine.forward(h)
        g.name_layer(affine, "fc")  # naming after the call works too
    dot = g.to_dot()
    assert 'label="fc"' in dot  # boxes show the name
    assert 'label="ReLU"' not in dot
    assert 'label="relu_1"' in dot
    labels = {e.tail.label: e for e in g.edges() if e.head.label == "Affine"}
    assert set(labels) == {"ReLU", "W", "b"}  # a lone Affine's parameters are named W and b
    assert all(e.grad is None for e in g.edges())  # no backward ran: forward values only
    assert all(e["bwd"] == "" for e in parse_dot(dot))
