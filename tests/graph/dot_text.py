"""Reading the DOT text back, shared by the graph tests: every drawn edge with its tail, head,
forward and backward text, and the edges of the book's apple figures."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HAS_DOT = shutil.which("dot") is not None

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



def edge_set(dot: str) -> set[tuple[str, str, str, str]]:
    """The drawn edges as (tail, head, forward, backward) text, every gradient in red."""
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

