"""The book's ``Trainer`` (``common/trainer.py``), driving xpnet's one training loop.

``Trainer(network, x_train, t_train, x_test, t_test, epochs=20, mini_batch_size=100,
optimizer='SGD', optimizer_param={'lr': 0.01}, evaluate_sample_num_per_epoch=None, verbose=True)``
takes the book's arguments and fills the book's ``train_loss_list``, ``train_acc_list`` and
``test_acc_list``; the work is done by :func:`xpnet.train`, the loop that ``xpnet train``
uses too: the data moves to the network's device once, losses come back once per epoch, a
NaN loss stops the run, Ctrl-C keeps what was measured, and a progress bar shows on a terminal.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from typing import Any

from .._checks import optional_positive_int, positive_int
from ..checkpoint import load_checkpoint
from ..optim import Optimizer, get_optimizer
from .api import train
from .history import History

__all__ = ["Trainer"]


class Trainer:
    """Train ``network`` for ``epochs`` epochs of ``mini_batch_size`` samples (the book's API).

    Parameters
    ----------
    network
        An xpnet network (:class:`~xpnet.TwoLayerNet`, :class:`~xpnet.MultiLayerNet`, ...) or
        a network of the book's shape (``params``, ``gradient``, ``accuracy``).
    x_train, t_train, x_test, t_test
        Host NumPy arrays or arrays of the network's backend; labels are class indices or
        one-hot rows.
    epochs, mini_batch_size
        ``int(epochs * max(N / mini_batch_size, 1))`` steps in all.
    optimizer, optimizer_param
        An optimizer name (``'sgd'``, ``'momentum'``, ``'nesterov'``, ``'adagrad'``,
        ``'rmsprop'``, ``'adam'``; any case) and its keyword arguments, or an optimizer object.
    evaluate_sample_num_per_epoch
        Evaluate the accuracies on the first this many train and test samples (all if ``None``).
    verbose
        Print one line per epoch and the final test accuracy.
    seed
        Seeds the host generator that orders the mini-batches (keyword only).
    progress
        Show a progress bar (default: when ``verbose`` and standard error is a terminal).
    checkpoint
        Write the run's state to this file at every epoch and on Ctrl-C (keyword only;
        :meth:`resume` continues from it).
    comm
        Data parallelism over MPI (keyword only): an mpi4py communicator such as
        ``MPI.COMM_WORLD`` (see :mod:`xpnet.training.parallel`); each process passes the same
        data and arguments, every mini-batch is split across them, and only rank 0 prints.

    Notes
    -----
    After :meth:`train`, ``train_loss_list`` holds the loss of every step (the loss of the
    forward pass each gradient came from), ``train_acc_list`` and ``test_acc_list`` one value
    per epoch, and :attr:`history` the whole record.
    """

    def __init__(
        self,
        network: Any,
        x_train: Any,
        t_train: Any,
        x_test: Any,
        t_test: Any,
        epochs: int = 20,
        mini_batch_size: int = 100,
        optimizer: str | Optimizer = "SGD",
        optimizer_param: Mapping[str, Any] | None = None,
        evaluate_sample_num_per_epoch: int | None = None,
        verbose: bool = True,
        *,
        seed: int | None = 0,
        progress: bool | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        comm: Any = None,
    ) -> None:
        positive_int(epochs, "epochs")
        positive_int(mini_batch_size, "mini_batch_size")
        optional_positive_int(evaluate_sample_num_per_epoch, "evaluate_sample_num_per_epoch")
        self.network = network
        self.verbose = verbose
        self.x_train, self.t_train = x_train, t_train
        self.x_test, self.t_test = x_test, t_test
        self.epochs = epochs
        self.batch_size = mini_batch_size
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        if isinstance(optimizer, str):
            params = {"lr": 0.01} if optimizer_param is None else dict(optimizer_param)
            self.optimizer = get_optimizer(optimizer, **params)
        else:
            if optimizer_param:
                msg = "optimizer_param goes with an optimizer name, not an optimizer object"
                raise TypeError(msg)
            self.optimizer = optimizer
        self.seed = seed
        self.progress = progress
        self.checkpoint = checkpoint
        self.comm = comm
        self.train_size = int(x_train.shape[0])
        self.iter_per_epoch = max(self.train_size / mini_batch_size, 1)
        self.max_iter = int(epochs * self.iter_per_epoch)
        self.train_loss_list: list[float] = []
        self.train_acc_list: list[float] = []
        self.test_acc_list: list[float] = []
        self.history: History | None = None
        self.final_test_acc: float | None = None

    def train(self) -> History:
        """Run all ``max_iter`` steps, then measure the test accuracy on the whole test set."""
        return self._run(None)

    def resume(self, path: str | os.PathLike[str]) -> History:
        """Continue a run from its checkpoint (a file, or a run directory holding
        ``checkpoint.npz``) and finish it as :meth:`train` would: the network and the optimizer
        get the checkpoint's state and take exactly the steps the uninterrupted run takes.
        This trainer's network, optimizer and settings must be the run's (else
        :class:`~xpnet.checkpoint.CheckpointError`); the network may live on another backend or
        device. Further checkpoints go to ``checkpoint`` (default: ``path``)."""
        state = load_checkpoint(path)
        if self.checkpoint is None:
            self.checkpoint = state.path
        return self._run(state)

    def _run(self, resume_from: Any) -> History:
        progress = self.progress
        if progress is None:
            progress = self.verbose and sys.stderr.isatty()
        comm = self.comm
        rank = 0 if comm is None else getattr(comm, "rank", None)
        root = (comm.Get_rank() if rank is None else rank) == 0
        verbose = self.verbose and root
        history = train(
            self.network, self.x_train, self.t_train, self.x_test, self.t_test,
            iters=self.max_iter, batch_size=self.batch_size, optimizer=self.optimizer,
            seed=self.seed, eval_every=max(math.ceil(self.iter_per_epoch), 1),
            eval_samples=self.evaluate_sample_num_per_epoch, eval_at_end=False,
            progress=progress, log=print if verbose else None, comm=comm,
            checkpoint=self.checkpoint if root else None, resume_from=resume_from,
        )
        self.history = history
        self.train_loss_list = list(history.loss)
        self.train_acc_list = history.train_acc_list
        self.test_acc_list = history.test_acc_list
        if history.status == "finished":
            self.final_test_acc = history.final_test_acc
            if verbose:
                print("=============== Final Test Accuracy ===============")
                print(f"test acc: {self.final_test_acc}")
        elif verbose:
            print(f"training stopped: {history.message}")
        return history
