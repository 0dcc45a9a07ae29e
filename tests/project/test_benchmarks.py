"""The benchmark suite (``python -m benchmarks``) on its harness: results reach the JSON file as
they are measured, and a contender that raises is skipped with its reason instead of ending the
run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import contenders as C
from benchmarks import harness
from benchmarks import suite as bench


class Broken(C.Contender):
    """Fails its first full run, as a GPU contender with a bad driver would."""

    name = "broken"

    def full_run(self, iters):
        raise RuntimeError("no CUDA device")


class CrashesInStepBlock(C.Contender):
    """Runs fine, then ends the whole benchmark (Ctrl-C) in its step block."""

    name = "crashes"

    def full_run(self, iters):
        return C.init_params(self.sizes, self.seed)

    def make_step(self):
        raise KeyboardInterrupt


@pytest.fixture
def setup(tmp_path):
    data = C.synthetic_data(300, 100, 784)
    args = bench.parse(["--iters", "12", "--reps", "1", "--step-block", "5"])
    path = tmp_path / "bench.json"
    write = harness.json_writer(path)
    on_disk = []

    def checkpoint(report):
        write(report)
        on_disk.append(json.loads(path.read_text()))

    args.checkpoint = checkpoint
    good = C.XpnetContender(data, (784, 50, 10), 100, 0, "numpy", "float32")
    return data, args, path, on_disk, good


def test_a_failing_contender_is_skipped_with_its_reason(setup, capsys):
    data, args, path, on_disk, good = setup
    broken = Broken(data, (784, 50, 10), 100, 0)
    report = {}
    bench.measure_book([broken, good], data, args, report, ["other: not selected"], "synthetic")
    reason = "full run (rep 1) failed: RuntimeError: no CUDA device"
    book = report["book"]
    assert book["failed"] == {"broken": reason}
    assert book["skipped"] == ["other: not selected"]
    assert list(book["results"]) == [good.name]
    measured = book["results"][good.name]
    assert len(measured["wall_s"]["runs"]) == 1
    assert measured["wall_s"]["median"] > 0
    assert measured["step_ms"]["median"] > 0
    assert 0.0 <= measured["final_test_acc"] <= 1.0
    out = capsys.readouterr().out
    assert f"skipped broken: {reason}" in out
    assert f"FAILED broken: {reason}" in out
    # Written after each contender's measurement: the failure first, then the good full run.
    assert on_disk[0]["book_partial"]["failed"] == {"broken": reason}
    assert on_disk[0]["book_partial"]["wall_s"][good.name] == []
    assert on_disk[1]["book_partial"]["wall_s"][good.name] == measured["wall_s"]["runs"]
    # The file holds the final report, and nothing is left half-written.
    assert json.loads(path.read_text())["book"]["failed"] == {"broken": reason}
    assert [p.name for p in path.parent.iterdir()] == ["bench.json"]


def test_results_are_on_disk_as_they_come(setup):
    """A run that dies half-way (here Ctrl-C in a step block) leaves every measurement made
    before it in the JSON file."""
    data, args, path, on_disk, good = setup
    report = {}
    with pytest.raises(KeyboardInterrupt):
        bench.measure_book([good, Broken(data, (784, 50, 10), 100, 0),
                            CrashesInStepBlock(data, (784, 50, 10), 100, 0)],
                           data, args, report, [], "synthetic")
    assert on_disk, "nothing was written before the crash"
    partial = json.loads(path.read_text())["book_partial"]
    assert partial == on_disk[-1]["book_partial"]
    assert partial["stage"] == "rep 1: full runs"
    assert len(partial["wall_s"][good.name]) == 1
    assert len(partial["wall_s"]["crashes"]) == 1
    assert partial["wall_s"]["broken"] == []
    assert partial["failed"] == {"broken": "full run (rep 1) failed: RuntimeError: no CUDA "
                                           "device"}
    # crashes' final parameters are the initial ones: the same accuracy as computed here
    params = C.init_params((784, 50, 10), 0)
    assert partial["final_test_acc"]["crashes"] == C.host_accuracy(params, data.x_test,
                                                                   data.t_test)
    assert not np.isnan(partial["final_test_acc"][good.name])


# --- the harness every benchmark module shares ------------------------------------------------

def test_interleave_runs_blocks_round_robin_and_syncs_each():
    calls = []

    def make(name):
        def step(i):
            calls.append((name, i))
        step.sync = lambda: calls.append((name, "sync"))
        return step

    times = harness.interleave({"a": make("a"), "b": make("b")}, reps=2, n_steps=2, start=5)
    assert calls == [("a", 5), ("a", 6), ("a", "sync"), ("b", 5), ("b", 6), ("b", "sync"),
                     ("a", 7), ("a", 8), ("a", "sync"), ("b", 7), ("b", 8), ("b", "sync")]
    assert [len(v) for v in times.values()] == [2, 2]
    assert all(s >= 0 for v in times.values() for s in v)


def test_prepare_skips_a_contender_that_raises(capsys):
    warmed = []

    def broken():
        raise RuntimeError("no device")

    steps, skipped = harness.prepare({"ok": lambda: warmed.append, "broken": broken}, warmup=3,
                                     label="simple/")
    assert list(steps) == ["ok"]
    assert warmed == [0, 1, 2]
    assert skipped == {"broken": "RuntimeError: no device"}
    assert "skipped simple/broken: RuntimeError: no device" in capsys.readouterr().out


def test_tables_and_json(tmp_path, capsys):
    harness.print_table([harness.Column("model", 6, align="<"),
                         harness.Column("size", 9, ".0f", unit="kB"),
                         harness.Column("x", 5, ".2f", missing="-")],
                        [["mlp", 1359.4, None], ["two", 12.0, 0.5]])
    # As the modules' own f-strings printed them before they shared the harness:
    assert capsys.readouterr().out.splitlines() == [
        f"{'model':<6} {'size':>9} {'x':>5}",
        f"{'mlp':<6} {1359.4:>7.0f}kB {'-':>5}",
        f"{'two':<6} {12.0:>7.0f}kB {0.5:>5.2f}"]
    path = harness.write_json(tmp_path / "new" / "r.json", {"a": [1.5], "p": tmp_path})
    assert json.loads(path.read_text()) == {"a": [1.5], "p": str(tmp_path)}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]
    assert harness.block_ratios([2.0, 3.0, 8.0], [1.0, 1.0, 2.0]) == {"median": 3.0, "min": 2.0,
                                                                      "max": 4.0}
