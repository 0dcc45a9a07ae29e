"""The loop alone (xpnet.training.loop): when it calls each hook, what it shares with them
(:class:`Run`), how a run ends; driven by a scripted step, no network."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.training import (
    BatchOrder,
    DivergedError,
    History,
    Hook,
    NonFiniteLossError,
    Run,
    Step,
    run_loop,
)


class ScriptedStep(Step):
    """Returns the losses 1.0, 2.0, ... (0-d NumPy arrays); raises ``raises`` at step
    ``fail_at`` (counted from 1); counts polls and closes."""

    def __init__(self, fail_at: int | None = None, raises: type[BaseException] = RuntimeError):
        self.calls, self.polls, self.closed = 0, 0, 0
        self.rows: list[list[int]] = []
        self.fail_at, self.raises = fail_at, raises

    def __call__(self, idx, /):
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.raises("step failed")
        self.rows.append(np.asarray(idx).tolist())
        return np.asarray(float(self.calls))

    def poll(self) -> None:
        self.polls += 1


class Recorder(Hook):
    """Records every call as ``(name, what, iteration)``."""

    def __init__(self, name: str, log: list, per_step: bool = True):
        self.name, self.log, self.per_step = name, log, per_step

    def _note(self, what, run, *extra):
        self.log.append((self.name, what, run.history.iterations, *extra))

    def start(self, run):
        self._note("start", run)

    def evaluate(self, run, label):
        self._note("evaluate", run, label, list(run.new_losses))

    def finish(self, run):
        self._note("finish", run)

    def interrupted(self, run):
        self._note("interrupted", run)

    def diverged(self, run, error):
        self._note("diverged", run, str(error))

    def close(self, run):
        self._note("close", run)


class StepRecorder(Recorder):
    def before_step(self, run):
        self._note("before", run)

    def after_step(self, run):
        self._note("after", run)


def _run(iters=6, every=4, at_end=True, first=0) -> Run:
    history = History(config={}, backend="numpy", device="cpu", dtype="float64")
    batches = BatchOrder(np.random.default_rng(0), 8, 2, np, "cpu", first=first)
    return Run(history, batches, first=first, iters=iters, eval_every=every, eval_at_end=at_end,
               started=0.0)


def test_hooks_are_called_in_order_at_each_point():
    log: list = []
    run = _run(iters=6, every=4)
    step = ScriptedStep()
    run_loop(run, step, [StepRecorder("a", log), Recorder("b", log)])
    per_step = [(w, i) for n, w, i, *_ in log if w in ("before", "after")]
    assert per_step == [(w, i) for k in range(6) for w, i in (("before", k), ("after", k + 1))]
    rest = [entry for entry in log if entry[1] not in ("before", "after")]
    assert rest == [
        ("a", "start", 0), ("b", "start", 0),
        # every 4 steps from the first (steps 1 and 5), then after the last one ("end")
        ("a", "evaluate", 1, None, [1.0]), ("b", "evaluate", 1, None, [1.0]),
        ("a", "evaluate", 5, None, [2.0, 3.0, 4.0, 5.0]),
        ("b", "evaluate", 5, None, [2.0, 3.0, 4.0, 5.0]),
        ("a", "evaluate", 6, "end", [6.0]), ("b", "evaluate", 6, "end", [6.0]),
        ("a", "finish", 6), ("b", "finish", 6),
        ("b", "close", 6), ("a", "close", 6),  # the reverse order
    ]
    assert run.history.loss == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert run.history.iterations == 6
    assert run.history.status == "running"  # train() closes the history
    assert step.polls == 6


def test_without_eval_at_end_the_last_step_is_not_evaluated():
    log: list = []
    run_loop(_run(iters=6, every=4, at_end=False), ScriptedStep(), [Recorder("a", log)])
    assert [i for _, what, i, *_ in log if what == "evaluate"] == [1, 5]


def test_per_step_methods_run_only_for_hooks_that_override_them(monkeypatch):
    """The loop skips the no-op before/after_step of hooks that do not define them: a hook
    costs nothing per step unless it needs to."""
    called: list = []
    monkeypatch.setattr(Hook, "before_step", lambda self, run: called.append("before"))
    monkeypatch.setattr(Hook, "after_step", lambda self, run: called.append("after"))
    run_loop(_run(), ScriptedStep(), [Recorder("a", [])])
    assert called == []


def test_the_batches_come_from_the_runs_batch_order():
    run = _run(iters=8, every=100, first=0)
    step = ScriptedStep()
    run_loop(run, step, [])
    epochs = [sorted(row for batch in step.rows[k:k + 4] for row in batch) for k in (0, 4)]
    assert epochs == [list(range(8))] * 2  # each epoch: a permutation of all 8 rows
    assert step.rows[:4] != step.rows[4:]  # a new permutation every epoch


@pytest.mark.parametrize("where", ["step", "poll", "hook"])
def test_ctrl_c_ends_the_run_as_interrupted_keeping_the_losses(where):
    log: list = []
    step = ScriptedStep(fail_at=4 if where == "step" else None, raises=KeyboardInterrupt)
    hooks: list[Hook] = [Recorder("a", log)]
    if where == "poll":
        step.poll = lambda: (_ for _ in ()).throw(KeyboardInterrupt) if step.calls == 3 else None
    if where == "hook":
        class Stop(Hook):
            def after_step(self, run):
                if run.history.iterations == 3:
                    raise KeyboardInterrupt
        hooks.append(Stop())
    run = _run(iters=6, every=100)
    run_loop(run, step, hooks)
    assert run.history.status == "interrupted"
    assert run.history.iterations == 3
    assert run.history.message == "interrupted by the user after 3 iterations"
    assert run.history.loss == [1.0, 2.0, 3.0]  # the pending losses came to the host
    assert [what for _, what, *_ in log] == ["start", "evaluate", "interrupted", "close"]


def test_a_divergence_ends_the_run_as_diverged():
    log: list = []

    class Diverge(Hook):
        def evaluate(self, run, label):
            if run.history.iterations == 5:
                raise NonFiniteLossError("the loss became nan at iteration 5")

    run = _run(iters=6, every=4)
    run_loop(run, ScriptedStep(), [Diverge(), Recorder("a", log)])
    assert run.history.status == "diverged"
    assert run.history.message == ("training diverged: the loss became nan at iteration 5; "
                                   "training stopped")
    assert log[-2:] == [("a", "diverged", 5, "the loss became nan at iteration 5"),
                        ("a", "close", 5)]
    assert issubclass(NonFiniteLossError, DivergedError)


def test_other_errors_propagate_after_every_hook_is_closed():
    log: list = []
    with pytest.raises(RuntimeError, match="step failed"):
        run_loop(_run(), ScriptedStep(fail_at=3), [Recorder("a", log), Recorder("b", log)])
    assert [(n, what) for n, what, *_ in log[-2:]] == [("b", "close"), ("a", "close")]
    assert "interrupted" not in [what for _, what, *_ in log]


def test_a_resumed_run_starts_at_its_first_step():
    log: list = []
    run = _run(iters=6, every=4, first=3)
    step = ScriptedStep()
    run_loop(run, step, [Recorder("a", log)])
    assert step.calls == 3
    # steps 4 (index 3) and 5 are not on the schedule; index 4 is, then the end
    assert [(i, label) for _, what, i, *rest in log if what == "evaluate"
            for label in rest[:1]] == [(5, None), (6, "end")]
