"""TwoLayerNet: the book's two-layer network (section 5.7), on any backend and device."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..backend import Array, Namespace
from ..layers import Affine, Relu, SoftmaxWithLoss
from .base import Network, Params, check_init_std, check_size

__all__ = ["Params", "TwoLayerNet", "check_param_shapes"]

PARAM_NAMES = ("W1", "b1", "W2", "b2")


def check_param_shapes(shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Raise ``ValueError`` unless W1 ``(in, hidden)``, b1 ``(hidden,)``, W2 ``(hidden, out)``
    and b2 ``(out,)`` fit together."""
    shapes = {k: tuple(v) for k, v in shapes.items()}
    fits = (len(shapes["W1"]) == 2 and len(shapes["W2"]) == 2
            and shapes["b1"] == shapes["W1"][1:] and shapes["W2"][:1] == shapes["W1"][1:]
            and shapes["b2"] == shapes["W2"][1:])
    if not fits:
        msg = (f"parameter shapes do not fit together: {shapes}; expected W1 (in, hidden), "
               "b1 (hidden,), W2 (hidden, out), b2 (out,)")
        raise ValueError(msg)


class TwoLayerNet(Network):
    """``Affine -> Relu -> Affine -> SoftmaxWithLoss``, as in the book (section 5.7).

    Parameters
    ----------
    input_size, hidden_size, output_size
        Layer widths, e.g. ``784, 50, 10`` for MNIST.
    weight_init_std
        Standard deviation of the initial weights (a finite number >= 0; biases start at zero).
    xp
        Backend: a name (``"numpy"``, ``"cupy"``, ``"torch"``, ``"array_api_strict"``), an array
        module or namespace. Default NumPy.
    device
        Where the parameters live (``"cuda:0"``, a CuPy or strict device ...). Default: the
        backend's default device.
    dtype
        ``"float32"`` or ``"float64"``. Default float64 (the book's), or float32 on a device
        without float64.
    seed
        Seed of the host NumPy generator that draws the initial weights; the same seed gives
        the same network on every backend.

    Inputs of another floating or integer dtype are cast to the network's dtype.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        weight_init_std: float = 0.01,
        *,
        xp: Namespace | str | None = None,
        device: Any = None,
        dtype: Any = None,
        seed: int | None = None,
    ) -> None:
        input_size = check_size("input_size", input_size)
        hidden_size = check_size("hidden_size", hidden_size)
        output_size = check_size("output_size", output_size)
        std = check_init_std(weight_init_std)
        rng = np.random.default_rng(seed)
        host = {
            "W1": std * rng.standard_normal((input_size, hidden_size)),
            "b1": np.zeros(hidden_size),
            "W2": std * rng.standard_normal((hidden_size, output_size)),
            "b2": np.zeros(output_size),
        }
        self._setup(host, xp=xp, device=device, dtype=dtype)

    @classmethod
    def _param_names(cls, params: Mapping[str, Any], **config: Any) -> tuple[str, ...]:
        return PARAM_NAMES

    def _configure(self, host: Mapping[str, np.ndarray], **config: Any) -> None:
        if config:
            msg = f"TwoLayerNet takes no options besides its parameters, got {sorted(config)}"
            raise TypeError(msg)
        check_param_shapes({k: host[k].shape for k in PARAM_NAMES})

    def _build_layers(self, arrays: Mapping[str, Array]) -> dict[str, tuple[Any, str]]:
        # The first layer's input is data: no gradient is ever needed for it.
        self.layers["Affine1"] = Affine(arrays["W1"], arrays["b1"], input_grad=False)
        self.layers["Relu1"] = Relu()
        self.layers["Affine2"] = Affine(arrays["W2"], arrays["b2"])
        self.last_layer = SoftmaxWithLoss()
        a1, a2 = self.layers["Affine1"], self.layers["Affine2"]
        return {"W1": (a1, "W"), "b1": (a1, "b"), "W2": (a2, "W"), "b2": (a2, "b")}

    @property
    def params(self) -> Params:
        """``{'W1', 'b1', 'W2', 'b2'}``: assigning to an entry updates the layers too."""
        return self._params

    @params.setter
    def params(self, new: Mapping[str, Array]) -> None:
        self._params.update(new)

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(input_size, hidden_size, output_size)``."""
        (d_in, d_hidden), d_out = self._params["W1"].shape, self._params["W2"].shape[1]
        return int(d_in), int(d_hidden), int(d_out)
