"""MultiLayerNetExtend: the book's chapter-6 network with batch normalization and dropout."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..backend import Array, Namespace, asarray, to_numpy
from ..layers import BatchNormalization, Dropout
from ..rng import random_generator
from .multi_layer_net import MultiLayerNet

__all__ = ["MultiLayerNetExtend"]


class MultiLayerNetExtend(MultiLayerNet):
    """:class:`MultiLayerNet` plus, after every hidden affine layer, an optional
    :class:`~xpnet.BatchNormalization` (parameters ``gamma{i}``, ``beta{i}``) and, after every
    activation, an optional :class:`~xpnet.Dropout` (the book's ``multi_layer_net_extend``).

    Parameters
    ----------
    input_size, hidden_size_list, output_size, activation, weight_init_std, weight_decay_lambda
        As for :class:`MultiLayerNet`.
    use_dropout, dropout_ration
        Dropout after each hidden activation, dropping this fraction of units in training
        (``dropout_ration`` is the book's spelling).
    use_batchnorm
        Batch normalization between each hidden affine layer and its activation.
    xp, device, dtype, seed
        As for :class:`MultiLayerNet`; ``seed`` also seeds the dropout masks, which are drawn
        on the device by one generator shared by all dropout layers.

    Notes
    -----
    ``predict(x, train_flg=False)`` and ``loss(x, t, train_flg=False)`` take the book's
    ``train_flg``; ``gradient`` runs in training mode (batch statistics, fresh dropout masks),
    ``accuracy`` in inference mode (running statistics, no dropout). The batch-norm running
    statistics live on the layers (``layers['BatchNorm1'].running_mean`` ...) and are listed by
    :meth:`buffers`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size_list: Sequence[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: str | float = "relu",
        weight_decay_lambda: float = 0,
        use_dropout: bool = False,
        dropout_ration: float = 0.5,
        use_batchnorm: bool = False,
        *,
        xp: Namespace | str | None = None,
        device: Any = None,
        dtype: Any = None,
        seed: int | None = None,
    ) -> None:
        self._seed = seed
        self._init(input_size, hidden_size_list, output_size, weight_init_std, seed,
                   {"activation": activation, "weight_decay_lambda": weight_decay_lambda,
                    "use_dropout": use_dropout, "dropout_ration": dropout_ration,
                    "use_batchnorm": use_batchnorm},
                   xp=xp, device=device, dtype=dtype)

    def _extra_params(self, sizes: Sequence[int], config: Mapping[str, Any]) -> dict[str, Any]:
        if not config.get("use_batchnorm"):
            return {}
        extra: dict[str, Any] = {}
        for i, width in enumerate(sizes[1:-1], start=1):
            extra[f"gamma{i}"] = np.ones(width)
            extra[f"beta{i}"] = np.zeros(width)
        return extra

    @classmethod
    def _param_names(cls, params: Mapping[str, Any], *, use_batchnorm: bool = False,
                     **config: Any) -> tuple[str, ...]:
        names = super()._param_names(params, **config)
        if not use_batchnorm:
            return names
        hidden = len(names) // 2 - 1
        return names + tuple(f"{kind}{i}" for i in range(1, hidden + 1)
                             for kind in ("gamma", "beta"))

    def _configure(self, host: Mapping[str, np.ndarray], *, use_dropout: bool = False,
                   dropout_ration: float = 0.5, use_batchnorm: bool = False,
                   **config: Any) -> None:
        ratio = float(dropout_ration)
        if not 0.0 <= ratio < 1.0:  # also refuses NaN
            msg = f"dropout_ration must lie in [0, 1), got {dropout_ration!r}"
            raise ValueError(msg)
        self.use_dropout = bool(use_dropout)
        self.dropout_ration = ratio
        self.use_batchnorm = bool(use_batchnorm)
        weights = {k: v for k, v in host.items() if k[0] in "Wb"}
        super()._configure(weights, **config)
        if self.use_batchnorm:
            for i in range(1, len(self._decay_names)):
                width = weights[f"W{i}"].shape[1]
                for name in (f"gamma{i}", f"beta{i}"):
                    if tuple(host[name].shape) != (width,):
                        msg = (f"{name} must have shape ({width},) to match W{i}, "
                               f"got {tuple(host[name].shape)}")
                        raise ValueError(msg)

    def _build_layers(self, arrays: Mapping[str, Array]) -> dict[str, tuple[Any, str]]:
        bindings = super()._build_layers(arrays)
        if not (self.use_batchnorm or self.use_dropout):
            return bindings
        # One generator for every dropout layer: masks differ between layers and steps, and
        # one seed reproduces the run. It draws on the parameters' device.
        rng = None
        if self.use_dropout:
            seed = getattr(self, "_seed", None)
            rng = random_generator(self.xp, self.device, seed)
        plain = self.layers
        self.layers = type(plain)()
        for name, layer in plain.items():
            self.layers[name] = layer
            if not name.startswith("Affine"):
                if name.startswith("Activation_function") and self.use_dropout:
                    i = name.removeprefix("Activation_function")
                    self.layers[f"Dropout{i}"] = Dropout(self.dropout_ration, rng=rng)
                continue
            i = name.removeprefix("Affine")
            if self.use_batchnorm and f"gamma{i}" in arrays:
                bn = BatchNormalization(arrays[f"gamma{i}"], arrays[f"beta{i}"])
                self.layers[f"BatchNorm{i}"] = bn
                bindings[f"gamma{i}"], bindings[f"beta{i}"] = (bn, "gamma"), (bn, "beta")
        return bindings

    def config(self) -> dict[str, Any]:
        """The constructor options: activation, weight decay, dropout and batch norm."""
        return {**super().config(), "use_dropout": self.use_dropout,
                "dropout_ration": self.dropout_ration, "use_batchnorm": self.use_batchnorm}

    def buffers(self) -> dict[str, Array]:
        """The batch-norm running statistics by name (``running_mean1``, ``running_var1``
        ...); ``None`` for a layer that has not run in training mode yet."""
        found: dict[str, Array] = {}
        for name, layer in self.layers.items():
            if isinstance(layer, BatchNormalization):
                i = name.removeprefix("BatchNorm")
                found[f"running_mean{i}"] = layer.running_mean
                found[f"running_var{i}"] = layer.running_var
        return found

    def load_buffers(self, buffers: Mapping[str, Any]) -> None:
        """Set running statistics from :meth:`buffers`-style names (arrays of any backend,
        moved to this network's device and dtype); shapes must match the layer widths."""
        layers = {name.removeprefix("BatchNorm"): layer for name, layer in self.layers.items()
                  if isinstance(layer, BatchNormalization)}
        for key, value in buffers.items():
            found = re.fullmatch(r"(running_mean|running_var)(\d+)", key)
            layer = layers.get(found.group(2)) if found else None
            if found is None or layer is None:
                msg = f"unknown buffer {key!r}; this network has {sorted(self.buffers())}"
                raise ValueError(msg)
            width = int(layer.gamma.shape[0])
            if tuple(getattr(value, "shape", ())) != (width,):
                msg = (f"buffer {key!r} must have shape ({width},), "
                       f"got {tuple(getattr(value, 'shape', ()))}")
                raise ValueError(msg)
            setattr(layer, found.group(1), asarray(to_numpy(value), self.xp, device=self.device,
                                         dtype=self.dtype))

    def predict(self, x: Array, train_flg: bool = False) -> Array:
        """Scores ``(N, output_size)``; ``train_flg=True`` uses batch statistics and dropout."""
        return self._forward(self._input(x), bool(train_flg))

    def loss(self, x: Array, t: Array, train_flg: bool = False) -> Array:
        """Cross-entropy plus weight decay; ``train_flg`` as for :meth:`predict`."""
        return self._loss(x, t, bool(train_flg))
