"""Drawing: a graph's nodes and edges as a DOT document, and DOT through Graphviz's ``dot`` into
SVG or PNG (or the DOT text itself, which needs nothing installed)."""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .._files import atomic_write_bytes, temp_path_beside
from .labels import edge_label, node_attrs
from .model import Edge, Node

__all__ = ["FORMATS", "INSTALL_HINT", "GraphvizNotFoundError", "dot_source", "format_for",
           "graphviz_available", "render_dot"]

#: Output formats: ``dot`` is the graph's text, ``svg`` and ``png`` need Graphviz's ``dot``.
FORMATS: tuple[str, ...] = ("svg", "png", "dot")

INSTALL_HINT = ("install Graphviz for SVG/PNG: apt-get install graphviz, brew install graphviz "
                "or conda install graphviz")


def dot_source(nodes: Sequence[Node], edges: Sequence[Edge], *, show_values: bool = False,
               title: str | None = None, legend: bool = True) -> str:
    """``nodes`` and ``edges`` in Graphviz's DOT language, left to right like the book's figures
    (see :meth:`xpnet.graph.Graph.to_dot`)."""
    out = ["digraph xpnet {",
           '  graph [rankdir=LR, ranksep=0.15, nodesep=0.25, fontname="Helvetica", '
           'fontsize=11, labelloc=b, outputorder=edgesfirst];',
           '  node [fontname="Helvetica", fontsize=14];',
           '  edge [arrowsize=0.7, penwidth=1.1];']
    caption = [html.escape(title)] if title else []
    if legend:
        caption.append('<FONT POINT-SIZE="10">forward values above the arrows, '
                       'backward gradients <FONT COLOR="red">below in red</FONT></FONT>')
    if caption:
        out.append(f"  label=<{'<BR/>'.join(caption)}>;")
    for node in nodes:
        out.append(f"  {node.id} [{node_attrs(node)}];")
    # Each edge passes through a small plaintext node that carries its two-row label, so that
    # the forward value sits above the arrow and the gradient below it.
    for k, edge in enumerate(edges, 1):
        mid = f"e{k}"
        label = edge_label(edge, show_values)
        out.append(f"  {mid} [shape=plaintext, margin=0, width=0, height=0, label=<{label}>];")
        out.append(f"  {edge.tail.id} -> {mid}:w [arrowhead=none];")
        out.append(f"  {mid}:e -> {edge.head.id};")
    out.append("}")
    return "\n".join(out) + "\n"


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` is not on PATH (raised only with ``fallback=False``)."""


def graphviz_available() -> bool:
    """Whether Graphviz's ``dot`` program is on PATH."""
    return shutil.which("dot") is not None


def format_for(path: Path | None, fmt: str | None) -> str:
    """The output format for ``path``: ``fmt`` if given, else ``path``'s suffix, else SVG.
    ``ValueError`` for an unknown format or a suffix that contradicts ``fmt``."""
    suffix = path.suffix.lower().lstrip(".") if path is not None else ""
    if fmt is None:
        fmt = suffix if suffix in FORMATS else "svg"
    fmt = fmt.lower()
    if fmt not in FORMATS:
        msg = f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}"
        raise ValueError(msg)
    if suffix in FORMATS and suffix != fmt:
        msg = f"{path} ends in .{suffix} but the format asked for is {fmt!r}; make them agree"
        raise ValueError(msg)
    return fmt


def render_dot(source: str, path: str | os.PathLike[str], fmt: str | None = None, *,
               fallback: bool = True, timeout: float = 60.0) -> Path:
    """Write DOT ``source`` to ``path`` as ``fmt`` (see :meth:`Graph.render`); returns the path
    written. Files are written atomically (a temporary file beside it, then ``os.replace``)."""
    path = Path(path)
    fmt = format_for(path, fmt)
    if fmt == "dot":
        return atomic_write_bytes(path, source.encode("utf-8"))
    exe = shutil.which("dot")
    if exe is None:
        if not fallback:
            raise GraphvizNotFoundError(f"Graphviz's 'dot' is not on PATH; {INSTALL_HINT}")
        dot_path = atomic_write_bytes(path.with_suffix(".dot"), source.encode("utf-8"))
        print(f"xpnet: Graphviz 'dot' not found, wrote {dot_path} instead of {fmt.upper()}; "
              f"{INSTALL_HINT}", file=sys.stderr)
        return dot_path
    tmp = temp_path_beside(path)
    try:
        try:
            args = [exe, f"-T{fmt}", "-o", str(tmp)] + (["-Gdpi=144"] if fmt == "png" else [])
            done = subprocess.run(args, input=source.encode("utf-8"), capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            msg = f"Graphviz 'dot' took longer than {timeout:g} s drawing {path}"
            raise RuntimeError(msg) from None
        if done.returncode != 0 or tmp.stat().st_size == 0:
            err = done.stderr.decode("utf-8", "replace").strip()
            msg = f"Graphviz 'dot' failed (exit {done.returncode}) drawing {path}: {err}"
            raise RuntimeError(msg)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
