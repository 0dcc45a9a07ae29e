"""xpnet.graph.figures: the book's figures, each drawn edge with the right forward and backward
value, on every backend; the sigmoid from primitive layers (figure 5-19) and those layers.

Backend tests take the ``xp`` fixture (xpnet.testing: every installed backend)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xpnet.backend import to_numpy
from xpnet.graph import EXAMPLES, build_example, render_example, sigmoid_from_primitives
from xpnet.layers import ExpLayer, ReciprocalLayer, Sigmoid

from .dot_text import APPLE_EDGES, APPLE_ORANGE_EDGES, HAS_DOT, ROOT, edge_set, parse_dot


def test_apple_plain_numbers_edges() -> None:
    dot = build_example("apple", backend=None).to_dot()
    assert edge_set(dot) == APPLE_EDGES


def test_apple_orange_plain_numbers_edges() -> None:
    dot = build_example("apple-orange", backend=None).to_dot()
    assert edge_set(dot) == APPLE_ORANGE_EDGES


def test_apple_examples_on_every_backend(xp: Any) -> None:
    apple = build_example("apple", backend=xp.namespace, device=xp.device)
    assert edge_set(apple.to_dot()) == APPLE_EDGES
    both = build_example("apple-orange", backend=xp.namespace, device=xp.device)
    assert edge_set(both.to_dot()) == APPLE_ORANGE_EDGES


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


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz 'dot' is not on PATH")
def test_render_example_svg(tmp_path: Path) -> None:
    path = render_example("sigmoid", out=tmp_path)
    assert path == tmp_path / "sigmoid.svg"
    text = path.read_text()
    assert "<svg" in text
    assert "0.731059" in text
    assert "0.196612" in text


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
def test_every_example_on_every_backend(name: str, xp: Any,
                                        tmp_path: Path) -> None:
    g = build_example(name, backend=xp.namespace, device=xp.device)
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


def test_composed_sigmoid_matches_sigmoid_layer(xp: Any) -> None:
    device = xp.device
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
def test_primitives_keep_dtype_and_device(layer_cls: type, xp: Any) -> None:
    device = xp.device
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

