"""``python -m benchmarks.book_run``: each run is ``xpnet book`` in a fresh process, of this
checkout or of ``--baseline``'s package; the last accuracy line is read, a failing script
fails the benchmark. (No MNIST needed: the scripts here print their own lines.)"""

from __future__ import annotations

import json

from benchmarks import book_run


def _clone(tmp_path, source: str):
    root = tmp_path / "book"
    for folder in ("common", "dataset", "ch07"):
        (root / folder).mkdir(parents=True)
    (root / "ch07" / "s.py").write_text(source)
    return root


def test_runs_alternate_between_this_checkout_and_the_baseline(tmp_path, capsys):
    book = _clone(tmp_path, "print('train acc: 0.5')\nprint('test acc: 0.25')\n")
    base = tmp_path / "base" / "xpnet"  # a stand-in package: proves the baseline's code ran
    base.mkdir(parents=True)
    (base / "__init__.py").write_text("")
    (base / "__main__.py").write_text("print('=== Final Test Accuracy ===')\n"
                                      "print('test acc: 0.75')\n")
    path = tmp_path / "run.json"
    assert book_run.main(["--book", str(book), "--script", "ch07/s.py", "--max-train", "10",
                          "--seeds", "0,1", "--baseline", str(base.parent),
                          "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    assert [r["accuracy"] for r in report["runs"]["xpnet"]] == [0.25, 0.25]
    assert [r["accuracy"] for r in report["runs"]["xpnet-main"]] == [0.75, 0.75]
    assert [r["seed"] for r in report["runs"]["xpnet"]] == [0, 1]
    med = report["median_wall_s"]
    assert report["ratio"]["xpnet/xpnet-main"] == med["xpnet"] / med["xpnet-main"]
    assert "median wall xpnet:" in capsys.readouterr().out


def test_a_failing_script_fails_the_benchmark(tmp_path):
    book = _clone(tmp_path, "raise SystemExit('broken')\n")
    path = tmp_path / "run.json"
    assert book_run.main(["--book", str(book), "--script", "ch07/s.py", "--seeds", "0",
                          "--json", str(path)]) == 1
    run = json.loads(path.read_text())["runs"]["xpnet"][0]
    assert run["exit"] == 1
    assert "broken" in run["error"]
    assert run["accuracy"] is None
