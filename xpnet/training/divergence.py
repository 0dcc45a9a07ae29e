"""Divergence stops: a run ends as diverged (:class:`~xpnet.training.DivergedError`,
``History.status == "diverged"``) when a loss becomes NaN or infinite, or when the median loss
of the last steps grows far past where the run began (:data:`DIVERGENCE_FACTOR` times the
first step's loss, or times the loss of guessing, ``log(classes)``, when that is larger). The
message names the likely cause: non-finite or very large values in the training data, else the
learning rate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import Array, namespace
from .data import TrainingData
from .history import History
from .loop import DivergedError, Hook, NonFiniteLossError, Run

__all__ = ["DIVERGENCE_FACTOR", "DIVERGENCE_WINDOW", "DivergenceStop", "check_losses",
           "divergence_message"]

#: A run has diverged when the median loss of its last :data:`DIVERGENCE_WINDOW` steps exceeds
#: this many times its start: the first step's loss, or the loss of guessing (``log(classes)``)
#: when that is larger, so that a run starting from a trained network is not held to its tiny
#: first loss. Healthy runs, even noisy ones (Adam at a high rate, a loss spike), stay far below;
#: a learning rate far too large (``--lr 1e6``) passes it within an epoch.
DIVERGENCE_FACTOR = 10.0
#: Steps whose median loss is compared (fewer at the start of a run: at least 10).
DIVERGENCE_WINDOW = 100


def check_losses(history: History, new: list[float], floor: float = 0.0) -> None:
    """Raise :class:`~xpnet.training.DivergedError` if the losses just added to the history
    (``new``, its last ones) hold a NaN/inf (:class:`~xpnet.training.NonFiniteLossError`, with
    its iteration), or the median of the last :data:`DIVERGENCE_WINDOW` losses exceeds
    :data:`DIVERGENCE_FACTOR` times ``max(first loss, floor)``. Nothing new: nothing to check."""
    if not new:
        return
    first = len(history.loss) - len(new)
    for offset, value in enumerate(new):
        if not math.isfinite(value):
            raise NonFiniteLossError(f"the loss became {value} at iteration {first + offset + 1}")
    window = history.loss[-DIVERGENCE_WINDOW:]
    if len(window) < 10 or not math.isfinite(history.loss[0]):
        return
    start = max(history.loss[0], floor)
    typical = float(np.median(window))
    if typical > DIVERGENCE_FACTOR * start:
        end = len(history.loss)
        msg = (f"the loss grew from {history.loss[0]:.4g} at iteration 1 to a median of "
               f"{typical:.4g} over iterations {end - len(window) + 1}-{end}, more than "
               f"{DIVERGENCE_FACTOR:g} times its start")
        raise DivergedError(msg)


def divergence_message(exc: DivergedError, x_train: Array, t_train: Array, lr: float) -> str:
    """``exc``'s text with the likely cause and fix: non-finite or very large values in the
    training data (read back now, on the way out), else the learning rate."""
    xp = namespace(x_train)
    text = f"training diverged: {exc}; training stopped. "
    for name, values in (("images", x_train), ("labels", t_train)):
        if not xp.isdtype(values.dtype, "real floating"):
            continue
        bad = int(xp.sum(xp.astype(~xp.isfinite(values), xp.int64)))
        if bad:
            return (text + f"The training {name} hold {bad} NaN or infinite values: clean the "
                    "data (a smaller learning rate will not help)")
    largest = float(xp.max(xp.abs(x_train))) if math.prod(x_train.shape) else 0.0
    if largest > 100.0:
        return (text + f"The training images reach |x| = {largest:g}: scale them to about "
                "[0, 1] (load_mnist(normalize=True), or divide by their largest value)")
    return text + f"The learning rate is the likely cause: try a smaller one than lr={lr:g}"


class DivergenceStop(Hook):
    """Checks the losses each time they come to the host (:func:`check_losses`): at every
    evaluation, after the last step and on Ctrl-C; names the likely cause when the run
    diverged (:func:`divergence_message`). ``data`` and ``optimizer`` are the run's."""

    def __init__(self, data: TrainingData, optimizer: Any) -> None:
        self.data, self.optimizer = data, optimizer
        # The loss of guessing among the classes bounds the start from below.
        classes = data.classes
        self.floor = math.log(classes) if classes and classes > 1 else 0.0

    def evaluate(self, run: Run, label: str | None) -> None:
        """Stop before the evaluation when the losses since the last one diverged."""
        check_losses(run.history, run.new_losses, self.floor)

    def finish(self, run: Run) -> None:
        """The losses after the last evaluation."""
        check_losses(run.history, run.new_losses, self.floor)

    def interrupted(self, run: Run) -> None:
        """The losses before the Ctrl-C (a diverged run writes no checkpoint)."""
        check_losses(run.history, run.new_losses, self.floor)

    def diverged(self, run: Run, error: DivergedError) -> None:
        """Name the likely cause in ``run.history.message``."""
        run.history.message = divergence_message(error, self.data.x_train, self.data.t_train,
                                                 float(self.optimizer.lr))
