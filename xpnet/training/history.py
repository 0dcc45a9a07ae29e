"""What a run records: an :class:`EpochRecord` per evaluation and the :class:`History` of the
run (``history.json`` holds its :meth:`History.to_dict`)."""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from ..backend import backend_name

__all__ = ["EpochRecord", "History", "versions"]


@dataclass
class EpochRecord:
    """Accuracies after ``iteration`` steps (``epoch`` counts evaluations, from 1)."""

    epoch: int
    iteration: int
    train_acc: float
    test_acc: float
    loss: float
    seconds: float


@dataclass
class History:
    """What a run measured; ``to_dict()`` is what ``history.json`` holds."""

    config: dict[str, Any]
    backend: str
    device: str
    dtype: str
    epochs: list[EpochRecord] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    iterations: int = 0
    wall_time: float = 0.0
    train_time: float = 0.0
    status: str = "running"
    message: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    #: The test accuracy at the end of the run: the last evaluation's, or (when the loop is
    #: asked not to evaluate after the last step) a separate one on the whole test set.
    final_test_acc: float | None = None

    @property
    def train_acc_list(self) -> list[float]:
        """The train accuracy of every evaluation (the book's ``train_acc_list``)."""
        return [e.train_acc for e in self.epochs]

    @property
    def test_acc_list(self) -> list[float]:
        """The test accuracy of every evaluation (the book's ``test_acc_list``)."""
        return [e.test_acc for e in self.epochs]

    def to_dict(self) -> dict[str, Any]:
        """Plain data, ready for JSON."""
        return asdict(self)

    def continue_from(self, saved: Mapping[str, Any]) -> None:
        """Take over the progress of an earlier run of this one from its :meth:`to_dict` (a
        checkpoint's): its evaluations, losses, step count and times. The settings, backend
        and device stay this run's."""
        self.epochs[:] = [EpochRecord(**record) for record in saved["epochs"]]
        self.loss[:] = saved["loss"]
        self.iterations = len(self.loss)
        self.train_time = float(saved.get("train_time", 0.0))
        self.wall_time = float(saved.get("wall_time", 0.0))


def versions(xp: Any) -> dict[str, str]:
    """Versions of Python, xpnet, NumPy and the backend, for the record."""
    found = {"python": platform.python_version(), "xpnet": __version__, "numpy": np.__version__}
    name = backend_name(xp)  # NumPy's is there already
    found.setdefault(name, getattr(sys.modules.get(name), "__version__", "unknown"))
    compat = sys.modules.get("array_api_compat")
    if compat is not None:
        found["array_api_compat"] = compat.__version__
    return found
