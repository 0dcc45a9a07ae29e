"""The training loop (the book's section 5.7.4 and ``common/trainer.py``) on any backend and device.

Mini-batches of ``batch_size`` drawn at random, an optimizer (plain SGD by default), train and test
accuracy once per epoch. ``xpnet train`` and :class:`xpnet.Trainer` both run this loop.
The data moves to the network's device once; each epoch draws a permutation on the host (seeded
NumPy), moves it to the device, and gathers batches there with ``take``. No step reads anything
back: the per-step losses stay on the device. Device->host reads (syncs): four before the loop
(the smallest and largest label of each set, checked once), then three per evaluation (the
losses since the last one, in one transfer, and the count of correct predictions on the train
and on the test set: xpnet's networks count them in batches on the device and read the total
once). Evaluations cover the whole training and test sets unless ``eval_samples`` says
otherwise.

A run stops as diverged (:class:`DivergedError`, ``History.status == "diverged"``) when a loss
becomes NaN or infinite, or when the median loss of the last steps grows far past where the run
began (:data:`DIVERGENCE_FACTOR` times the first step's loss, or times the loss of guessing,
``log(classes)``, when that is larger). The message names the likely cause: non-finite or very
large values in the training data, else the learning rate.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ._checks import optional_positive_int, positive_int
from .backend import (
    Array,
    asarray,
    backend_name,
    dtype_name,
    namespace,
    on_device,
    same_backend,
    to_numpy,
)
from .backend import device as device_of
from .checkpoint import Checkpointer
from .functions import check_labels
from .ops import ops_for
from .optim import SGD, Optimizer, get_optimizer

__all__ = ["DIVERGENCE_FACTOR", "DivergedError", "EpochRecord", "History", "NonFiniteLossError",
           "sgd_step", "train", "versions"]

#: A run has diverged when the median loss of its last :data:`DIVERGENCE_WINDOW` steps exceeds
#: this many times its start: the first step's loss, or the loss of guessing (``log(classes)``)
#: when that is larger, so that a run starting from a trained network is not held to its tiny
#: first loss. Healthy runs, even noisy ones (Adam at a high rate, a loss spike), stay far below;
#: a learning rate far too large (``--lr 1e6``) passes it within an epoch.
DIVERGENCE_FACTOR = 10.0
#: Steps whose median loss is compared (fewer at the start of a run: at least 10).
DIVERGENCE_WINDOW = 100


class DivergedError(FloatingPointError):
    """Training diverged: the loss became NaN or infinite, or grew far past its start."""


class NonFiniteLossError(DivergedError):
    """The training loss became NaN or infinite."""


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
        return [e.train_acc for e in self.epochs]

    @property
    def test_acc_list(self) -> list[float]:
        return [e.test_acc for e in self.epochs]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def versions(xp: Any) -> dict[str, str]:
    """Versions of Python, xpnet, NumPy and the backend, for the record."""
    from ._version import __version__

    found = {"python": platform.python_version(), "xpnet": __version__, "numpy": np.__version__}
    name = backend_name(xp)
    if name != "numpy":
        module = sys.modules.get(name)
        found[name] = getattr(module, "__version__", "unknown")
    compat = sys.modules.get("array_api_compat")
    if compat is not None:
        found["array_api_compat"] = compat.__version__
    return found


def sgd_step(params: Any, grads: dict[str, Array], lr: float) -> None:
    """``p -= lr * g`` for each parameter: in place where the backend allows it, else rebinding
    through ``params`` (whose ``__setitem__`` keeps the layers in step), by the backend's
    operations (on CuPy one fused kernel per parameter)."""
    ops = None
    for key, grad in grads.items():
        ops = ops or ops_for(grad)
        ops.sgd_update(params, key, grad, lr)


def _takes_scale(net: Any) -> bool:
    """Whether ``net.gradient`` takes ``scale=`` (gradients of ``scale * loss``)."""
    try:
        return "scale" in inspect.signature(net.gradient).parameters
    except (TypeError, ValueError):
        return False


def _loss_reader(net: Any) -> Callable[[Array, Array], Array]:
    """``read(x_batch, t_batch)``: the loss of the gradient pass just run. xpnet's networks
    keep it (``last_loss``), as does the book's last layer (``lastLayer.loss``); a network with
    neither pays the book's second forward pass."""
    if hasattr(net, "last_loss"):
        return lambda x_batch, t_batch: net.last_loss
    last = getattr(net, "last_layer", None) or getattr(net, "lastLayer", None)
    if last is not None and hasattr(last, "loss"):
        return lambda x_batch, t_batch: last.loss
    return net.loss


def _make_step(net: Any, xp: Any, x_train: Array, t_train: Array, optimizer: Optimizer,
               batch_size: int, cuda_graph: bool) -> tuple[Callable[[Array], Array], Any]:
    """``(step, context)``: ``step(idx)`` runs one optimizer step on the rows ``idx`` and
    returns its loss (a 0-d array on the device); run the loop inside ``context``."""
    params = net.params
    read_loss = _loss_reader(net)
    # Plain SGD folds the learning rate into the backward pass (gradients of lr * loss): the
    # update is then p -= g, in place, with no lr * g temporary.
    folded = type(optimizer) is SGD and _takes_scale(net)

    def eager(idx: Array) -> Array:
        x_batch = xp.take(x_train, idx, axis=0)
        t_batch = xp.take(t_train, idx, axis=0)
        if folded:
            grads = net.gradient(x_batch, t_batch, scale=optimizer.lr)
            for key, grad in grads.items():
                params[key] -= grad
        else:
            optimizer.update(params, net.gradient(x_batch, t_batch))
        return read_loss(x_batch, t_batch)

    if not cuda_graph:
        return eager, contextlib.nullcontext()
    # Static buffers: the graph always gathers the rows named by idx_buf, refilled per step.
    # Made on the graph's (non-blocking) stream, which never waits for the legacy stream.
    graph_step = ops_for(xp).graph_step(lambda: eager(idx_buf))
    with graph_step.stream:
        idx_buf = xp.zeros((batch_size,), dtype=xp.int64, device=device_of(x_train))

    def replay(idx: Array) -> Array:
        idx_buf[...] = idx
        return xp.asarray(graph_step(), copy=True)  # the graph's loss buffer is reused

    replay.graph_step = graph_step  # type: ignore[attr-defined]
    return replay, graph_step.stream


def _move_images(x: Any, xp: Any, device: Any, dtype: Any) -> Array:
    """Images (any shape: ``(N, 784)`` or ``(N, C, H, W)``) in the net's dtype (kept as they
    are when the net has none: the book's own networks promote) on its device; arrays already
    of the net's backend are converted there, without a trip through the host."""
    if same_backend(x, xp):
        x = x if dtype is None or x.dtype == dtype else xp.astype(x, dtype)
        return x if device_of(x) == device else xp.to_device(x, device)
    return asarray(to_numpy(x), xp, device=device, dtype=dtype)


def _move_labels(t: Any, xp: Any, device: Any, dtype: Any) -> Array:
    """Labels on the net's device: one-hot rows in the net's dtype, class indices as they are."""
    if not same_backend(t, xp):
        t = asarray(to_numpy(t), xp, device=device)
    elif device_of(t) != device:
        t = xp.to_device(t, device)
    if t.ndim == 2:  # one-hot rows: floating, like the scores
        return t if dtype is None or t.dtype == dtype else xp.astype(t, dtype)
    if not xp.isdtype(t.dtype, "integral"):
        msg = (f"labels of shape {tuple(t.shape)} and dtype {t.dtype} look like class indices, "
               "which must be integers: cast them (t.astype(int)), or pass one-hot rows")
        raise TypeError(msg)
    return t


def _net_setting(net: Any) -> tuple[Any, Any, Any]:
    """``(xp, device, dtype)`` of a network: xpnet's networks say; for the book's own
    (a plain dict of arrays) they come from the parameters, and the dtype is ``None``: the data
    keeps its own and the layers promote, as NumPy does for the book."""
    if all(hasattr(net, k) for k in ("xp", "device", "dtype")):
        return net.xp, net.device, net.dtype
    first = next(iter(net.params.values()))
    return namespace(first), device_of(first), None


def _net_sizes(net: Any) -> tuple[int | None, int | None]:
    """``(features per sample, classes)`` the network expects (``None`` where unknown)."""
    features = classes = None
    if hasattr(net, "input_dim"):
        features = math.prod(net.input_dim)
    elif hasattr(net, "input_size"):
        features = math.prod(np.atleast_1d(net.input_size).tolist())
    if hasattr(net, "output_size"):
        classes = int(net.output_size)
    weights = sorted((int(k[1:]), v) for k, v in net.params.items()
                     if k[:1] == "W" and k[1:].isdigit())
    if weights and features is None and weights[0][1].ndim == 2:
        features = int(weights[0][1].shape[0])
    if weights and classes is None and weights[-1][1].ndim == 2:
        classes = int(weights[-1][1].shape[1])
    return features, classes


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="it", dynamic_ncols=True, leave=True)


def _on_net_device(run: Callable[..., History]) -> Callable[..., History]:
    """``run(net, ...)`` with the network's device current (CuPy allocates and launches on the
    current device: the data, buffers, losses and CUDA-graph step all belong on the net's)."""
    @functools.wraps(run)
    def scoped(net: Any, *args: Any, **kwargs: Any) -> History:
        with on_device(_net_setting(net)[1]):
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
        Data parallelism (:mod:`xpnet.parallel`): an mpi4py communicator (or
        :class:`xpnet.parallel.Communicator`) over the processes that train together, each
        with the same data and arguments. Every global batch of ``batch_size`` rows is split
        across them and the gradients averaged: the updates are those of one process. Only
        rank 0 logs and shows the progress bar. ``None``: one process, no MPI.

    Returns the :class:`History`. A NaN/inf loss, or a loss grown far past its start (see the
    module text), stops the run with ``status="diverged"`` and a message naming the likely
    cause; Ctrl-C stops it with ``status="interrupted"``; both keep what was measured so far.
    """
    positive_int(iters, "iters")
    positive_int(batch_size, "batch_size")
    optional_positive_int(eval_samples, "eval_samples")
    optimizer = _resolve_optimizer(optimizer, lr)
    start = time.perf_counter()
    parallel = None
    if comm is not None:  # data parallelism: the logic lives in xpnet.parallel
        from .parallel import DataParallel

        parallel = DataParallel(comm, batch_size=int(batch_size), cuda_graph=cuda_graph)
        seed = parallel.common_seed(seed)
        if not parallel.is_root:
            progress, log = False, None
    xp, device, dtype = _net_setting(net)
    n_features, n_classes = _net_sizes(net)
    for name, x, t in (("train", x_train, t_train), ("test", x_test, t_test)):
        if x.shape[0] != t.shape[0]:
            msg = f"{name} images and labels differ in length: {x.shape[0]} vs {t.shape[0]}"
            raise ValueError(msg)
        if n_features is not None and math.prod(x.shape[1:]) != n_features:
            msg = (f"{name} images have shape {tuple(x.shape)} but the network takes "
                   f"{n_features} features per sample")
            raise ValueError(msg)
    train_size = x_train.shape[0]
    if batch_size > train_size:
        msg = f"batch_size {batch_size} is larger than the training set ({train_size} samples)"
        raise ValueError(msg)

    # Everything moves to the device once.
    x_train = _move_images(x_train, xp, device, dtype)
    x_test = _move_images(x_test, xp, device, dtype)
    t_train = _move_labels(t_train, xp, device, dtype)
    t_test = _move_labels(t_test, xp, device, dtype)
    for t in (t_train, t_test):
        if n_classes is None:
            continue
        if t.ndim == 1:
            check_labels(t, n_classes)
        elif t.shape[1] != n_classes:
            msg = f"one-hot labels have {t.shape[1]} columns but the network has {n_classes}"
            raise ValueError(msg)

    iter_per_epoch = max(train_size // batch_size, 1) if eval_every is None else int(eval_every)
    history = History(
        config={"iters": iters, "batch_size": batch_size, "lr": float(optimizer.lr),
                "optimizer": _describe(optimizer), "seed": seed, "eval_every": iter_per_epoch,
                "eval_samples": eval_samples, "model": type(net).__name__,
                "sizes": list(getattr(net, "sizes", ())),
                "train_size": train_size, "test_size": int(x_test.shape[0])},
        backend=backend_name(xp), device=str(device),
        dtype=dtype_name(dtype if dtype is not None else next(iter(net.params.values())).dtype),
        versions=versions(xp),
    )
    if parallel is not None:
        history.config["processes"] = parallel.size
    rng = np.random.default_rng(seed)
    batches_per_perm = train_size // batch_size
    order = None
    # Checkpoints: the run's state at every evaluation and on Ctrl-C; resume_from continues one.
    first, order_host, perm_start = 0, None, 0
    if resume_from is not None:
        first, order_host, perm_start = resume_from.restore(net, optimizer, history, rng)
        start -= history.wall_time
        last = history.epochs[-1] if history.epochs else None
        if (last is not None and first < iters and last.iteration == first
                and (first - 1) % iter_per_epoch != 0):
            # The finished run's evaluation after its last step ("end"): the run goes on, so
            # that step is no longer its last; the lengthened run evaluates on its own
            # schedule, as an uninterrupted run of that length would.
            history.epochs.pop()
            history.final_test_acc = None
    saver = Checkpointer(checkpoint, net=net, optimizer=optimizer, history=history, rng=rng,
                         batches_per_perm=batches_per_perm, started=start,
                         settings={"eval_at_end": eval_at_end})
    pending: list[Array] = []  # this epoch's losses, still on the device
    bar = _progress_bar(iters, progress)
    say = (bar.write if bar is not None else log) if log is not None else None
    # Labels were checked once above: no per-step host sync. The caller's setting comes back
    # when train returns or raises.
    last_layer = getattr(net, "last_layer", None) or getattr(net, "lastLayer", None)
    if not hasattr(last_layer, "check_labels"):
        last_layer = _NoLabelCheck()
    checked_labels, last_layer.check_labels = last_layer.check_labels, False
    try:
        step, context = (_make_step(net, xp, x_train, t_train, optimizer, batch_size,
                                    cuda_graph) if parallel is None else
                         parallel.make_step(net, xp, x_train, t_train, optimizer))
    except BaseException:
        last_layer.check_labels = checked_labels
        saver.release()
        raise
    accuracy = net.accuracy if parallel is None else parallel.accuracy(net)
    if say is not None and parallel is not None and parallel.note:
        say(parallel.note)
    # The whole sets unless eval_samples says otherwise (the book's Trainer with
    # evaluate_sample_num_per_epoch=None); xpnet's networks count hits in batches on the device.
    n_train = train_size if eval_samples is None else eval_samples
    n_test = x_test.shape[0] if eval_samples is None else eval_samples
    evaluation = (accuracy, x_train[:n_train, ...], t_train[:n_train, ...],
                  x_test[:n_test, ...], t_test[:n_test, ...])
    # Divergence: the loss of guessing among the classes bounds the start from below.
    floor = math.log(n_classes) if n_classes and n_classes > 1 else 0.0
    train_start = time.perf_counter() - history.train_time
    # A diverging run is caught and reported below with its iteration; NumPy's own overflow
    # warnings on the way there would only be noise.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), context, saver:
        try:
            for i in range(first, iters):
                saver.poll()  # a Ctrl-C takes effect between steps
                if parallel is not None:
                    parallel.poll()  # ... on every rank, when any rank had one
                slot = i % batches_per_perm
                if order_host is None or (slot == 0 and i > first):
                    order_host, perm_start = rng.permutation(train_size), i
                if slot == 0 or i == first:
                    order = asarray(order_host, xp, device=device)
                pending.append(step(order[slot * batch_size:(slot + 1) * batch_size]))
                history.iterations = i + 1
                if bar is not None:
                    bar.update(1)
                on_schedule = i % iter_per_epoch == 0
                if on_schedule or (eval_at_end and i + 1 == iters):
                    _end_epoch(net, history, pending, *evaluation,
                               time.perf_counter() - train_start, say, bar,
                               label=None if on_schedule else "end", floor=floor)
                    saver.save(order_host, perm_start, time.perf_counter() - train_start)
            _sync_losses(history, pending, floor)
            if saver.iteration != history.iterations:  # the last step's state, to extend from
                saver.save(order_host, perm_start, time.perf_counter() - train_start)
            if not eval_at_end:  # the book's Trainer: the whole test set, once, at the end
                history.final_test_acc = accuracy(x_test, t_test)
        except KeyboardInterrupt:
            history.status = "interrupted"
            history.message = f"interrupted by the user after {history.iterations} iterations"
            # The run is over either way; a NaN among these losses shows in history.loss.
            with contextlib.suppress(DivergedError):
                _sync_losses(history, pending)
                saver.save(order_host, perm_start, time.perf_counter() - train_start)
        except DivergedError as exc:
            history.status = "diverged"
            history.message = _divergence_message(exc, x_train, t_train, float(optimizer.lr))
        finally:
            last_layer.check_labels = checked_labels
            if bar is not None:
                bar.close()
            graph_step = getattr(step, "graph_step", None)
            if graph_step is not None:  # the caller reads the parameters on its own stream
                graph_step.stream.synchronize()
    if history.status == "running":
        history.status = "finished"
    if history.final_test_acc is None and history.epochs and eval_at_end:
        history.final_test_acc = history.epochs[-1].test_acc
    history.train_time = time.perf_counter() - train_start
    history.wall_time = time.perf_counter() - start
    return history


class _NoLabelCheck:
    """Stands in for a last layer without a ``check_labels`` switch."""

    check_labels = False


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


def _sync_losses(history: History, pending: list[Array], floor: float = 0.0) -> None:
    """Bring this epoch's losses to the host (one transfer); raise :class:`DivergedError` on the
    first NaN/inf, or when the median of the last :data:`DIVERGENCE_WINDOW` losses exceeds
    :data:`DIVERGENCE_FACTOR` times ``max(first loss, floor)``."""
    if not pending:
        return
    xp = namespace(pending[0])
    values = to_numpy(xp.stack(pending)).astype(np.float64).tolist()
    pending.clear()
    first = len(history.loss)
    history.loss.extend(values)
    for offset, value in enumerate(values):
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


def _divergence_message(exc: DivergedError, x_train: Array, t_train: Array, lr: float) -> str:
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


def _end_epoch(net: Any, history: History, pending: list[Array],
               accuracy: Callable[[Array, Array], float], x_train: Array, t_train: Array,
               x_test: Array, t_test: Array, seconds: float,
               say: Callable[[str], None] | None, bar: Any, label: str | None = None,
               floor: float = 0.0) -> None:
    """Evaluate and record; the printed line names the epoch, or ``label`` (the extra
    evaluation after the last step, which is not the start of an epoch). ``floor``: see
    :func:`_sync_losses`."""
    _sync_losses(history, pending, floor)
    train_acc = accuracy(x_train, t_train)
    test_acc = accuracy(x_test, t_test)
    record = EpochRecord(epoch=len(history.epochs) + 1, iteration=history.iterations,
                         train_acc=train_acc, test_acc=test_acc, loss=history.loss[-1],
                         seconds=seconds)
    history.epochs.append(record)
    if bar is not None:
        bar.set_postfix(loss=f"{record.loss:.3f}", train=f"{train_acc:.4f}", test=f"{test_acc:.4f}")
    if say is not None:
        name = f"epoch {record.epoch:>2}" if label is None else f"{label:<8}"
        say(f"{name}  iter {record.iteration:>6}  loss {record.loss:.4f}  "
            f"train acc {train_acc:.4f}  test acc {test_acc:.4f}  ({seconds:.1f} s)")
