"""Help texts that used to stop mid-sentence (issue 17, item 14): the examples' ``--help`` and
the nox sessions' descriptions in ``nox -l``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py")
                  if "argparse.ArgumentParser(" in p.read_text())

# Runs each example with --help in one interpreter and reports what argparse printed.
HELP_ALL = """
import contextlib, io, json, runpy, sys
out = {}
for path in sys.argv[1:]:
    sys.argv = [path, "--help"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            runpy.run_path(path, run_name="__main__")
        except SystemExit:
            pass
    out[path] = buf.getvalue()
print(json.dumps(out))
"""


def _words(text: str) -> str:
    return " ".join(text.split())


def _letters(text: str) -> str:
    """``text`` without white space (argparse wraps lines, also after hyphens)."""
    return "".join(text.split())


def test_every_example_help_gives_its_whole_first_paragraph():
    assert len(EXAMPLES) >= 9
    done = subprocess.run([sys.executable, "-c", HELP_ALL, *map(str, EXAMPLES)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=True)
    helps = json.loads(done.stdout.strip().splitlines()[-1])
    for path in EXAMPLES:
        doc = ast.get_docstring(ast.parse(path.read_text()))
        first = _words(doc.split("\n\n")[0])
        assert first.endswith("."), (path.name, first)
        assert _letters(first) in _letters(helps[str(path)]), (path.name, helps[str(path)])


def test_nox_session_descriptions_are_whole_sentences():
    """``nox -l`` shows the first line of each session's docstring: it must be a sentence."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    sessions = [f for f in tree.body if isinstance(f, ast.FunctionDef)
                and any("session" in ast.unparse(d) for d in f.decorator_list)]
    assert len(sessions) >= 5
    for func in sessions:
        doc = ast.get_docstring(func, clean=False) or ""
        first, _, rest = doc.partition("\n")
        assert first.strip().endswith("."), (func.name, first)
        assert not rest.strip() or rest.startswith("\n"), (func.name, doc)  # a blank line next
        assert first[:1].isupper(), (func.name, first)


def test_graph_examples_answer_help_instead_of_writing_a_file_named_help(tmp_path):
    for path in sorted((ROOT / "examples").glob("graph_*.py")):
        done = subprocess.run([sys.executable, str(path), "--help"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=True)
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert _words(doc) in _words(done.stdout), path.name
        assert not list(tmp_path.iterdir()), path.name
