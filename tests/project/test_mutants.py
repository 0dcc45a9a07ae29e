"""tools/mutants.py, the mutation-testing tool of ``nox -s mutants``: it finds the survivor that
a deliberately weak test lets through, reports it with file, line and diff, counts listed
equivalents out, and never leaves a mutated file behind."""

from __future__ import annotations

import json
import textwrap

import pytest

from tools import mutants

MODULE = textwrap.dedent('''\
    """A tiny module to mutate."""


    def clip(x, low):
        """``x``, at least ``low``."""
        if x < low:
            return low
        return x
''')

# Weak: never takes the branch, so the mutants inside it survive.
WEAK_TEST = textwrap.dedent('''\
    from xpnet.mini import clip


    def test_clip_keeps_a_large_value():
        assert clip(5, 0) == 5
''')


@pytest.fixture
def project(tmp_path):
    """A project of its own: a package named xpnet with one module and one weak test."""
    root = tmp_path / "project"
    (root / "xpnet").mkdir(parents=True)
    (root / "xpnet" / "__init__.py").write_text("")
    (root / "xpnet" / "mini.py").write_text(MODULE)
    (root / "tests").mkdir()
    (root / "tests" / "test_mini.py").write_text(WEAK_TEST)
    return root


def test_finds_the_mutants_of_each_kind():
    found = mutants.find_mutants("xpnet/mini.py", MODULE)
    kinds = {(m.line, m.kind) for m in found}
    assert (6, "compare Lt -> LtE") in kinds
    assert (6, "condition negated") in kinds
    assert (6, "statement deleted") in kinds
    assert (7, "return None") in kinds
    assert not [m for m in found if m.line in (1, 5)]  # docstrings are left alone
    for m in found:
        compile(m.apply(MODULE), "mini.py", "exec")
    assert [m.lines(MODULE) for m in found if m.kind == "compare Lt -> LtE"] == [
        ("if x < low:", "if (x <= low):")]


def test_the_group_tests_are_the_mirrored_file_then_the_importers(project):
    (project / "tests" / "test_other.py").write_text("import xpnet.mini\n")
    (project / "tests" / "test_unrelated.py").write_text("import xpnet\n")
    assert mutants.group_tests(["xpnet/mini.py"], project) == [
        "tests/test_mini.py", "tests/test_other.py"]


def test_a_weak_test_lets_mutants_survive_and_the_report_names_them(project, tmp_path, capsys):
    equivalents = tmp_path / "equivalent.toml"
    equivalents.write_text(textwrap.dedent('''\
        [[equivalent]]
        file = "xpnet/mini.py"
        line = "if x < low:"
        mutant = "if (x <= low):"
        reason = "at x == low both return the same number"
    '''))
    out = tmp_path / "report.json"
    status = mutants.main(["xpnet/mini.py", "--all", "--backend", "", "--root", str(project),
                           "--equivalents", str(equivalents), "--json", str(out),
                           "--min-timeout", "30", "--fail-under", "90"])
    text = capsys.readouterr().out
    assert status == 1  # under 90%: the weak test lets mutants through
    assert "SURVIVED xpnet/mini.py:7 return None" in text
    assert "-        return low\n+        return None" in text
    report = json.loads(out.read_text())
    group = report["groups"][0]
    by_kind = {(r["line"], r["kind"]): r["status"] for r in group["results"]}
    assert by_kind[(7, "return None")] == "survived"
    assert by_kind[(6, "condition negated")] == "killed"  # clip(5, 0) would give 0
    assert by_kind[(6, "compare Lt -> LtE")] == "equivalent"
    assert group["equivalent"] == 1
    assert group["score"] == pytest.approx(
        100 * group["killed"] / (group["killed"] + group["survived"] + group["timeout"]), abs=0.1)
    assert (project / "xpnet" / "mini.py").read_text() == MODULE  # the project is untouched


def test_a_mutated_file_is_restored_whatever_ends_the_block(tmp_path):
    file = tmp_path / "m.py"
    file.write_text("x = 1\n")
    seen = []

    def interrupted():
        with mutants.mutated(file, "x = 2\n"):
            seen.append(file.read_text())
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert seen == ["x = 2\n"]
    assert file.read_text() == "x = 1\n"


def test_an_equivalent_entry_needs_a_reason(tmp_path):
    listed = tmp_path / "e.toml"
    listed.write_text('[[equivalent]]\nfile = "a.py"\nline = "x"\nmutant = "y"\nreason = ""\n')
    with pytest.raises(SystemExit, match="lacks"):
        mutants.load_equivalents(listed)


def test_the_projects_equivalents_list_loads():
    for entry in mutants.load_equivalents():
        assert entry["reason"].strip()


def test_an_ambiguous_line_is_told_apart_by_the_line_above():
    source = "def f(a):\n    if a:\n        return\n    if not a:\n        return\n"
    found = [m for m in mutants.find_mutants("m.py", source) if m.kind == "statement deleted"
             and m.line in (3, 5)]
    entry = {"file": "m.py", "line": "return", "mutant": "pass", "reason": "r",
             "above": "if not a:"}
    assert [mutants.equivalent_reason(m, source, [entry]) for m in found] == [None, "r"]
