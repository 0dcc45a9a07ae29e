"""DeepConvNet: the book's chapter-8 network (over 99% on MNIST), on any backend and device."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..backend import Array, Namespace
from ..conv import Convolution, Pooling
from ..layers import Affine, Dropout, Relu, SoftmaxWithLoss
from ..rng import random_generator
from ._convnet import (
    ConvNetMixin,
    check_conv_param,
    check_input_dim,
    conv_out,
    expect_shapes,
    pool_out,
)
from .base import Network, check_size

__all__ = ["DeepConvNet"]

#: The book's six convolutions (note the pad of 2 in the fourth: 14 -> 16, so that the three
#: poolings give 28 -> 14 -> 8 -> 4 and W7 has 64*4*4 rows).
DEFAULT_CONV_PARAMS = (
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 2, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
)
CONV_COUNT = len(DEFAULT_CONV_PARAMS)
PARAM_NAMES = tuple(f"{kind}{i}" for i in range(1, CONV_COUNT + 3) for kind in ("W", "b"))


def _dropout_ratio(value: Any) -> float:
    ratio = float(value)
    if not 0.0 <= ratio < 1.0:  # also refuses NaN
        msg = f"dropout_ratio must lie in [0, 1), got {value!r}"
        raise ValueError(msg)
    return ratio


class DeepConvNet(ConvNetMixin, Network):
    """The book's chapter-8 network::

        conv - relu - conv - relu - pool - conv - relu - conv - relu - pool -
        conv - relu - conv - relu - pool - affine - relu - dropout - affine - dropout - softmax

    with 2x2 max poolings of stride 2 and He initialisation ``std = sqrt(2 / fan_in)``
    (``fan_in = C*FH*FW`` for a convolution, the input width for an affine layer).

    Parameters
    ----------
    input_dim
        ``(C, H, W)`` of one image, ``(1, 28, 28)`` for MNIST.
    conv_param_1, ..., conv_param_6
        ``{'filter_num', 'filter_size', 'pad', 'stride'}`` of each convolution (the book's
        16-16-32-32-64-64 filters of 3x3, pad 1 except pad 2 in the fourth, stride 1; keys left
        out take those). Sizes are floored as in the book's layers and PyTorch: a
        convolution gives ``(H + 2*pad - filter_size) // stride + 1``, each pooling (after
        every second convolution) ``H // 2``.
    hidden_size, output_size
        Widths of the two fully connected layers (the book's 50 and 10).
    dropout_ratio
        Fraction of units each dropout layer drops in training (keyword-only; the book's 0.5).
    xp, device, dtype, seed
        As for :class:`~xpnet.TwoLayerNet`: the weights are drawn on the host by a NumPy
        generator seeded with ``seed`` and moved; ``seed`` also seeds the dropout masks, which
        one generator shared by both dropout layers draws on the device.

    Notes
    -----
    Parameters are named ``W1..W6``/``b1..b6`` (convolutions) and ``W7, b7, W8, b8`` (affine),
    as in the book; layers ``'Conv1', 'Relu1', 'Conv2', 'Relu2', 'Pool1', ..., 'Pool3',
    'Affine1', 'Relu7', 'Dropout1', 'Affine2', 'Dropout2'``. ``predict``/``loss`` take
    ``train_flg`` (default ``False``; the book's ``loss`` always trains); ``gradient`` trains.
    Input: images ``(N, C, H, W)`` or flat rows ``(N, C*H*W)`` (reshaped).
    """

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param_1: Mapping[str, int] = DEFAULT_CONV_PARAMS[0],
        conv_param_2: Mapping[str, int] = DEFAULT_CONV_PARAMS[1],
        conv_param_3: Mapping[str, int] = DEFAULT_CONV_PARAMS[2],
        conv_param_4: Mapping[str, int] = DEFAULT_CONV_PARAMS[3],
        conv_param_5: Mapping[str, int] = DEFAULT_CONV_PARAMS[4],
        conv_param_6: Mapping[str, int] = DEFAULT_CONV_PARAMS[5],
        hidden_size: int = 50,
        output_size: int = 10,
        *,
        dropout_ratio: float = 0.5,
        xp: Namespace | str | None = None,
        device: Any = None,
        dtype: Any = None,
        seed: int | None = None,
    ) -> None:
        dim = check_input_dim(input_dim)
        given = (conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5,
                 conv_param_6)
        convs = [check_conv_param(p, f"conv_param_{i}", DEFAULT_CONV_PARAMS[i - 1])
                 for i, p in enumerate(given, start=1)]
        hidden_size = check_size("hidden_size", hidden_size)
        output_size = check_size("output_size", output_size)
        flat = self._flat_size(dim, convs)
        rng = np.random.default_rng(seed)
        host: dict[str, np.ndarray] = {}
        channels = dim[0]
        for i, p in enumerate(convs, start=1):
            fn, fs = p["filter_num"], p["filter_size"]
            std = math.sqrt(2.0 / (channels * fs * fs))
            host[f"W{i}"] = std * rng.standard_normal((fn, channels, fs, fs))
            host[f"b{i}"] = np.zeros(fn)
            channels = fn
        last = CONV_COUNT
        for i, (n_in, n_out) in enumerate(((flat, hidden_size), (hidden_size, output_size)),
                                          start=last + 1):
            host[f"W{i}"] = math.sqrt(2.0 / n_in) * rng.standard_normal((n_in, n_out))
            host[f"b{i}"] = np.zeros(n_out)
        self._seed = seed
        config = {f"conv_param_{i}": p for i, p in enumerate(convs, start=1)}
        self._configure(host, input_dim=dim, dropout_ratio=dropout_ratio, **config)
        self._setup(host, xp=xp, device=device, dtype=dtype)

    @staticmethod
    def _flat_size(dim: tuple[int, int, int], convs: list[dict[str, int]]) -> int:
        """Values per image entering the first affine layer."""
        hw = dim[1:]
        for i, p in enumerate(convs, start=1):
            hw = conv_out(hw, p, f"conv_param_{i}")
            if i % 2 == 0:
                hw = pool_out(hw, f"Pool{i // 2} (after conv {i})")
        return convs[-1]["filter_num"] * hw[0] * hw[1]

    @classmethod
    def _param_names(cls, params: Mapping[str, Any], **config: Any) -> tuple[str, ...]:
        return PARAM_NAMES

    def _configure(self, host: Mapping[str, np.ndarray], *, input_dim: Any = (1, 28, 28),
                   dropout_ratio: float = 0.5, **config: Any) -> None:
        keys = {f"conv_param_{i}" for i in range(1, CONV_COUNT + 1)}
        extra = sorted(set(config) - keys)
        if extra:
            msg = f"DeepConvNet got unknown options {extra}"
            raise TypeError(msg)
        dim = check_input_dim(input_dim)
        ratio = _dropout_ratio(dropout_ratio)
        convs = []
        expected: dict[str, tuple[int, ...]] = {}
        channels = dim[0]
        for i in range(1, CONV_COUNT + 1):
            w = tuple(host[f"W{i}"].shape)
            if len(w) != 4 or w[2] != w[3]:
                msg = f"W{i} must have shape (filter_num, channels, size, size), got {w}"
                raise ValueError(msg)
            p = check_conv_param(config.get(f"conv_param_{i}", {}), f"conv_param_{i}",
                                 DEFAULT_CONV_PARAMS[i - 1], w)
            expected[f"W{i}"] = (p["filter_num"], channels, p["filter_size"], p["filter_size"])
            expected[f"b{i}"] = (p["filter_num"],)
            channels = p["filter_num"]
            convs.append(p)
        flat = self._flat_size(dim, convs)
        hidden = int(host["W7"].shape[1]) if host["W7"].ndim == 2 else -1
        out = int(host["W8"].shape[1]) if host["W8"].ndim == 2 else -1
        expected.update({"W7": (flat, hidden), "b7": (hidden,), "W8": (hidden, out),
                         "b8": (out,)})
        expect_shapes(host, expected, f"a DeepConvNet with input_dim {dim} and these conv_params")
        self.input_dim = dim
        self.conv_params = convs
        self.dropout_ratio = ratio
        self._affine_names = ("W7", "W8")

    def _build_layers(self, arrays: Mapping[str, Array]) -> dict[str, tuple[Any, str]]:
        bindings: dict[str, tuple[Any, str]] = {}
        for i, p in enumerate(self.conv_params, start=1):
            # The first convolution's input is data: no gradient is needed for it.
            conv = Convolution(arrays[f"W{i}"], arrays[f"b{i}"], p["stride"], p["pad"],
                               input_grad=i > 1)
            self.layers[f"Conv{i}"] = conv
            self.layers[f"Relu{i}"] = Relu()
            if i % 2 == 0:
                self.layers[f"Pool{i // 2}"] = Pooling(pool_h=2, pool_w=2, stride=2)
            bindings[f"W{i}"], bindings[f"b{i}"] = (conv, "W"), (conv, "b")
        # One generator for both dropout layers: masks differ between layers and steps, and
        # one seed reproduces the run. It draws on the parameters' device.
        rng = random_generator(self.xp, self.device, getattr(self, "_seed", None))
        a1 = Affine(arrays["W7"], arrays["b7"])
        a2 = Affine(arrays["W8"], arrays["b8"])
        self.layers["Affine1"] = a1
        self.layers["Relu7"] = Relu()
        self.layers["Dropout1"] = Dropout(self.dropout_ratio, rng=rng)
        self.layers["Affine2"] = a2
        self.layers["Dropout2"] = Dropout(self.dropout_ratio, rng=rng)
        self.last_layer = SoftmaxWithLoss()
        bindings.update({"W7": (a1, "W"), "b7": (a1, "b"), "W8": (a2, "W"), "b8": (a2, "b")})
        return bindings

    def config(self) -> dict[str, Any]:
        """``input_dim``, ``conv_param_1..6`` and ``dropout_ratio``: what the weights' shapes
        do not say."""
        out: dict[str, Any] = {"input_dim": self.input_dim}
        out.update({f"conv_param_{i}": dict(p) for i, p in enumerate(self.conv_params, 1)})
        out["dropout_ratio"] = self.dropout_ratio
        return out
