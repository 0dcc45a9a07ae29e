"""The training data on the network's device: checked against the network once, moved once,
and cut into mini-batches by a per-epoch permutation (:class:`BatchOrder`)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import Array, asarray, namespace, same_backend, to_numpy
from ..backend import device as device_of
from ..functions import check_labels

__all__ = ["BatchOrder", "TrainingData", "labels_checked_once", "move_images", "move_labels",
           "net_setting", "net_sizes", "prepare_data"]


def net_setting(net: Any) -> tuple[Any, Any, Any]:
    """``(xp, device, dtype)`` of a network: xpnet's networks say; for the book's own
    (a plain dict of arrays) they come from the parameters, and the dtype is ``None``: the data
    keeps its own and the layers promote, as NumPy does for the book."""
    if all(hasattr(net, k) for k in ("xp", "device", "dtype")):
        return net.xp, net.device, net.dtype
    first = next(iter(net.params.values()))
    return namespace(first), device_of(first), None


def net_sizes(net: Any) -> tuple[int | None, int | None]:
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


def move_images(x: Any, xp: Any, device: Any, dtype: Any) -> Array:
    """Images (any shape: ``(N, 784)`` or ``(N, C, H, W)``) in the net's dtype (kept as they
    are when the net has none: the book's own networks promote) on its device; arrays already
    of the net's backend are converted there, without a trip through the host."""
    if same_backend(x, xp):
        x = x if dtype is None or x.dtype == dtype else xp.astype(x, dtype)
        return x if device_of(x) == device else xp.to_device(x, device)
    return asarray(to_numpy(x), xp, device=device, dtype=dtype)


def move_labels(t: Any, xp: Any, device: Any, dtype: Any) -> Array:
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


@dataclass(frozen=True)
class TrainingData:
    """The training and test sets on the network's device (and in its dtype)."""

    x_train: Array
    t_train: Array
    x_test: Array
    t_test: Array
    #: Classes the network tells apart (``None`` where it does not say).
    classes: int | None

    @property
    def train_size(self) -> int:
        """Rows of the training set."""
        return int(self.x_train.shape[0])


def prepare_data(net: Any, x_train: Any, t_train: Any, x_test: Any, t_test: Any, *,
                 batch_size: int) -> TrainingData:
    """Check the four arrays against ``net`` and each other, then move them to its device once.

    The labels are checked here, once (four device->host reads: the smallest and largest
    label of each set), so that no step has to."""
    xp, device, dtype = net_setting(net)
    n_features, n_classes = net_sizes(net)
    for name, x, t in (("train", x_train, t_train), ("test", x_test, t_test)):
        if x.shape[0] != t.shape[0]:
            msg = f"{name} images and labels differ in length: {x.shape[0]} vs {t.shape[0]}"
            raise ValueError(msg)
        if n_features is not None and math.prod(x.shape[1:]) != n_features:
            msg = (f"{name} images have shape {tuple(x.shape)} but the network takes "
                   f"{n_features} features per sample")
            raise ValueError(msg)
    if batch_size > x_train.shape[0]:
        msg = (f"batch_size {batch_size} is larger than the training set ({x_train.shape[0]} "
               "samples)")
        raise ValueError(msg)
    x_train = move_images(x_train, xp, device, dtype)
    x_test = move_images(x_test, xp, device, dtype)
    data = TrainingData(x_train=x_train, t_train=move_labels(t_train, xp, device, dtype),
                        x_test=x_test, t_test=move_labels(t_test, xp, device, dtype),
                        classes=n_classes)
    for t in (data.t_train, data.t_test):
        _check_classes(t, n_classes)
    return data


def _check_classes(t: Array, n_classes: int | None) -> None:
    if n_classes is None:
        return
    if t.ndim == 1:
        check_labels(t, n_classes)
    elif t.shape[1] != n_classes:
        msg = f"one-hot labels have {t.shape[1]} columns but the network has {n_classes}"
        raise ValueError(msg)


class _NoLabelCheck:
    """Stands in for a last layer without a ``check_labels`` switch."""

    check_labels = False


@contextlib.contextmanager
def labels_checked_once(net: Any) -> Iterator[None]:
    """Inside, the network's last layer does not check the labels of each batch (a host sync
    per step: :func:`prepare_data` checked them all once); the caller's setting comes back on
    the way out, also when the block raises."""
    last_layer: Any = getattr(net, "last_layer", None) or getattr(net, "lastLayer", None)
    if not hasattr(last_layer, "check_labels"):
        last_layer = _NoLabelCheck()
    checked, last_layer.check_labels = last_layer.check_labels, False
    try:
        yield
    finally:
        last_layer.check_labels = checked


class BatchOrder:
    """The rows of each step: a permutation of the training set per epoch, drawn on the host
    by ``rng`` (seeded NumPy: the same batches on every backend), moved to the device once per
    epoch and cut into batches of ``batch_size`` there.

    ``order(i)`` gives the rows of step ``i`` (a 1-d integer array on ``device``); steps are
    taken in order from ``first``. A resumed run passes the permutation in use (``host``)
    and the step it was drawn at (``drawn_at``): both are what a checkpoint saves.
    """

    def __init__(self, rng: np.random.Generator, train_size: int, batch_size: int, xp: Any,
                 device: Any, *, first: int = 0, host: np.ndarray | None = None,
                 drawn_at: int = 0) -> None:
        self.rng, self.xp, self.device = rng, xp, device
        self.train_size, self.batch_size = train_size, batch_size
        self.per_epoch = train_size // batch_size
        self.first = first
        #: The permutation batches come from (host) and the step it was drawn at.
        self.host, self.drawn_at = host, drawn_at
        self._on_device: Array = None

    def __call__(self, i: int) -> Array:
        slot = i % self.per_epoch
        if self.host is None or (slot == 0 and i > self.first):
            self.host, self.drawn_at = self.rng.permutation(self.train_size), i
        if slot == 0 or i == self.first:
            self._on_device = asarray(self.host, self.xp, device=self.device)
        size = self.batch_size
        return self._on_device[slot * size:(slot + 1) * size]
