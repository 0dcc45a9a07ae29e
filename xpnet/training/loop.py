"""The training loop, and what it calls (:class:`Hook`) and shares (:class:`Run`).

:func:`run_loop` takes the steps and, at each evaluation, brings the losses since the last one
to the host in one transfer; everything else (evaluation, divergence stops, checkpoints, the
progress bar and log lines) is a hook (Chainer's training extensions), called in the order given.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import Array, namespace, to_numpy
from .data import BatchOrder
from .history import History
from .steps import Step

__all__ = ["DivergedError", "Hook", "NonFiniteLossError", "Run", "run_loop"]


class DivergedError(FloatingPointError):
    """Training diverged: the loss became NaN or infinite, or grew far past its start."""


class NonFiniteLossError(DivergedError):
    """The training loss became NaN or infinite."""


@dataclass
class Run:
    """The state of a run that the loop and its hooks share."""

    history: History
    #: ``batches(i)``: the rows of step ``i``.
    batches: BatchOrder
    #: Steps ``first`` to ``iters - 1`` are taken (``first > 0`` when resumed).
    first: int
    iters: int
    #: An evaluation every ``eval_every`` steps from the first (step index ``0``), and after
    #: the last step when ``eval_at_end``.
    eval_every: int
    eval_at_end: bool
    #: ``time.perf_counter()`` at training time 0 (earlier than now when resumed).
    started: float
    #: Losses of the steps since the last transfer, still on the device.
    pending: list[Array] = field(default_factory=list)
    #: The losses the last transfer brought (they end ``history.loss``).
    new_losses: list[float] = field(default_factory=list)
    #: Training seconds when the current evaluation began.
    seconds: float = 0.0

    def elapsed(self) -> float:
        """Training seconds so far."""
        return time.perf_counter() - self.started

    def sync_losses(self) -> None:
        """Bring the pending losses to the host (one transfer) and append them to the
        history; :attr:`new_losses` holds them (empty when there were none)."""
        if not self.pending:
            self.new_losses = []
            return
        xp = namespace(self.pending[0])
        self.new_losses = to_numpy(xp.stack(self.pending)).astype(np.float64).tolist()
        self.pending.clear()
        self.history.loss.extend(self.new_losses)


class Hook:
    """A part of a run that the loop calls at fixed points; every method does nothing here.

    Order matters: at an evaluation the hooks run in the order the loop was given them (the
    divergence stop before the evaluation that appends the record, the progress bar and the
    log after it, the checkpoint last). :meth:`before_step` and :meth:`after_step` run every
    step, so the loop calls them only for hooks that override them.
    """

    def start(self, run: Run) -> None:
        """Before the first step."""

    def before_step(self, run: Run) -> None:
        """Before each step (a Ctrl-C caught on the way takes effect here)."""

    def after_step(self, run: Run) -> None:
        """After each step (``run.history.iterations`` counts it)."""

    def evaluate(self, run: Run, label: str | None) -> None:
        """At an evaluation, the losses on the host; ``label`` is ``None`` at the start of an
        epoch, ``"end"`` for the evaluation after the last step."""

    def finish(self, run: Run) -> None:
        """After the last step, the losses on the host."""

    def interrupted(self, run: Run) -> None:
        """After a Ctrl-C, the losses on the host."""

    def diverged(self, run: Run, error: DivergedError) -> None:
        """After the run stopped as diverged (``run.history.message`` may be refined)."""

    def close(self, run: Run) -> None:
        """Last, whatever happened (in the reverse order)."""


def _overriding(hooks: Sequence[Hook], name: str) -> list[Callable[[Run], None]]:
    return [getattr(hook, name) for hook in hooks
            if getattr(type(hook), name) is not getattr(Hook, name)]


def _each(hooks: Sequence[Hook], name: str, *args: Any) -> None:
    for hook in hooks:
        getattr(hook, name)(*args)


def run_loop(run: Run, step: Step, hooks: Sequence[Hook]) -> None:
    """Take steps ``run.first`` to ``run.iters - 1``, evaluating on the schedule, and end the
    history's ``status``: ``"interrupted"`` on Ctrl-C and ``"diverged"`` on
    :class:`DivergedError` (both keep what was measured); other errors propagate after the
    hooks are closed."""
    history, pending, batches = run.history, run.pending, run.batches
    before, after = _overriding(hooks, "before_step"), _overriding(hooks, "after_step")
    every, last = run.eval_every, run.iters - 1 if run.eval_at_end else -1
    try:
        _each(hooks, "start", run)
        for i in range(run.first, run.iters):
            for call in before:
                call(run)
            step.poll()
            pending.append(step(batches(i)))
            history.iterations = i + 1
            for call in after:
                call(run)
            if i % every == 0 or i == last:
                run.seconds = run.elapsed()
                run.sync_losses()
                _each(hooks, "evaluate", run, None if i % every == 0 else "end")
        run.sync_losses()
        _each(hooks, "finish", run)
    except KeyboardInterrupt:
        history.status = "interrupted"
        history.message = f"interrupted by the user after {history.iterations} iterations"
        # The run is over either way; a NaN among these losses shows in history.loss.
        with contextlib.suppress(DivergedError):
            run.sync_losses()
            _each(hooks, "interrupted", run)
    except DivergedError as exc:
        history.status = "diverged"
        history.message = f"training diverged: {exc}; training stopped"
        _each(hooks, "diverged", run, exc)
    finally:
        _each(hooks[::-1], "close", run)
