"""Training steps behind one interface (Chainer's updaters): :class:`Step`.

``step(idx)`` runs one optimizer step on the rows ``idx`` of the training set (already on the
device) and returns its loss, a 0-d array left on the device: a step reads nothing back.
:class:`EagerStep` runs the layers' kernels one by one; :class:`GraphStep` replays the eager
step as a CUDA graph (CuPy); data parallelism's step is
:class:`xpnet.training.parallel.ParallelStep`. :func:`make_step` builds the one-process steps.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, cast

from ..backend import Array
from ..backend import device as device_of
from ..ops import ops_for
from ..optim import SGD, Optimizer

__all__ = ["EagerStep", "GraphStep", "Step", "loss_reader", "make_step", "sgd_step",
           "takes_scale"]


class Step:
    """One training step; the loop calls :meth:`poll` and then the step, once per iteration,
    inside :meth:`context`, and :meth:`close` after the last one. Subclasses define
    ``__call__``; the other methods do nothing here."""

    def __call__(self, idx: Array, /) -> Array:
        """Update the parameters from the rows ``idx``; return the loss (0-d, on the device)."""
        msg = f"{type(self).__name__} does not define __call__"
        raise NotImplementedError(msg)

    def context(self) -> AbstractContextManager[Any]:
        """What the steps run inside (a CUDA graph's stream; data parallelism's guard)."""
        return contextlib.nullcontext()

    def poll(self) -> None:
        """Before each step: raise ``KeyboardInterrupt`` when the run must stop now."""

    def close(self) -> None:
        """After the last step, before anyone reads the parameters."""


def sgd_step(params: Any, grads: dict[str, Array], lr: float) -> None:
    """``p -= lr * g`` for each parameter: in place where the backend allows it, else rebinding
    through ``params`` (whose ``__setitem__`` keeps the layers in step), by the backend's
    operations (on CuPy one fused kernel per parameter)."""
    ops = None
    for key, grad in grads.items():
        ops = ops or ops_for(grad)
        ops.sgd_update(params, key, grad, lr)


def takes_scale(net: Any) -> bool:
    """Whether ``net.gradient`` takes ``scale=`` (gradients of ``scale * loss``)."""
    try:
        return "scale" in inspect.signature(net.gradient).parameters
    except (TypeError, ValueError):
        return False


def loss_reader(net: Any) -> Callable[[Array, Array], Array]:
    """``read(x_batch, t_batch)``: the loss of the gradient pass just run. xpnet's networks
    keep it (``last_loss``), as does the book's last layer (``lastLayer.loss``); a network with
    neither pays the book's second forward pass."""
    if hasattr(net, "last_loss"):
        return lambda x_batch, t_batch: net.last_loss
    last = getattr(net, "last_layer", None) or getattr(net, "lastLayer", None)
    if last is not None and hasattr(last, "loss"):
        return lambda x_batch, t_batch: last.loss
    return cast("Callable[[Array, Array], Array]", net.loss)


class EagerStep(Step):
    """Gather the batch with ``take``, backprop, update. Plain SGD on a network whose
    ``gradient`` takes ``scale=`` folds the learning rate into the backward pass (gradients
    of ``lr * loss``): the update is then ``p -= g``, in place, with no ``lr * g`` temporary."""

    def __init__(self, net: Any, xp: Any, x_train: Array, t_train: Array,
                 optimizer: Optimizer) -> None:
        self.net, self.xp, self.optimizer = net, xp, optimizer
        self.x_train, self.t_train = x_train, t_train
        self.params = net.params
        self.read_loss = loss_reader(net)
        self.folded = type(optimizer) is SGD and takes_scale(net)

    def __call__(self, idx: Array, /) -> Array:
        xp, net = self.xp, self.net
        x_batch = xp.take(self.x_train, idx, axis=0)
        t_batch = xp.take(self.t_train, idx, axis=0)
        if self.folded:
            params = self.params
            for key, grad in net.gradient(x_batch, t_batch, scale=self.optimizer.lr).items():
                params[key] -= grad
        else:
            self.optimizer.update(self.params, net.gradient(x_batch, t_batch))
        return self.read_loss(x_batch, t_batch)


class GraphStep(Step):
    """An :class:`EagerStep` captured into a CUDA graph after a few eager runs and replayed
    (:meth:`xpnet.ops.Ops.graph_step`; CuPy only, ``ValueError`` elsewhere). The graph always
    gathers the rows of a static index buffer, refilled before each launch; its loss buffer is
    reused, so each step returns a copy. :attr:`graph_step` is the
    :class:`~xpnet.cuda.graph.CudaGraphStep` (its counters and error)."""

    def __init__(self, eager: EagerStep, batch_size: int) -> None:
        xp = self.xp = eager.xp
        self.graph_step = ops_for(xp).graph_step(lambda: eager(self._idx))
        # Made on the graph's (non-blocking) stream, which never waits for the legacy stream.
        with self.graph_step.stream:
            self._idx = xp.zeros((batch_size,), dtype=xp.int64, device=device_of(eager.x_train))

    def __call__(self, idx: Array, /) -> Array:
        self._idx[...] = idx
        return self.xp.asarray(self.graph_step(), copy=True)

    def context(self) -> AbstractContextManager[Any]:
        """The graph's stream: everything else the loop launches is ordered with the graph."""
        return cast(AbstractContextManager[Any], self.graph_step.stream)

    def close(self) -> None:
        """The caller reads the parameters on its own stream: wait for the graph's."""
        self.graph_step.stream.synchronize()


def make_step(net: Any, xp: Any, x_train: Array, t_train: Array, optimizer: Optimizer,
              batch_size: int, cuda_graph: bool = False
              ) -> tuple[Step, AbstractContextManager[Any]]:
    """``(step, context)``: the one-process step (:class:`GraphStep` with ``cuda_graph``, else
    :class:`EagerStep`) over the training set on the device, and its :meth:`Step.context`, to
    run the steps inside. The network's last layer should not check labels per step (see
    :func:`xpnet.training.data.labels_checked_once`)."""
    eager = EagerStep(net, xp, x_train, t_train, optimizer)
    step: Step = GraphStep(eager, batch_size) if cuda_graph else eager
    return step, step.context()
