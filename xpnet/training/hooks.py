"""The hooks a run is assembled from (besides :class:`~xpnet.training.DivergenceStop`):
:class:`Evaluation` (accuracies, the :class:`EpochRecord`), :class:`ProgressBar` (tqdm),
:class:`LogLines` (one line per evaluation) and :class:`Checkpoints` (the run's state, Ctrl-C
between steps). :func:`xpnet.train` passes them to the loop in the order
``DivergenceStop, Evaluation, ProgressBar, LogLines, Checkpoints``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..backend import Array
from ..checkpoint import Checkpointer
from .data import TrainingData
from .history import EpochRecord
from .loop import Hook, Run

__all__ = ["Checkpoints", "Evaluation", "LogLines", "ProgressBar"]


class Evaluation(Hook):
    """At each evaluation, the accuracy on the training and on the test set, recorded as an
    :class:`EpochRecord` in the history. ``samples``: only the first this many rows of each
    (the book's ``evaluate_sample_num_per_epoch``), else the whole sets. A run that does not
    evaluate after its last step (``run.eval_at_end`` false, the book's Trainer) measures the
    whole test set once at the end (``History.final_test_acc``).

    ``accuracy(x, t)`` is the network's (xpnet's count hits in batches on the device and read
    the total once), or data parallelism's, which splits the rows across the ranks."""

    def __init__(self, accuracy: Callable[[Array, Array], float], data: TrainingData, *,
                 samples: int | None = None) -> None:
        self.accuracy = accuracy
        n_train, n_test = data.train_size, data.x_test.shape[0]
        if samples is not None:  # more than a set holds: the whole set (a slice past the end
            n_train, n_test = min(samples, n_train), min(samples, n_test)  # is not portable)
        self.sets = (data.x_train[:n_train, ...], data.t_train[:n_train, ...],
                     data.x_test[:n_test, ...], data.t_test[:n_test, ...])
        self.test_set = (data.x_test, data.t_test)

    def evaluate(self, run: Run, label: str | None) -> None:
        """Measure and append the record."""
        x_train, t_train, x_test, t_test = self.sets
        history = run.history
        history.epochs.append(EpochRecord(
            epoch=len(history.epochs) + 1, iteration=history.iterations,
            train_acc=self.accuracy(x_train, t_train), test_acc=self.accuracy(x_test, t_test),
            loss=history.loss[-1], seconds=run.seconds))

    def finish(self, run: Run) -> None:
        """The whole test set, once, when the last step was not evaluated."""
        if not run.eval_at_end:
            run.history.final_test_acc = self.accuracy(*self.test_set)


class ProgressBar(Hook):
    """A tqdm bar over the steps, with the last evaluation's numbers beside it."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    @classmethod
    def open(cls, total: int) -> ProgressBar | None:
        """A bar of ``total`` steps, or ``None`` when tqdm is not installed."""
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return cls(tqdm(total=total, unit="it", dynamic_ncols=True, leave=True))

    def write(self, line: str) -> None:
        """Print ``line`` above the bar."""
        self.bar.write(line)

    def after_step(self, run: Run) -> None:
        """One step further."""
        self.bar.update(1)

    def evaluate(self, run: Run, label: str | None) -> None:
        """The record's loss and accuracies beside the bar."""
        record = run.history.epochs[-1]
        self.bar.set_postfix(loss=f"{record.loss:.3f}", train=f"{record.train_acc:.4f}",
                             test=f"{record.test_acc:.4f}")

    def close(self, run: Run | None = None) -> None:
        """Close the bar (again: nothing)."""
        self.bar.close()


class LogLines(Hook):
    """One line per evaluation through ``write`` (``print``, or a bar's ``write``): the epoch,
    or ``end`` for the evaluation after the last step, which starts no epoch."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write

    def evaluate(self, run: Run, label: str | None) -> None:
        """Write the record's line."""
        record = run.history.epochs[-1]
        name = f"epoch {record.epoch:>2}" if label is None else f"{label:<8}"
        self.write(f"{name}  iter {record.iteration:>6}  loss {record.loss:.4f}  "
                   f"train acc {record.train_acc:.4f}  test acc {record.test_acc:.4f}  "
                   f"({record.seconds:.1f} s)")


class Checkpoints(Hook):
    """The run's state through a :class:`~xpnet.checkpoint.Checkpointer`: written at every
    evaluation, after the last step (unless that was just written) and on Ctrl-C. While the
    loop runs, a Ctrl-C only sets a flag, raised between steps, so the state saved is never
    half a step. The permutation the batches come from (``run.batches``) and the step it was
    drawn at go into the checkpoint."""

    def __init__(self, saver: Checkpointer) -> None:
        self.saver = saver

    def save(self, run: Run) -> None:
        """Write the state now."""
        self.saver.save(run.batches.host, run.batches.drawn_at, run.elapsed())

    def start(self, run: Run) -> None:
        """Take over Ctrl-C (SIGINT)."""
        self.saver.__enter__()

    def before_step(self, run: Run) -> None:
        """Raise the ``KeyboardInterrupt`` of a Ctrl-C during the last step."""
        self.saver.poll()

    def evaluate(self, run: Run, label: str | None) -> None:
        """Write the state after the evaluation."""
        self.save(run)

    def finish(self, run: Run) -> None:
        """The last step's state, to extend the run from."""
        if self.saver.iteration != run.history.iterations:
            self.save(run)

    def interrupted(self, run: Run) -> None:
        """The state at the Ctrl-C."""
        self.save(run)

    def close(self, run: Run | None = None) -> None:
        """Give Ctrl-C and the run directory's lock back (again: nothing)."""
        self.saver.__exit__(None, None, None)
