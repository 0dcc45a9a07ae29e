"""The hooks a run is assembled from: evaluation, log lines, progress bar, checkpoints and
divergence stops, each against a hand-made :class:`Run`."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xpnet.training import (
    DIVERGENCE_FACTOR,
    BatchOrder,
    Checkpoints,
    DivergedError,
    DivergenceStop,
    Evaluation,
    History,
    LogLines,
    NonFiniteLossError,
    ProgressBar,
    Run,
    TrainingData,
)


def _data(classes=3) -> TrainingData:
    x = np.arange(40.0).reshape(20, 2)
    t = np.arange(20) % classes
    return TrainingData(x, t, x[:8], t[:8], classes=classes)


def _run(eval_at_end=True, loss=(2.0, 1.5)) -> Run:
    history = History(config={}, backend="numpy", device="cpu", dtype="float64",
                      loss=list(loss), iterations=len(loss))
    batches = BatchOrder(np.random.default_rng(0), 20, 5, np, "cpu")
    run = Run(history, batches, first=0, iters=10, eval_every=4, eval_at_end=eval_at_end,
              started=0.0, new_losses=list(loss))
    run.seconds = 1.25
    return run


class Accuracy:
    """Records the rows it is asked about; answers their count / 100."""

    def __init__(self):
        self.asked: list[int] = []

    def __call__(self, x, t):
        assert x.shape[0] == t.shape[0]
        self.asked.append(int(x.shape[0]))
        return x.shape[0] / 100


def test_more_samples_than_a_set_holds_evaluate_the_whole_set(xp):
    """The book's evaluate_sample_num_per_epoch=1000 on a cut training set: array-api-strict
    refuses a slice that ends past the axis, so the hook must not make one."""
    x = xp.asarray(np.arange(40.0).reshape(20, 2), "float64")
    t = xp.asarray(np.arange(20) % 3, "int64")
    accuracy = Accuracy()
    Evaluation(accuracy, TrainingData(x, t, x[:8, ...], t[:8, ...], classes=3),
               samples=1000).evaluate(_run(), None)
    assert accuracy.asked == [20, 8]


@pytest.mark.parametrize(("samples", "rows"), [(None, [20, 8]), (5, [5, 5]), (12, [12, 8])])
def test_evaluation_records_the_accuracies_of_the_sets(samples, rows):
    accuracy, run = Accuracy(), _run()
    Evaluation(accuracy, _data(), samples=samples).evaluate(run, None)
    (record,) = run.history.epochs
    assert accuracy.asked == rows
    assert (record.epoch, record.iteration, record.loss, record.seconds) == (1, 2, 1.5, 1.25)
    assert (record.train_acc, record.test_acc) == (rows[0] / 100, rows[1] / 100)


@pytest.mark.parametrize("eval_at_end", [True, False])
def test_evaluation_measures_the_whole_test_set_at_the_end_only_for_the_books_schedule(
        eval_at_end):
    accuracy, run = Accuracy(), _run(eval_at_end=eval_at_end)
    Evaluation(accuracy, _data(), samples=5).finish(run)
    assert accuracy.asked == ([] if eval_at_end else [8])
    assert run.history.final_test_acc == (None if eval_at_end else 0.08)


def test_log_lines_name_the_epoch_or_the_end():
    lines: list[str] = []
    run = _run()
    Evaluation(Accuracy(), _data()).evaluate(run, None)
    LogLines(lines.append).evaluate(run, None)
    run.history.iterations = 10
    Evaluation(Accuracy(), _data()).evaluate(run, "end")
    LogLines(lines.append).evaluate(run, "end")
    assert lines == [
        "epoch  1  iter      2  loss 1.5000  train acc 0.2000  test acc 0.0800  (1.2 s)",
        "end       iter     10  loss 1.5000  train acc 0.2000  test acc 0.0800  (1.2 s)",
    ]


def test_the_progress_bar_counts_steps_and_shows_the_last_record():
    class Bar:
        def __init__(self):
            self.updates, self.postfix, self.closed = 0, None, 0

        def update(self, n):
            self.updates += n

        def set_postfix(self, **kw):
            self.postfix = kw

        def close(self):
            self.closed += 1

    run, bar = _run(), Bar()
    hook = ProgressBar(bar)
    for _ in range(3):
        hook.after_step(run)
    Evaluation(Accuracy(), _data()).evaluate(run, None)
    hook.evaluate(run, None)
    hook.close(run)
    assert bar.updates == 3
    assert bar.postfix == {"loss": "1.500", "train": "0.2000", "test": "0.0800"}
    assert bar.closed == 1


class Saver:
    """Stands in for a Checkpointer: records what it is asked."""

    def __init__(self):
        self.saved: list[tuple] = []
        self.iteration = None
        self.entered = self.exited = 0

    def save(self, order, drawn_at, seconds):
        self.saved.append((order, drawn_at))
        self.iteration = 99

    def poll(self):
        raise KeyboardInterrupt

    def __enter__(self):
        self.entered += 1

    def __exit__(self, *exc):
        self.exited += 1


def test_checkpoints_are_written_at_evaluations_the_end_and_ctrl_c():
    saver, run = Saver(), _run()
    run.batches(0)  # draws the permutation a checkpoint keeps
    hook = Checkpoints(saver)
    hook.start(run)
    with pytest.raises(KeyboardInterrupt):  # a Ctrl-C seen during the last step
        hook.before_step(run)
    hook.evaluate(run, None)
    assert saver.saved[-1][0] is run.batches.host
    assert saver.saved[-1][1] == 0
    hook.finish(run)  # the state at the end differs from the last one written: write it
    assert len(saver.saved) == 2
    run.history.iterations = saver.iteration
    hook.finish(run)  # just written: not again
    hook.interrupted(run)
    hook.close(run)
    assert len(saver.saved) == 3
    assert (saver.entered, saver.exited) == (1, 1)


def test_a_non_finite_loss_stops_the_run_with_its_iteration():
    stop = DivergenceStop(_data(), optimizer=type("Opt", (), {"lr": 0.5})())
    run = _run(loss=(2.0, 1.5, math.nan, 1.0))
    run.new_losses = [math.nan, 1.0]
    with pytest.raises(NonFiniteLossError, match="the loss became nan at iteration 3"):
        stop.evaluate(run, None)
    stop.diverged(run, NonFiniteLossError("the loss became nan at iteration 3"))
    assert run.history.message == (
        "training diverged: the loss became nan at iteration 3; training stopped. "
        "The learning rate is the likely cause: try a smaller one than lr=0.5")


@pytest.mark.parametrize("point", ["evaluate", "finish", "interrupted"])
def test_growth_is_measured_from_the_first_loss_or_the_loss_of_guessing(point):
    """A run that starts from a trained network (first loss 0.01) is not held to its tiny
    start: the loss of guessing, log(classes), bounds it from below, at every point the
    losses come to the host."""
    stop = DivergenceStop(_data(classes=10), optimizer=None)
    assert stop.floor == pytest.approx(math.log(10))
    calm = [0.01] + [DIVERGENCE_FACTOR * 0.01 * 5] * 20  # 50 times the start, under 10 log(10)
    run = _run(loss=calm)
    call = getattr(stop, point)
    call(run, None) if point == "evaluate" else call(run)
    wild = [0.01] + [DIVERGENCE_FACTOR * math.log(10) * 1.1] * 20
    run = _run(loss=wild)
    with pytest.raises(DivergedError, match=r"the loss grew from 0\.01 at iteration 1"):
        call(run, None) if point == "evaluate" else call(run)


def test_nothing_new_nothing_to_check():
    stop = DivergenceStop(_data(), optimizer=None)
    run = _run(loss=(0.1, math.nan))
    run.new_losses = []
    stop.finish(run)  # the NaN was checked when it came
