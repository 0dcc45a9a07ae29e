"""The book's ``common/util.py`` helpers for chapter 6: smoothing loss curves, shuffling a data
set, and the output size of a convolution.

``smooth_curve`` is for plotting and runs with NumPy on the host; ``shuffle_dataset`` is portable
and keeps the data on its device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._checks import window_count
from .backend import Array, asarray, device, namespace

__all__ = ["conv_output_size", "shuffle_dataset", "smooth_curve"]

_WINDOW = 11  # the book's window: 11 points, Kaiser window with beta 2


def smooth_curve(x: Sequence[float] | Any, /) -> np.ndarray:
    """A smoothed copy of a loss curve, for plotting (the book's smoothing).

    The curve is extended at both ends by its mirror image (``_WINDOW - 1`` points each; as in
    the book, the first point is not repeated and the last one is) and convolved with a
    normalised 11-point Kaiser window (beta 2), then cut back to ``len(x)`` points. Takes a list
    or a 1-D array of any backend; returns a host NumPy float64 array.
    """
    from .backend import to_numpy

    values = x if isinstance(x, (list, tuple)) else to_numpy(x)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        msg = f"smooth_curve takes a 1-D curve, got shape {values.shape}"
        raise ValueError(msg)
    if values.size < _WINDOW:
        msg = (f"smooth_curve needs at least {_WINDOW} points (its window), got {values.size}; "
               "plot the raw values instead")
        raise ValueError(msg)
    k = _WINDOW - 1
    padded = np.concatenate([values[k:0:-1], values, values[-1:-_WINDOW:-1]])
    window = np.kaiser(_WINDOW, 2)
    smooth = np.convolve(window / window.sum(), padded, mode="valid")
    half = _WINDOW // 2
    return smooth[half:smooth.size - half]


def shuffle_dataset(x: Array, t: Array, /, *, seed: int | None = None) -> tuple[Array, Array]:
    """``x`` and ``t`` with their samples (first axis) in one random order.

    Works for any number of dimensions (``(N, D)`` data, ``(N, C, H, W)`` images, ``(N,)``
    labels or ``(N, C)`` one-hot rows) on any backend; the result stays on the input's device.
    The permutation is drawn on the host (``numpy.random.default_rng(seed)``); ``seed=None``
    takes fresh entropy.
    """
    xp = namespace(x, t)
    n = x.shape[0] if x.ndim else None
    if n is None or t.ndim == 0 or t.shape[0] != n:
        msg = (f"x and t must hold the same number of samples along their first axis, got "
               f"shapes {tuple(x.shape)} and {tuple(t.shape)}")
        raise ValueError(msg)
    order = np.random.default_rng(seed).permutation(n)
    # one host-to-device copy of the n indices per array (x and t may sit on different devices)
    return tuple(xp.take(a, asarray(order, xp, device=device(a), dtype=xp.int64), axis=0)
                 for a in (x, t))


def conv_output_size(input_size: int, filter_size: int, stride: int = 1, pad: int = 0) -> int:
    """Output length of a convolution or pooling: ``(input_size + 2*pad - filter_size) //
    stride + 1``, the number of windows that fit.

    The book's function returns the float ``(input_size + 2*pad - filter_size) / stride + 1``
    (``12.5`` for 28, 5, stride 2), while its layers floor it (``1 + int(...)``), as PyTorch
    does: this returns the size the layers produce, an ``int`` (``12``), which is the book's
    value whenever that is whole. A filter larger than the padded input is a ``ValueError``.
    """
    for name, value in (("input_size", input_size), ("filter_size", filter_size),
                        ("stride", stride), ("pad", pad)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            msg = f"{name} must be an integer, got {value!r}"
            raise TypeError(msg)
    if input_size < 1 or filter_size < 1 or stride < 1 or pad < 0:
        msg = (f"need input_size >= 1, filter_size >= 1, stride >= 1, pad >= 0; got "
               f"input_size={input_size}, filter_size={filter_size}, stride={stride}, pad={pad}")
        raise ValueError(msg)
    if filter_size > input_size + 2 * pad:
        msg = (f"filter_size {filter_size} is larger than the padded input "
               f"{input_size + 2 * pad} (input_size {input_size} + 2 * pad {pad})")
        raise ValueError(msg)
    return int(window_count(int(input_size), int(filter_size), int(stride), int(pad), "util"))
