"""``train()``: the training loop of the book (section 5.7.4 and ``common/trainer.py``) on any
backend and device, assembled from the package's parts.

Mini-batches of ``batch_size`` drawn at random, an optimizer (plain SGD by default), train and test
accuracy once per epoch. ``xpnet train`` and :class:`xpnet.Trainer` both run this loop.
The data moves to the network's device once; each epoch draws a permutation on the host (seeded
NumPy), moves it to the device, and gathers batches there with ``take``. No step reads anything
back: the per-step losses stay on the device. Device->host reads (syncs): four before the loop
(the smallest and largest label of each set, checked once), then three per evaluation (the
losses since the last one, in one transfer, and the count of correct predictions on the train
and on the test set: xpnet's networks count them in batches on the device and read the total
once). Evaluations cover the whole training and test sets unless ``eval_samples`` says
otherwise. A run stops as diverged as :mod:`xpnet.training.divergence` says.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from .._checks import optional_positive_int, positive_int
from ..backend import backend_name, dtype_name, on_device
from ..blas_threads import check_threads
from ..blas_threads import threads as threads_for_run
from ..checkpoint import Checkpointer
from ..ops import ops_for
from ..optim import SGD, Optimizer, get_optimizer
from .data import BatchOrder, TrainingData, labels_checked_once, net_setting, prepare_data
from .divergence import DivergenceStop
from .history import History, versions
from .hooks import Checkpoints, Evaluation, LogLines, ProgressBar
from .loop import Hook, Run, run_loop
from .steps import Step, make_step

__all__ = ["train"]


def _on_net_device(run: Callable[..., History]) -> Callable[..., History]:
    """``run(net, ...)`` with the network's device current (CuPy allocates and launches on the
    current device: the data, buffers, losses and CUDA-graph step all belong on the net's)."""
    @functools.wraps(run)
    def scoped(net: Any, *args: Any, **kwargs: Any) -> History:
        with on_device(net_setting(net)[1]):
            return run(net, *args, **kwargs)

    return scoped


@_on_net_device
def train(
    net: Any,
    x_train: Any,
    t_train: Any,
    x_test: Any,
    t_test: Any,
    *,
    iters: int = 10_000,
    batch_size: int = 100,
    lr: float | None = None,
    optimizer: Optimizer | str | None = None,
    seed: int | None = 0,
    eval_every: int | None = None,
    eval_samples: int | None = None,
    eval_at_end: bool = True,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    cuda_graph: bool = False,
    checkpoint: str | os.PathLike[str] | None = None,
    resume_from: Any = None,
    comm: Any = None,
    threads: int | None = None,
) -> History:
    """Train ``net`` on random mini-batches with an optimizer (SGD by default), as the book does.

    Parameters
    ----------
    net
        An xpnet network (:class:`~xpnet.TwoLayerNet`, :class:`~xpnet.MultiLayerNet` ...) or
        one of the book's shape: ``params`` (a dict of arrays), ``gradient(x, t)``,
        ``accuracy(x, t)`` (and ``loss(x, t)`` when it keeps no ``last_loss``).
    x_train, t_train, x_test, t_test
        Images (``(N, 784)``, or ``(N, C, H, W)`` for a convolutional network) and labels
        (class indices or one-hot rows), host NumPy arrays or arrays of the net's backend.
        They are moved to the net's device (and dtype) once.
    iters, batch_size
        Steps and mini-batch size (the book: 10000, 100).
    lr
        Learning rate of the default optimizer, SGD (the book's chapter 5: 0.1, the default).
    optimizer
        An optimizer (:mod:`xpnet.optim`) or its name (``"adam"`` ...; with ``lr`` when given);
        default ``SGD(lr)``. Plain SGD on an xpnet network folds ``lr`` into the backward pass.
    seed
        Seeds the host generator that draws the batches (``None``: fresh entropy).
    eval_every
        Steps between accuracy evaluations; default one epoch, ``max(N / batch_size, 1)``.
    eval_samples
        Evaluate on the first this many train and test samples (the book's
        ``evaluate_sample_num_per_epoch``); default the whole training and test sets.
    eval_at_end
        Also evaluate after the last step (default). ``False`` (the book's Trainer) evaluates
        only every ``eval_every`` steps, then the whole test set once at the end
        (:attr:`History.final_test_acc`).
    progress
        Show a tqdm bar (when tqdm is installed).
    log
        Called with one line per evaluation (e.g. ``print``).
    cuda_graph
        CuPy only: capture the training step into a CUDA graph after a few eager steps and
        replay it (one launch per step instead of one per kernel); the batch goes through a
        static index buffer refilled before each launch. Same updates as the eager loop.
    checkpoint
        Write the run's state there (:mod:`xpnet.checkpoint`) at every evaluation and on Ctrl-C.
    resume_from
        A :class:`~xpnet.checkpoint.Checkpoint` (``load_checkpoint(path)``) to continue: ``net``
        and ``optimizer`` must match it, the other arguments must be its settings (``iters``
        may be larger). The run then takes exactly the steps of the uninterrupted run.
    comm
        Data parallelism (:mod:`xpnet.training.parallel`): an mpi4py communicator (or
        :class:`~xpnet.training.parallel.Communicator`) over the processes that train together,
        each with the same data and arguments. Every global batch of ``batch_size`` rows is
        split across them and the gradients averaged: the updates are those of one process.
        Only rank 0 logs and shows the progress bar. ``None``: one process, no MPI.
    threads
        CPU threads for the run (:func:`xpnet.set_threads`; the count before comes back
        afterwards): on NumPy, xpnet's operations split their work over them with one BLAS
        thread each; on PyTorch, its intra-op threads. ``None`` (default): the count in force,
        by default the cores this process may use (divided among the processes ``mpiexec``
        started on this machine). ``log`` gets one line saying what runs.

    Returns
    -------
    History
        What the run measured. A NaN/inf loss, or a loss grown far past its start (see
        :mod:`xpnet.training.divergence`), stops the run with ``status="diverged"`` and a message
        naming the likely cause; Ctrl-C stops it with ``status="interrupted"``; both keep what was
        measured so far.
    """
    positive_int(iters, "iters")
    if threads is not None:
        check_threads(threads)
    positive_int(batch_size, "batch_size")
    optional_positive_int(eval_samples, "eval_samples")
    optimizer = _resolve_optimizer(optimizer, lr)
    start = time.perf_counter()
    parallel = _parallelism(comm, batch_size, cuda_graph)
    seed = parallel.common_seed(seed)
    if not parallel.is_root:  # only rank 0 logs and shows a bar
        progress, log = False, None
    data = prepare_data(net, x_train, t_train, x_test, t_test, batch_size=batch_size)
    every = max(data.train_size // batch_size, 1) if eval_every is None else int(eval_every)
    history = _new_history(net, optimizer, data, iters=iters, batch_size=batch_size, seed=seed,
                           eval_every=every, eval_samples=eval_samples, processes=parallel.size)
    rng = np.random.default_rng(seed)
    # A resumed run continues the checkpoint's permutation, drawn at step drawn_at.
    first, order, drawn_at = _resume(resume_from, net, optimizer, history, rng, every)
    start -= history.wall_time
    xp, device, _ = net_setting(net)
    batches = BatchOrder(rng, data.train_size, batch_size, xp, device, first=first, host=order,
                         drawn_at=drawn_at)
    with contextlib.ExitStack() as stack:
        saver = _saver(stack, checkpoint, net=net, optimizer=optimizer, history=history,
                       rng=rng, batches_per_perm=batches.per_epoch, started=start,
                       settings={"eval_at_end": eval_at_end})
        bar = _progress_bar(stack, iters, progress)
        say = bar.write if bar is not None and log is not None else log
        # Labels were checked once by prepare_data: no per-step host sync. The caller's
        # setting comes back when train returns or raises.
        stack.enter_context(labels_checked_once(net))
        _use_threads(stack, threads, xp, say)
        step, context = parallel.make_step(net, xp, data.x_train, data.t_train, optimizer)
        stack.callback(step.close)
        if say is not None and parallel.note:
            say(parallel.note)
        hooks = _hooks(data, optimizer, parallel.accuracy(net), eval_samples, bar, say, saver)
        # A diverging run is caught and reported with its iteration; NumPy's own overflow
        # warnings on the way there would only be noise.
        stack.enter_context(np.errstate(over="ignore", invalid="ignore", divide="ignore"))
        stack.enter_context(context)
        run = Run(history, batches, first=first, iters=iters, eval_every=every,
                  eval_at_end=eval_at_end, started=time.perf_counter() - history.train_time)
        run_loop(run, step, hooks)
    _close_history(history, run, eval_at_end, start)
    return history


def _use_threads(stack: contextlib.ExitStack[Any], threads: int | None, xp: Any,
                 say: Callable[[str], None] | None) -> None:
    """``threads`` in force until the run ends (when given), and the one line about them."""
    if threads is not None:
        stack.enter_context(threads_for_run(threads))
    line = ops_for(xp).threads_line()
    if say is not None and line:
        say(f"threads: {line}")


def _saver(stack: contextlib.ExitStack[Any], path: str | os.PathLike[str] | None,
           **kwargs: Any) -> Checkpointer | None:
    """The run's :class:`Checkpointer` (``None``: no checkpoints). Made, it holds the run
    directory's lock: ``stack`` gives it back if the loop never starts (the
    :class:`Checkpoints` hook does when the loop ends)."""
    if path is None:
        return None
    saver = Checkpointer(path, **kwargs)
    stack.callback(saver.release)
    return saver


def _progress_bar(stack: contextlib.ExitStack[Any], total: int,
                  progress: bool) -> ProgressBar | None:
    """The bar when asked for and tqdm is there; closed with ``stack`` (or by the loop)."""
    bar = ProgressBar.open(total) if progress else None
    if bar is not None:
        stack.callback(bar.close)
    return bar


def _hooks(data: TrainingData, optimizer: Any, accuracy: Callable[[Any, Any], float],
           eval_samples: int | None, bar: ProgressBar | None,
           say: Callable[[str], None] | None, saver: Checkpointer | None) -> list[Hook]:
    """The run's hooks, in the order the loop calls them."""
    hooks: list[Hook] = [DivergenceStop(data, optimizer),
                         Evaluation(accuracy, data, samples=eval_samples)]
    if bar is not None:
        hooks.append(bar)
    if say is not None:
        hooks.append(LogLines(say))
    if saver is not None:
        hooks.append(Checkpoints(saver))
    return hooks


class _OneProcess:
    """What :func:`train` asks of data parallelism (a
    :class:`~xpnet.training.parallel.DataParallel`), for one process."""

    is_root, size, note = True, None, None

    def __init__(self, batch_size: int, cuda_graph: bool) -> None:
        self.batch_size, self.cuda_graph = batch_size, cuda_graph

    def common_seed(self, seed: int | None) -> int | None:
        return seed

    def make_step(self, net: Any, xp: Any, x_train: Any, t_train: Any,
                  optimizer: Optimizer) -> tuple[Step, AbstractContextManager[Any]]:
        return make_step(net, xp, x_train, t_train, optimizer, self.batch_size, self.cuda_graph)

    def accuracy(self, net: Any) -> Callable[[Any, Any], float]:
        accuracy: Callable[[Any, Any], float] = net.accuracy
        return accuracy


def _parallelism(comm: Any, batch_size: int, cuda_graph: bool) -> Any:
    """One process, or a :class:`~xpnet.training.parallel.DataParallel` over ``comm``
    (imported only then: one process never loads MPI)."""
    if comm is None:
        return _OneProcess(batch_size, cuda_graph)
    from .parallel import DataParallel

    return DataParallel(comm, batch_size=int(batch_size), cuda_graph=cuda_graph)


def _new_history(net: Any, optimizer: Optimizer, data: TrainingData, *, iters: int,
                 batch_size: int, seed: int | None, eval_every: int, eval_samples: int | None,
                 processes: int | None) -> History:
    """An empty history with the run's settings (``config``) and where it runs."""
    xp, device, dtype = net_setting(net)
    history = History(
        config={"iters": iters, "batch_size": batch_size, "lr": float(optimizer.lr),
                "optimizer": _describe(optimizer), "seed": seed, "eval_every": eval_every,
                "eval_samples": eval_samples, "model": type(net).__name__,
                "sizes": list(getattr(net, "sizes", ())),
                "train_size": data.train_size, "test_size": int(data.x_test.shape[0])},
        backend=backend_name(xp), device=str(device),
        dtype=dtype_name(dtype if dtype is not None else next(iter(net.params.values())).dtype),
        versions=versions(xp),
    )
    if processes is not None:
        history.config["processes"] = processes
    return history


def _resume(checkpoint: Any, net: Any, optimizer: Any, history: History,
            rng: np.random.Generator, every: int) -> tuple[int, np.ndarray | None, int]:
    """Put the checkpoint's state (if any) into the run; ``(first step, permutation in use or
    None, step it was drawn at)``."""
    if checkpoint is None:
        return 0, None, 0
    first, order, drawn_at = checkpoint.restore(net, optimizer, history, rng)
    last = history.epochs[-1] if history.epochs else None
    if (last is not None and first < history.config["iters"] and last.iteration == first
            and (first - 1) % every != 0):
        # The finished run's evaluation after its last step ("end"): the run goes on, so
        # that step is no longer its last; the lengthened run evaluates on its own
        # schedule, as an uninterrupted run of that length would.
        history.epochs.pop()
        history.final_test_acc = None
    return first, order, drawn_at


def _close_history(history: History, run: Run, eval_at_end: bool, start: float) -> None:
    """The status, final test accuracy and times of a run the loop has ended."""
    if history.status == "running":
        history.status = "finished"
    if history.final_test_acc is None and history.epochs and eval_at_end:
        history.final_test_acc = history.epochs[-1].test_acc
    history.train_time = run.elapsed()
    history.wall_time = time.perf_counter() - start


def _resolve_optimizer(optimizer: Optimizer | str | None, lr: float | None) -> Optimizer:
    """The optimizer object: ``SGD(lr)`` by default (lr 0.1, the book's chapter 5), one made
    by name (with ``lr`` when given), or the one passed (then ``lr`` must be left out)."""
    if lr is not None and not (isinstance(lr, (int, float, np.floating)) and not
                               isinstance(lr, bool) and math.isfinite(lr) and lr > 0):
        msg = f"lr must be a positive finite number, got {lr!r}"
        raise ValueError(msg)
    if optimizer is None:
        return SGD(lr=0.1 if lr is None else float(lr))
    if isinstance(optimizer, str):
        return get_optimizer(optimizer) if lr is None else get_optimizer(optimizer, lr=float(lr))
    if lr is not None:
        msg = "pass lr to the optimizer you made (e.g. Adam(lr=0.001)), not to train() as well"
        raise TypeError(msg)
    if not hasattr(optimizer, "update"):
        msg = (f"optimizer must be an xpnet optimizer or a name such as 'adam', got "
               f"{type(optimizer).__name__}")
        raise TypeError(msg)
    return optimizer


def _describe(optimizer: Any) -> dict[str, Any]:
    """The optimizer's name and hyper-parameters, for the record."""
    if isinstance(optimizer, Optimizer):
        return {"name": optimizer.name, **optimizer.hyper_parameters()}
    return {"name": type(optimizer).__name__}
