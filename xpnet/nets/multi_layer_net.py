"""MultiLayerNet: the book's fully connected network of any depth (chapter 6), with He/Xavier
initialisation and weight decay, on any backend and device."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..backend import Array, Namespace
from ..layers import Affine, Relu, Sigmoid, SoftmaxWithLoss
from .base import Network, check_init_std, check_size

__all__ = ["MultiLayerNet"]

ACTIVATIONS = {"relu": Relu, "sigmoid": Sigmoid}
# weight_init_std names -> the variance numerator: std = sqrt(gain / fan_in).
INIT_GAINS = {"relu": 2.0, "he": 2.0, "sigmoid": 1.0, "xavier": 1.0}


def _check_activation(activation: Any) -> str:
    name = activation.lower() if isinstance(activation, str) else activation
    if name not in ACTIVATIONS:
        msg = f"activation must be 'relu' or 'sigmoid', got {activation!r}"
        raise ValueError(msg)
    return name


def _check_lambda(value: Any) -> float:
    return check_init_std(value, "weight_decay_lambda")


def init_stds(weight_init_std: Any, sizes: Sequence[int]) -> list[float]:
    """The standard deviation of each weight matrix: He ``sqrt(2 / n_in)`` for ``'relu'``/
    ``'he'``, Xavier ``sqrt(1 / n_in)`` for ``'sigmoid'``/``'xavier'`` (any case), or one
    finite number >= 0 for all."""
    if isinstance(weight_init_std, str):
        gain = INIT_GAINS.get(weight_init_std.lower())
        if gain is None:
            msg = (f"weight_init_std must be 'relu'/'he', 'sigmoid'/'xavier' or a finite number "
                   f">= 0, got {weight_init_std!r}")
            raise ValueError(msg)
        return [math.sqrt(gain / n_in) for n_in in sizes[:-1]]
    std = check_init_std(weight_init_std)
    return [std] * (len(sizes) - 1)


class MultiLayerNet(Network):
    """``(Affine -> activation) x len(hidden_size_list) -> Affine -> SoftmaxWithLoss``, as in
    the book (chapter 6), with the L2 weight decay ``0.5 * lambda * sum(W**2)`` in the loss.

    Parameters
    ----------
    input_size
        Features per sample (784 for MNIST).
    hidden_size_list
        Widths of the hidden layers, e.g. ``[100, 100, 100]`` (at least one).
    output_size
        Classes (10 for MNIST).
    activation
        ``'relu'`` or ``'sigmoid'``.
    weight_init_std
        ``'relu'``/``'he'`` (std ``sqrt(2 / n_in)``), ``'sigmoid'``/``'xavier'``
        (``sqrt(1 / n_in)``) or a number (the same std for every layer); biases start at zero.
    weight_decay_lambda
        Strength ``lambda`` of the weight decay (a finite number >= 0): adds
        ``0.5 * lambda * sum(W**2)`` to the loss and ``lambda * W`` to each weight's gradient.
    xp, device, dtype, seed
        As for :class:`~xpnet.TwoLayerNet`: the weights are drawn on the host by a NumPy
        generator seeded with ``seed`` and moved, so one seed gives one network on every
        backend.

    Notes
    -----
    Parameters are named ``W1, b1, ..., W{L}, b{L}`` (``L = len(hidden_size_list) + 1``), layers
    ``'Affine1', 'Activation_function1', ..., 'Affine{L}'`` as in the book.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size_list: Sequence[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: str | float = "relu",
        weight_decay_lambda: float = 0,
        *,
        xp: Namespace | str | None = None,
        device: Any = None,
        dtype: Any = None,
        seed: int | None = None,
    ) -> None:
        self._init(input_size, hidden_size_list, output_size, weight_init_std, seed,
                   {"activation": activation, "weight_decay_lambda": weight_decay_lambda},
                   xp=xp, device=device, dtype=dtype)

    def _init(self, input_size: int, hidden_size_list: Sequence[int], output_size: int,
              weight_init_std: str | float, seed: int | None, config: dict[str, Any], *,
              xp: Any, device: Any, dtype: Any) -> None:
        """Check the sizes, draw W1..WL on the host (seeded), add :meth:`_extra_params`, then
        configure and build. A subclass's ``__init__`` calls this with its own options in
        ``config`` (they reach :meth:`_configure` and :meth:`_extra_params`)."""
        if isinstance(hidden_size_list, (int, np.integer, str)) or not isinstance(
                hidden_size_list, Sequence):
            msg = (f"hidden_size_list must be a list of layer widths, e.g. [100, 100], "
                   f"got {hidden_size_list!r}")
            raise TypeError(msg)
        if len(hidden_size_list) == 0:
            msg = ("hidden_size_list is empty: a MultiLayerNet needs at least one hidden layer, "
                   "e.g. [100]")
            raise ValueError(msg)
        sizes = [check_size("input_size", input_size)]
        sizes += [check_size(f"hidden_size_list[{i}]", n) for i, n in enumerate(hidden_size_list)]
        sizes.append(check_size("output_size", output_size))
        config = {**config, "activation": _check_activation(config.get("activation", "relu")),
                  "weight_decay_lambda": _check_lambda(config.get("weight_decay_lambda", 0))}
        stds = init_stds(weight_init_std, sizes)
        rng = np.random.default_rng(seed)
        host: dict[str, np.ndarray] = {}
        for i, std in enumerate(stds, start=1):
            host[f"W{i}"] = std * rng.standard_normal((sizes[i - 1], sizes[i]))
            host[f"b{i}"] = np.zeros(sizes[i])
        host.update(self._extra_params(sizes, config))
        self._configure(host, **config)
        self._setup(host, xp=xp, device=device, dtype=dtype)

    def _extra_params(self, sizes: Sequence[int], config: Mapping[str, Any]) -> dict[str, Any]:
        """Host arrays of parameters besides W1..WL, b1..bL (a subclass's ``gamma1`` ...)."""
        return {}

    @classmethod
    def _param_names(cls, params: Mapping[str, Any], **config: Any) -> tuple[str, ...]:
        depth = 0
        while f"W{depth + 1}" in params:
            depth += 1
        depth = max(depth, 2)  # at least W1, b1, W2, b2: the shortest network there is
        return tuple(f"{kind}{i}" for i in range(1, depth + 1) for kind in ("W", "b"))

    def _configure(self, host: Mapping[str, np.ndarray], *, activation: str = "relu",
                   weight_decay_lambda: float = 0, **extra: Any) -> None:
        if extra:
            msg = f"{type(self).__name__} got unknown options {sorted(extra)}"
            raise TypeError(msg)
        self.activation = _check_activation(activation)
        self.weight_decay_lambda = _check_lambda(weight_decay_lambda)
        depth = sum(1 for k in host if k.startswith("W"))
        shapes = {k: tuple(v.shape) for k, v in host.items()}
        fits = all(len(shapes[f"W{i}"]) == 2 and shapes[f"b{i}"] == shapes[f"W{i}"][1:]
                   for i in range(1, depth + 1))
        fits = fits and all(shapes[f"W{i + 1}"][0] == shapes[f"W{i}"][1]
                            for i in range(1, depth))
        if not fits:
            msg = (f"parameter shapes do not fit together: {shapes}; expected W1 (in, h1), "
                   f"b1 (h1,), W2 (h1, h2), b2 (h2,), ..., W{depth} (h{depth - 1}, out), "
                   f"b{depth} (out,)")
            raise ValueError(msg)
        self._decay_names = tuple(f"W{i}" for i in range(1, depth + 1))

    def _build_layers(self, arrays: Mapping[str, Array]) -> dict[str, tuple[Any, str]]:
        depth = len(self._decay_names)
        bindings: dict[str, tuple[Any, str]] = {}
        for i in range(1, depth + 1):
            # The first layer's input is data: no gradient is ever needed for it.
            affine = Affine(arrays[f"W{i}"], arrays[f"b{i}"], input_grad=i > 1)
            self.layers[f"Affine{i}"] = affine
            bindings[f"W{i}"], bindings[f"b{i}"] = (affine, "W"), (affine, "b")
            if i < depth:
                self.layers[f"Activation_function{i}"] = ACTIVATIONS[self.activation]()
        self.last_layer = SoftmaxWithLoss()
        return bindings

    def config(self) -> dict[str, Any]:
        """``{'activation': ..., 'weight_decay_lambda': ...}``."""
        return {"activation": self.activation, "weight_decay_lambda": self.weight_decay_lambda}

    @property
    def sizes(self) -> tuple[int, ...]:
        """``(input_size, *hidden_size_list, output_size)``."""
        ws = [self._params[name] for name in self._decay_names]
        return (int(ws[0].shape[0]), *(int(w.shape[1]) for w in ws))

    @property
    def hidden_size_list(self) -> list[int]:
        """Widths of the hidden layers."""
        return list(self.sizes[1:-1])

    @property
    def hidden_layer_num(self) -> int:
        """Number of hidden layers."""
        return len(self._decay_names) - 1

    def _repr_sizes(self) -> tuple[Any, ...]:
        return (self.input_size, self.hidden_size_list, self.output_size)
