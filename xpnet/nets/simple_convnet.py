"""SimpleConvNet: the book's chapter-7 convolutional network, on any backend and device."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..backend import Array, Namespace
from ..conv import Convolution, Pooling
from ..layers import Affine, Relu, SoftmaxWithLoss
from ._convnet import (
    ConvNetMixin,
    check_conv_param,
    check_input_dim,
    conv_out,
    expect_shapes,
    pool_out,
)
from .base import Network, check_init_std, check_size

__all__ = ["SimpleConvNet"]

DEFAULT_CONV_PARAM = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}
PARAM_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")


class SimpleConvNet(ConvNetMixin, Network):
    """``Conv -> Relu -> Pool -> Affine -> Relu -> Affine -> SoftmaxWithLoss`` (the book's
    chapter 7), with a 2x2 max pooling of stride 2.

    Parameters
    ----------
    input_dim
        ``(C, H, W)`` of one image, ``(1, 28, 28)`` for MNIST.
    conv_param
        ``{'filter_num': 30, 'filter_size': 5, 'pad': 0, 'stride': 1}``; keys left out take
        these defaults. The convolution's output is ``OH = (H + 2*pad - filter_size) //
        stride + 1`` (floored, as in the book's layers and PyTorch), the pooling's ``OH // 2``
        (an odd last row is dropped); ``W2`` has ``filter_num * OH//2 * OW//2`` rows. (The
        book's constructor computes ``int(filter_num * (OH/2) * (OW/2))`` rows, which differs
        from what its layers produce when ``OH`` or ``OW`` is odd.)
    hidden_size, output_size
        Widths of the two fully connected layers.
    weight_init_std
        Standard deviation of all initial weights (a finite number >= 0); biases start at 0.
    xp, device, dtype, seed
        As for :class:`~xpnet.TwoLayerNet`: the weights are drawn on the host by a NumPy
        generator seeded with ``seed`` (W1, W2, W3 in turn) and moved, so one seed gives one
        network on every backend. ``dtype`` defaults to the book's float64.

    Notes
    -----
    Parameters are named ``W1`` ``(FN, C, FH, FW)``, ``b1``, ``W2`` ``(FN*OH/2*OW/2,
    hidden_size)``, ``b2``, ``W3``, ``b3``; layers ``'Conv1', 'Relu1', 'Pool1', 'Affine1',
    'Relu2', 'Affine2'`` as in the book. Input: images ``(N, C, H, W)``, or flat rows
    ``(N, C*H*W)`` (reshaped). The first convolution computes no gradient for its input.
    ``load_params`` reads the book's ``params.pkl`` (safely) or our ``.npz``; ``save_params``
    writes ``.npz``.
    """

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param: Mapping[str, int] = DEFAULT_CONV_PARAM,
        hidden_size: int = 100,
        output_size: int = 10,
        weight_init_std: float = 0.01,
        *,
        xp: Namespace | str | None = None,
        device: Any = None,
        dtype: Any = None,
        seed: int | None = None,
    ) -> None:
        dim = check_input_dim(input_dim)
        conv = check_conv_param(conv_param, "conv_param", DEFAULT_CONV_PARAM)
        hidden_size = check_size("hidden_size", hidden_size)
        output_size = check_size("output_size", output_size)
        std = check_init_std(weight_init_std)
        flat = self._flat_size(dim, conv)
        rng = np.random.default_rng(seed)
        fn, fs = conv["filter_num"], conv["filter_size"]
        host = {
            "W1": std * rng.standard_normal((fn, dim[0], fs, fs)),
            "b1": np.zeros(fn),
            "W2": std * rng.standard_normal((flat, hidden_size)),
            "b2": np.zeros(hidden_size),
            "W3": std * rng.standard_normal((hidden_size, output_size)),
            "b3": np.zeros(output_size),
        }
        self._configure(host, input_dim=dim, conv_param=conv)
        self._setup(host, xp=xp, device=device, dtype=dtype)

    @staticmethod
    def _flat_size(dim: tuple[int, int, int], conv: Mapping[str, int]) -> int:
        """Values per image after the convolution and the pooling: ``FN * OH/2 * OW/2``."""
        oh, ow = pool_out(conv_out(dim[1:], conv, "conv_param"), "Pool1")
        return conv["filter_num"] * oh * ow

    @classmethod
    def _param_names(cls, params: Mapping[str, Any], **config: Any) -> tuple[str, ...]:
        return PARAM_NAMES

    def _configure(self, host: Mapping[str, np.ndarray], *,
                   input_dim: Any = (1, 28, 28), conv_param: Any = None, **extra: Any) -> None:
        if extra:
            msg = f"SimpleConvNet got unknown options {sorted(extra)}"
            raise TypeError(msg)
        dim = check_input_dim(input_dim)
        w1 = tuple(host["W1"].shape)
        if len(w1) != 4 or w1[2] != w1[3] or w1[1] != dim[0]:
            msg = (f"W1 must have shape (filter_num, {dim[0]}, filter_size, filter_size) for "
                   f"input_dim {dim}, got {w1}")
            raise ValueError(msg)
        conv = check_conv_param({} if conv_param is None else conv_param, "conv_param",
                                DEFAULT_CONV_PARAM, w1)
        flat = self._flat_size(dim, conv)
        w3 = tuple(host["W3"].shape)
        hidden = int(host["W2"].shape[1]) if host["W2"].ndim == 2 else -1
        out = int(w3[1]) if len(w3) == 2 else -1
        expect_shapes(host, {"b1": (w1[0],), "W2": (flat, hidden), "b2": (hidden,),
                             "W3": (hidden, out), "b3": (out,)},
                      f"a SimpleConvNet with input_dim {dim} and conv_param {conv}")
        self.input_dim = dim
        self.conv_param = conv
        self._affine_names = ("W2", "W3")

    def _build_layers(self, arrays: Mapping[str, Array]) -> dict[str, tuple[Any, str]]:
        conv = Convolution(arrays["W1"], arrays["b1"], self.conv_param["stride"],
                           self.conv_param["pad"], input_grad=False)  # its input is data
        self.layers["Conv1"] = conv
        self.layers["Relu1"] = Relu()
        self.layers["Pool1"] = Pooling(pool_h=2, pool_w=2, stride=2)
        self.layers["Affine1"] = a1 = Affine(arrays["W2"], arrays["b2"])
        self.layers["Relu2"] = Relu()
        self.layers["Affine2"] = a2 = Affine(arrays["W3"], arrays["b3"])
        self.last_layer = SoftmaxWithLoss()
        return {"W1": (conv, "W"), "b1": (conv, "b"), "W2": (a1, "W"), "b2": (a1, "b"),
                "W3": (a2, "W"), "b3": (a2, "b")}

    def config(self) -> dict[str, Any]:
        """``{'input_dim': (C, H, W), 'conv_param': {...}}``: what the weights' shapes do not
        say (sizes, padding, stride)."""
        return {"input_dim": self.input_dim, "conv_param": dict(self.conv_param)}
