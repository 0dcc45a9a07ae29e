"""Training (Chainer's ``chainer/training/`` is the model): :func:`train` assembles a run from
small parts, and :class:`Trainer` is the book's API over it.

- :mod:`~xpnet.training.api`: :func:`train`, the assembly of the parts below.
- :mod:`~xpnet.training.loop`: :func:`run_loop`, the loop alone; :class:`Hook`, what it calls;
  :class:`Run`, what it shares with them; :class:`DivergedError`, how a run stops.
- :mod:`~xpnet.training.steps`: :class:`Step`, one optimizer step (:class:`EagerStep`,
  :class:`GraphStep`; data parallelism's :class:`~xpnet.training.parallel.ParallelStep`).
- :mod:`~xpnet.training.hooks` and :mod:`~xpnet.training.divergence`: evaluation, the progress
  bar, log lines, checkpoints and divergence stops, as hooks.
- :mod:`~xpnet.training.history`: the record types, :class:`EpochRecord` and :class:`History`.
- :mod:`~xpnet.training.data`: the data on the device, checked once; :class:`BatchOrder`.
- :mod:`~xpnet.training.parallel`: data parallelism over MPI (imported only when asked for).
- :mod:`~xpnet.training.trainer`: the book's :class:`Trainer`.
"""

from .api import train
from .data import BatchOrder, TrainingData, move_images, move_labels, prepare_data
from .divergence import DIVERGENCE_FACTOR, DIVERGENCE_WINDOW, DivergenceStop
from .history import EpochRecord, History, versions
from .hooks import Checkpoints, Evaluation, LogLines, ProgressBar
from .loop import DivergedError, Hook, NonFiniteLossError, Run, run_loop
from .steps import EagerStep, GraphStep, Step, loss_reader, make_step, sgd_step, takes_scale
from .trainer import Trainer

__all__ = [
    "DIVERGENCE_FACTOR",
    "DIVERGENCE_WINDOW",
    "BatchOrder",
    "Checkpoints",
    "DivergedError",
    "DivergenceStop",
    "EagerStep",
    "EpochRecord",
    "Evaluation",
    "GraphStep",
    "History",
    "Hook",
    "LogLines",
    "NonFiniteLossError",
    "ProgressBar",
    "Run",
    "Step",
    "Trainer",
    "TrainingData",
    "loss_reader",
    "make_step",
    "move_images",
    "move_labels",
    "prepare_data",
    "run_loop",
    "sgd_step",
    "takes_scale",
    "train",
    "versions",
]
