"""The book's accuracy figure (train and test accuracy per epoch); matplotlib is optional."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from ._files import atomic_write_bytes

__all__ = ["MatplotlibMissing", "history_figure", "plot_history"]


class MatplotlibMissing(ImportError):
    """matplotlib is not installed (``pip install "xpnet[plot]"``)."""


def plot_history(history: Any, path: str | os.PathLike[str]) -> Path:
    """Draw train/test accuracy per epoch (left, as the book's figure 4-12) and the per-step
    loss (right) into a PNG at ``path``, written atomically.

    Raises :class:`MatplotlibMissing` when matplotlib is not installed.
    """
    fig = history_figure(history)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return atomic_write_bytes(path, buffer.getvalue())


def history_figure(history: Any) -> Any:
    """The ``matplotlib.figure.Figure`` that :func:`plot_history` saves: accuracy per epoch
    (whole-number epoch ticks) and the mini-batch loss per iteration."""
    try:
        # A bare Figure renders with Agg and leaves pyplot's global backend alone.
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:
        msg = f"matplotlib is not installed ({exc}); pip install 'xpnet[plot]' to get plots"
        raise MatplotlibMissing(msg) from None

    # Epochs as iterations / steps-per-epoch, so a last partial epoch sits where it belongs.
    per_epoch = history.config.get("eval_every") or 1
    epochs = [e.iteration / per_epoch for e in history.epochs]
    fig = Figure(figsize=(10, 4), layout="constrained")
    acc, loss = fig.subplots(1, 2)
    acc.plot(epochs, history.train_acc_list, marker="o", label="train acc")
    acc.plot(epochs, history.test_acc_list, marker="s", linestyle="--", label="test acc")
    acc.set_xlabel("epochs")
    acc.xaxis.set_major_locator(MaxNLocator(integer=True))  # epoch 2, not 2.5
    acc.set_ylabel("accuracy")
    acc.set_ylim(0, 1.0)
    acc.legend(loc="lower right")
    acc.set_title(f"{history.backend} {history.dtype}: final test acc "
                  f"{history.final_test_acc:.4f}" if history.epochs else history.backend)
    loss.plot(range(1, len(history.loss) + 1), history.loss, linewidth=0.5)
    loss.set_xlabel("iteration")
    loss.set_ylabel("training loss (mini-batch)")
    loss.set_yscale("log")
    return fig
