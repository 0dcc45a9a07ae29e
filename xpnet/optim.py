"""The book's optimizers (chapter 6): SGD, Momentum, Nesterov, AdaGrad, RMSprop and Adam.

Each has the book's name, defaults and ``update(params, grads)``, and works on any backend: on
xpnet's :class:`~xpnet.nets.Params` and on a plain dict of arrays (the book's own networks, whose
layers hold references to the same arrays). Parameters are changed in place wherever the array
library allows it, so a layer holding a parameter sees the update; arrays that cannot be changed
(read-only NumPy arrays, immutable array types) are replaced through ``params[key] = new``.

State (``self.v``, ``self.h``, ``self.m``, Adam's ``self.iter``) is made on the first update,
on each parameter's device with its dtype. Gradients of another floating dtype are cast to the
parameter's dtype first, as NumPy's in-place ``p -= lr * g`` does. On CuPy each parameter's
update is one fused kernel (:class:`xpnet.ops.cupy_ops.CupyOps`).
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Mapping, MutableMapping
from typing import Any, ClassVar, cast

import numpy as np
from array_api_compat import is_numpy_namespace

from ._checks import Checked, param_and_grad, positive_rate, unit_rate
from .backend import (
    Array,
    Namespace,
    asarray,
    on_device,
    supports_float64,
    to_numpy,
)
from .backend import device as device_of
from .ops import Ops, ops_for

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "AdaGrad",
    "Adam",
    "Momentum",
    "Nesterov",
    "Optimizer",
    "RMSprop",
    "get_optimizer",
]

# The book's epsilon, added to the root of the accumulated squares (AdaGrad, RMSprop, Adam).
EPS = 1e-7


def _is_number(value: Any) -> bool:
    """A plain Python real number (not bool); NumPy scalars go the arrays' way."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Optimizer:
    """Base class: checks, lazy state, the fused/portable split and ``state_dict``.

    A subclass names its state dicts in ``_state_names`` and implements ``_step``: the update
    of one parameter by the backend's operations (:mod:`xpnet.ops`: portable code, one fused
    kernel on CuPy).
    """

    name: ClassVar[str] = ""
    _hyper_names: ClassVar[tuple[str, ...]] = ("lr",)
    _state_names: ClassVar[tuple[str, ...]] = ()

    lr = Checked(positive_rate)
    _host_state = False  # True after load_state_dict, until the next update moves the state

    def update(self, params: MutableMapping[str, Array], grads: Mapping[str, Array]) -> None:
        """Update every parameter ``params[key]`` with its gradient ``grads[key]``.

        Raises
        ------
        KeyError
            ``grads`` names a parameter that ``params`` lacks, or lacks one it has.
        ValueError
            A gradient's shape or device differs from its parameter's, or the optimizer's
            state was made for other parameters.
        TypeError
            A gradient comes from another array library, or is not real floating point.

        Notes
        -----
        Plain numbers work too, as in the book's ``optimizer_compare_naive.py``
        (``params = {'x': -7.0, 'y': 2.0}``): they are updated as float64 and each is
        replaced by a new Python float, ``params[key] = new``, as the book's
        ``params[key] -= ...`` does (a list holding the old values keeps them).
        """
        numbers_in = [k for k in params if _is_number(params[k])] if isinstance(
            params, Mapping) else []
        if numbers_in:
            self._update_numbers(params, grads, numbers_in)
            return
        # State and kernels land on the current device: make the parameters' current (CuPy).
        with on_device(next(iter(params.values()), None)):
            self._update_arrays(params, grads)

    def _update_arrays(self, params: MutableMapping[str, Array],
                       grads: Mapping[str, Array]) -> None:
        xp = self._checked_before(params, grads)
        if xp is None:
            xp = self._check(params, grads)
            self._prepare(params, xp)
            # What the checks above have vouched for: the same dict holding the same arrays
            # (an array's shape, dtype and device never change), the same state.
            self._seen = (params, tuple(params.values()), self._state_objects(), xp)
        self._advance(xp)
        ops = ops_for(xp)
        for key in params:
            p, g = params[key], grads[key]
            if g.dtype != p.dtype:  # as NumPy's p -= g: the update is done in p's dtype
                g = xp.astype(g, p.dtype)
            self._step(ops, params, key, g)

    def _update_numbers(self, params: MutableMapping[str, Any], grads: Mapping[str, Any],
                        keys: list[str]) -> None:
        """:meth:`update` for a dict holding plain numbers under ``keys``: through 0-d float64
        NumPy arrays (the state stays 0-d arrays), written back as new Python floats."""
        arrays = dict(params)
        for key in keys:
            arrays[key] = np.asarray(float(params[key]))
        if isinstance(grads, Mapping):
            grads = {k: np.asarray(float(g)) if _is_number(g) else g for k, g in grads.items()}
        self.update(arrays, grads)
        for key, value in arrays.items():
            if key in keys:
                params[key] = float(value)
            elif value is not params[key]:  # an array that could not change in place
                params[key] = value

    def _step(self, ops: Ops, params: MutableMapping[str, Array], key: str, g: Array) -> None:
        """Update ``params[key]`` (and its state) with its gradient ``g`` through ``ops``."""
        raise NotImplementedError

    def _advance(self, xp: Namespace) -> None:
        """Per-update bookkeeping after the checks (Adam counts its steps)."""

    def _state_objects(self) -> tuple[Any, ...]:
        """The state containers whose identity the cached checks rely on."""
        return tuple(getattr(self, name) for name in self._state_names)

    # -- checks -------------------------------------------------------------------------------

    _seen: tuple[Any, ...] | None = None  # what the last full check passed (see update)

    def _checked_before(self, params: Mapping[str, Array],
                        grads: Mapping[str, Array]) -> Namespace | None:
        """The namespace if ``params`` is the dict the last full check passed, holding the
        same arrays, with the same state, and ``grads`` matches it array for array (same type,
        shape and dtype; same device off NumPy); else ``None`` (then :meth:`_check` runs and
        says what is wrong, if anything). Costs a few attribute reads per parameter instead
        of the full checks on every update of a training loop."""
        seen = self._seen
        if seen is None or seen[0] is not params or self._host_state:
            return None
        arrays, state, xp = seen[1], seen[2], seen[3]
        if len(params) != len(arrays) or any(
                a is not b for a, b in zip(self._state_objects(), state, strict=True)):
            return None
        if not isinstance(grads, Mapping) or grads.keys() != params.keys():
            return None
        many_devices = not is_numpy_namespace(xp)
        for p, (key, current) in zip(arrays, params.items(), strict=True):
            if current is not p:
                return None
            g = grads[key]
            if type(g) is not type(p) or g.shape != p.shape or g.dtype != p.dtype or (
                    many_devices and device_of(g) != device_of(p)):
                return None
        return cast("Namespace", xp)

    def _check(self, params: Mapping[str, Array], grads: Mapping[str, Array]) -> Namespace:
        """Check names, backends, shapes, dtypes and devices before anything changes, so a bad
        call leaves the parameters as they were. Returns the parameters' namespace."""
        owner = type(self).__name__
        if not isinstance(params, Mapping) or not isinstance(grads, Mapping):
            msg = (f"{owner}.update(params, grads) takes two dicts of arrays by name, got "
                   f"{type(params).__name__} and {type(grads).__name__}")
            raise TypeError(msg)
        if grads.keys() != params.keys():
            unknown = [k for k in grads if k not in params]
            missing = [k for k in params if k not in grads]
            have = ", ".join(map(str, params)) or "nothing"
            if unknown:
                msg = f"grads has unknown parameter(s) {', '.join(map(repr, unknown))}; " \
                      f"params has {have}"
            else:
                msg = f"grads lacks parameter(s) {', '.join(map(repr, missing))}: every " \
                      "parameter needs a gradient"
            raise KeyError(msg)
        xp = None
        for key in params:
            space = param_and_grad(key, params[key], grads[key])
            if xp is None:
                xp = space
            elif space is not xp:
                msg = f"params[{key!r}] comes from another array library than the others"
                raise TypeError(msg)
        if xp is None:
            msg = f"{owner}.update got no parameters"
            raise ValueError(msg)
        return xp

    # -- state ----------------------------------------------------------------------------

    def _prepare(self, params: Mapping[str, Array], xp: Namespace) -> None:
        """Make the state on the first update (or move loaded host state to the parameters'
        device), and check that existing state belongs to these parameters."""
        many_devices = not is_numpy_namespace(xp)  # NumPy has only the CPU
        for name in self._state_names:
            state = getattr(self, name)
            if state is None:
                state = {k: xp.zeros(p.shape, dtype=p.dtype, device=device_of(p))
                         for k, p in params.items()}
                setattr(self, name, state)
                continue
            if state.keys() != params.keys():
                msg = (f"{type(self).__name__}.{name} holds state for {', '.join(state)} but "
                       f"params has {', '.join(params)}; use a new optimizer for another network")
                raise KeyError(msg)
            for k, p in params.items():
                s = state[k]
                if tuple(s.shape) != tuple(p.shape):
                    msg = (f"{type(self).__name__}.{name}[{k!r}] has shape {tuple(s.shape)} "
                           f"but params[{k!r}] has {tuple(p.shape)}; use a new optimizer for "
                           "another network")
                    raise ValueError(msg)
                if self._host_state:  # from load_state_dict: onto the parameter's device
                    state[k] = asarray(s, xp, device=device_of(p), dtype=p.dtype)
                elif type(s) is not type(p) or s.dtype != p.dtype or (
                        many_devices and device_of(s) != device_of(p)):
                    msg = (f"{type(self).__name__}.{name}[{k!r}] is a {type(s).__name__} of "
                           f"{s.dtype} on {device_of(s)} but params[{k!r}] a "
                           f"{type(p).__name__} of {p.dtype} on {device_of(p)}; a moved network "
                           "needs a new optimizer, or opt.load_state_dict(opt.state_dict()) "
                           "first")
                    raise ValueError(msg)
        self._host_state = False

    def hyper_parameters(self) -> dict[str, float]:
        """The hyper-parameters by name (``{'lr': 0.01, ...}``)."""
        return {name: getattr(self, name) for name in self._hyper_names}

    def state_dict(self) -> dict[str, Any]:
        """A host copy of the optimizer: its name, hyper-parameters (Python floats), state
        (``{name: {key: numpy array}}``, ``None`` before the first update) and, for Adam,
        ``iter`` (a Python int). :meth:`load_state_dict` restores it."""
        state: dict[str, Any] = {"name": self.name, **self.hyper_parameters()}
        for name in self._state_names:
            arrays = getattr(self, name)
            state[name] = None if arrays is None else {
                k: np.array(to_numpy(a), copy=True) for k, a in arrays.items()}
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore hyper-parameters and state from :meth:`state_dict`. The arrays move to the
        parameters' device and dtype on the next update."""
        owner = type(self).__name__
        if not isinstance(state, Mapping):
            msg = f"{owner}.load_state_dict takes a dict from state_dict(), got {type(state)}"
            raise TypeError(msg)
        if str(state.get("name", "")).lower() != self.name:
            msg = (f"{owner}.load_state_dict got the state of optimizer "
                   f"{state.get('name')!r}; expected {self.name!r}")
            raise ValueError(msg)
        needed = [*self._hyper_names, *self._state_names, *self._extra_state_names()]
        missing = [k for k in needed if k not in state]
        if missing:
            msg = f"{owner}.load_state_dict: the state lacks {', '.join(missing)}"
            raise ValueError(msg)
        # Everything is checked before anything changes: a bad state leaves the optimizer as it was.
        loaded: dict[str, Any] = {
            name: getattr(type(self), name).check(owner, name, state[name])
            for name in self._hyper_names}
        for name in self._state_names:
            arrays = state[name]
            if arrays is not None:
                if not isinstance(arrays, Mapping):
                    msg = f"{owner}.load_state_dict: state[{name!r}] must be a dict of arrays"
                    raise TypeError(msg)
                arrays = {k: np.array(to_numpy(a), copy=True) for k, a in arrays.items()}
                for k, a in arrays.items():
                    if a.dtype.kind != "f":
                        msg = (f"{owner}.load_state_dict: state[{name!r}][{k!r}] must be "
                               f"floating point, got dtype {a.dtype}")
                        raise TypeError(msg)
            loaded[name] = arrays
        loaded.update(self._parse_extra(state))
        for name, value in loaded.items():
            setattr(self, name, value)
        self._host_state = True

    def _extra_state_names(self) -> tuple[str, ...]:
        return ()

    def _parse_extra(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """Attributes beyond hyper-parameters and state arrays, checked, from ``state``."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyper_parameters().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent: ``p -= lr * g``.

    Parameters
    ----------
    lr
        Learning rate, a positive float.
    """

    name = "sgd"

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr

    def _step(self, ops: Ops, params: MutableMapping[str, Array], key: str, g: Array) -> None:
        ops.sgd_update(params, key, g, self.lr)


class Momentum(Optimizer):
    """Momentum SGD: ``v = momentum * v - lr * g; p += v``.

    Parameters
    ----------
    lr
        Learning rate, a positive float.
    momentum
        Fraction of the velocity kept from step to step, in ``[0, 1)``.
    """

    name = "momentum"
    _hyper_names = ("lr", "momentum")
    _state_names = ("v",)
    momentum = Checked(unit_rate)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        self.lr = lr
        self.momentum = momentum
        self.v: Any = None  # {name: array}, made on the first update

    def _step(self, ops: Ops, params: MutableMapping[str, Array], key: str, g: Array) -> None:
        ops.momentum_update(params, key, g, self.v[key], self.lr, self.momentum)


class Nesterov(Optimizer):
    """Nesterov's accelerated gradient (arXiv:1212.0901), in the book's form:
    ``p += momentum**2 * v - (1 + momentum) * lr * g; v = momentum * v - lr * g``.

    Parameters
    ----------
    lr
        Learning rate, a positive float.
    momentum
        Fraction of the velocity kept from step to step, in ``[0, 1)``.
    """

    name = "nesterov"
    _hyper_names = ("lr", "momentum")
    _state_names = ("v",)
    momentum = Checked(unit_rate)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        self.lr = lr
        self.momentum = momentum
        self.v: Any = None  # {name: array}, made on the first update

    def _step(self, ops: Ops, params: MutableMapping[str, Array], key: str, g: Array) -> None:
        ops.nesterov_update(params, key, g, self.v[key], self.lr, self.momentum)


class AdaGrad(Optimizer):
    """AdaGrad: ``h += g * g; p -= lr * g / (sqrt(h) + 1e-7)``.

    Parameters
    ----------
    lr
        Learning rate, a positive float.
    """

    name = "adagrad"
    _state_names = ("h",)

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr
        self.h: Any = None  # {name: array}, made on the first update

    def _step(self, ops: Ops, params: MutableMapping[str, Array], key: str, g: Array) -> None:
        ops.adagrad_update(params, key, g, self.h[key], self.lr, EPS)


class RMSprop(Optimizer):
    """RMSprop: ``h = decay_rate * h + (1 - decay_rate) * g * g;
    p -= lr * g / (sqrt(h) + 1e-7)``.

    Parameters
    ----------
    lr
        Learning rate, a positive float.
    decay_rate
        Fraction of the mean square kept from step to step, in ``[0, 1)``.
    """

    name = "rmsprop"
    _hyper_names = ("lr", "decay_rate")
    _state_names = ("h",)
    decay_rate = Checked(unit_rate)

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99) -> None:
        self.lr = lr
        self.decay_rate = decay_rate
        self.h: Any = None  # {name: array}, made on the first update

    def _step(self, ops: Ops, params: MutableMapping[str, Array], key: str, g: Array) -> None:
        ops.rmsprop_update(params, key, g, self.h[key], self.lr, self.decay_rate, EPS)


class Adam(Optimizer):
    """Adam (arXiv:1412.6980), in the book's form: with ``t`` the update count,
    ``m += (1 - beta1) * (g - m); v += (1 - beta2) * (g**2 - v);
    p -= lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) + 1e-7)``.

    ``self.iter`` counts the updates: ``0`` (a Python int) before the first, then a 0-d array
    on the parameters' device (float64, or float32 where the device has none), so the step
    count, like the rest of the state, never leaves the device (a captured CUDA graph replays
    it). ``int(opt.iter)`` reads it.

    Parameters
    ----------
    lr
        Learning rate, a positive float.
    beta1, beta2
        Decay rates of the first and second moment estimates, in ``[0, 1)``.
    """

    name = "adam"
    _hyper_names = ("lr", "beta1", "beta2")
    _state_names = ("m", "v")
    beta1 = Checked(unit_rate)
    beta2 = Checked(unit_rate)

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999) -> None:
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.iter: Any = 0
        self.m: Any = None  # {name: array}, made on the first update
        self.v: Any = None  # {name: array}, made on the first update

    def _prepare(self, params: Mapping[str, Array], xp: Namespace) -> None:
        super()._prepare(params, xp)
        first = next(iter(params.values()))
        where = device_of(first)
        for key, p in params.items() if not is_numpy_namespace(xp) else ():
            if device_of(p) != where:
                msg = ("Adam keeps one step count, so all parameters must live on one device; "
                       f"params[{key!r}] is on {device_of(p)}, the first one on {where}")
                raise ValueError(msg)
        if isinstance(self.iter, int):  # first update, or state just loaded
            dtype = xp.float64 if supports_float64(xp, where) else xp.float32
            self.iter = xp.asarray(float(self.iter), dtype=dtype, device=where)
        elif type(self.iter) is not type(first) or device_of(self.iter) != where:
            msg = ("Adam's step count lives on another device or backend than the parameters; "
                   "a moved network needs a new optimizer or opt.load_state_dict(opt.state_dict())")
            raise ValueError(msg)

    def _advance(self, xp: Namespace) -> None:
        self.iter += 1.0  # in place: the 0-d array stays the one the cached checks know
        self._lr_t: dict[Any, Array] = {}

    def _state_objects(self) -> tuple[Any, ...]:
        return (*super()._state_objects(), self.iter)

    def _step(self, ops: Ops, params: MutableMapping[str, Array], key: str, g: Array) -> None:
        p = params[key]
        ops.adam_update(params, key, g, self.m[key], self.v[key], self.iter, self.lr, self.beta1,
                        self.beta2, EPS, lambda: self._lr_t_as(p.dtype, ops.xp))

    def _lr_t_as(self, dtype: Any, xp: Namespace) -> Array:
        """The bias-corrected rate ``lr * sqrt(1 - beta2**t) / (1 - beta1**t)`` (0-d, on the
        device, in ``dtype``; computed once per update and dtype)."""
        lr_t = self._lr_t.get(dtype)
        if lr_t is None:
            t = self.iter
            lr_t = self.lr * xp.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)
            lr_t = self._lr_t[dtype] = xp.astype(lr_t, dtype)
        return lr_t

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["iter"] = round(float(to_numpy(self.iter)))
        return state

    def _extra_state_names(self) -> tuple[str, ...]:
        return ("iter",)

    def _parse_extra(self, state: Mapping[str, Any]) -> dict[str, Any]:
        count = state["iter"]
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
            msg = f"Adam.load_state_dict: iter must be a non-negative int, got {count!r}"
            raise ValueError(msg)
        return {"iter": int(count)}


#: The optimizers by lower-case name, for :func:`get_optimizer`, the Trainer and the CLI.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam)}

# The book's Trainer spells RMSprop 'rmsprprop'; its scripts keep working.
_ALIASES = {"rmsprprop": "rmsprop"}


def get_optimizer(name: str | Optimizer, **params: Any) -> Optimizer:
    """A new optimizer by name (``'sgd'``, ``'momentum'``, ``'nesterov'``, ``'adagrad'``,
    ``'rmsprop'``, ``'adam'``; any case) with hyper-parameters ``params``, e.g.
    ``get_optimizer('Adam', lr=0.001)``. An optimizer instance is returned as it is.

    Raises
    ------
    ValueError
        An unknown name (the message lists the known ones).
    TypeError
        A hyper-parameter that this optimizer does not take.
    """
    if isinstance(name, Optimizer):
        if params:
            msg = (f"got an optimizer instance ({name!r}) and hyper-parameters "
                   f"{sorted(params)}; set them on the instance instead")
            raise TypeError(msg)
        return name
    if not isinstance(name, str):
        msg = f"optimizer must be a name such as 'adam' or an optimizer, got {name!r}"
        raise TypeError(msg)
    key = name.strip().lower()
    cls = OPTIMIZERS.get(_ALIASES.get(key, key))
    if cls is None:
        msg = f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}"
        raise ValueError(msg)
    takes = list(inspect.signature(cls).parameters)
    unknown = [k for k in params if k not in takes]
    if unknown:
        msg = (f"optimizer {cls.name!r} takes {', '.join(takes)}; got unknown "
               f"hyper-parameter(s) {', '.join(unknown)}")
        raise TypeError(msg)
    return cls(**params)
