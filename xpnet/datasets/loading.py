"""MNIST as the book's ``load_mnist`` gives it: host NumPy arrays, normalized, flattened,
one-hot on request; the files come from :func:`xpnet.datasets.mnist.fetch_mnist`'s sources."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from . import mnist
from .mnist import Source

__all__ = ["load_mnist"]


def _one_hot(labels: np.ndarray) -> np.ndarray:
    """Return ``float32`` one-hot rows of shape ``(N, 10)`` for ``uint8`` labels."""
    out = np.zeros((labels.shape[0], mnist.NUM_CLASSES), dtype=np.float32)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def _images(array: np.ndarray, normalize: bool, flatten: bool) -> np.ndarray:
    """Convert ``(N, 28, 28)`` uint8 images to the book's layout and dtype."""
    shape = (array.shape[0], -1) if flatten else (array.shape[0], 1, *array.shape[1:])
    array = array.reshape(shape)
    if normalize:
        return np.asarray(array.astype(np.float32) / np.float32(255.0))
    return np.array(array, copy=True)


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    root: str | os.PathLike[str] | None = None,
    sources: str | Iterable[str | Source] | None = None,
    progress: bool = False,
    timeout: float | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load MNIST as ``(x_train, t_train), (x_test, t_test)`` host NumPy arrays.

    Same signature and results as the book's ``dataset.mnist.load_mnist``:

    - ``normalize``: images as ``float32`` in ``[0, 1]``; else ``uint8`` in ``0..255``.
    - ``flatten``: images of shape ``(N, 784)``; else ``(N, 1, 28, 28)``.
    - ``one_hot_label``: labels as ``float32`` one-hot ``(N, 10)``; else ``uint8`` ``(N,)``.

    The files are found, verified and cached as :func:`fetch_mnist` does (same keyword
    arguments).  The arrays are fresh copies the caller may modify.
    """
    _, arrays = mnist._gather(root, sources, progress, timeout, cache_dir)
    by_key = {spec.key: arrays[spec.name] for spec in mnist.FILES}
    result = []
    for images_key, labels_key in (("train_img", "train_label"), ("test_img", "test_label")):
        x = _images(by_key[images_key], normalize, flatten)
        labels = by_key[labels_key]
        t = _one_hot(labels) if one_hot_label else labels.copy()
        result.append((x, t))
    return result[0], result[1]
