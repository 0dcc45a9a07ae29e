"""xpnet.graph.render: DOT through Graphviz, the fallback without it, atomic files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from xpnet import graph as xg
from xpnet.graph import GraphvizNotFoundError, build_example, render_example

from .dot_text import APPLE_EDGES, APPLE_ORANGE_EDGES, HAS_DOT, edge_set


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz 'dot' is not on PATH")
def test_render_png_with_dot(tmp_path: Path) -> None:
    path = build_example("apple").render(tmp_path / "apple.png")
    data = path.read_bytes()
    assert path == tmp_path / "apple.png"
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["apple.png"]  # no temp file left behind


def test_missing_graphviz_writes_dot_and_says_how_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    path = render_example("apple", fmt="png", out=tmp_path / "apple.png")
    assert path == tmp_path / "apple.dot"
    assert edge_set(path.read_text()) == APPLE_EDGES
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
    assert edge_set(path.read_text()) == APPLE_ORANGE_EDGES
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

