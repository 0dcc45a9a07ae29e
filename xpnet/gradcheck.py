"""Gradient checks: backpropagation against numerical differentiation.

:func:`numerical_gradient` is the book's central difference, one element at a time.
:func:`gradient_check` compares a network's backprop gradients with numerical ones per parameter,
in two modes:

``full``
    every element, ``2 * n_params`` forward passes: exact coverage, for small nets (the 784-50-10
    net takes a few seconds on NumPy).
``fast``
    directional derivatives ``d/de L(p + e v) = <grad, v>`` along a few random unit directions
    ``v`` per parameter: ``4 * n_directions`` forward passes whatever the size of the net, so it
    is usable on a GPU and on large nets.

Both run in float64 by default and return a :class:`GradcheckReport` whose ``str`` is a
per-parameter table; ``report.raise_if_failed()`` raises :class:`GradientCheckError` with it.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import (
    Array,
    asarray,
    backend_name,
    device,
    dtype_name,
    namespace,
    on_device,
    supports_float64,
    to_numpy,
)

__all__ = [
    "GradcheckReport",
    "GradientCheckError",
    "ParamCheck",
    "gradient_check",
    "numerical_gradient",
]


def numerical_gradient(f: Callable[[Array], Any], x: Array, *, h: float = 1e-4) -> Array:
    """Central-difference gradient ``(f(x + h e_i) - f(x - h e_i)) / 2h`` for every element ``i``.

    ``x`` is changed in place one element at a time and restored exactly, so ``f`` may read
    ``x`` through a closure (as the book's ``net.numerical_gradient`` does). The step actually
    taken is the representable one, which keeps float32 results honest. Returns an array of
    ``x``'s dtype on ``x``'s device.
    """
    namespace(x)
    grad = np.zeros(tuple(x.shape))
    with on_device(x):
        for idx in np.ndindex(*x.shape):
            old = float(x[idx])  # a Python float: x[idx] may be a view that the writes change
            x[idx] = old + h
            step_up = float(x[idx]) - old
            f_up = float(f(x))
            x[idx] = old - h
            step_down = old - float(x[idx])
            f_down = float(f(x))
            x[idx] = old
            grad[idx] = (f_up - f_down) / (step_up + step_down)
        return asarray(grad, namespace(x), device=device(x), dtype=x.dtype)


@dataclass
class ParamCheck:
    """One parameter's comparison: ``max_abs = max|numerical - backprop|`` and ``max_rel``, that
    difference over the gradient's scale (``max|backprop|`` in full mode, ``||backprop||`` in
    fast mode)."""

    name: str
    shape: tuple[int, ...]
    compared: int
    scale: float
    max_abs: float
    max_rel: float
    ok: bool


@dataclass
class GradcheckReport:
    """Per-parameter results of :func:`gradient_check`; ``str(report)`` is a table."""

    mode: str
    dtype: str
    backend: str
    device: str
    h: float
    atol: float
    rtol: float
    rows: list[ParamCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    @property
    def max_abs(self) -> dict[str, float]:
        return {row.name: row.max_abs for row in self.rows}

    def table(self) -> str:
        unit = "elements" if self.mode == "full" else "directions"
        head = (f"gradient check ({self.mode} mode, {self.dtype}, {self.backend} on {self.device}, "
                f"h={self.h:g}; pass: max_abs <= {self.atol:g} + {self.rtol:g} * scale)")
        lines = [head, f"{'param':<8}{'shape':<14}{unit:>11}{'scale':>11}{'max_abs':>11}"
                       f"{'max_rel':>11}  result"]
        for r in self.rows:
            lines.append(f"{r.name:<8}{r.shape!s:<14}{r.compared:>11}{r.scale:>11.2e}"
                         f"{r.max_abs:>11.2e}{r.max_rel:>11.2e}  {'ok' if r.ok else 'FAIL'}")
        return "\n".join(lines)

    __str__ = table

    def raise_if_failed(self) -> GradcheckReport:
        """Raise :class:`GradientCheckError` (with the table) unless every parameter passed."""
        if not self.ok:
            failed = ", ".join(r.name for r in self.rows if not r.ok)
            raise GradientCheckError(f"backprop disagrees with numerical gradients for "
                                     f"{failed}\n{self.table()}", self)
        return self


class GradientCheckError(AssertionError):
    """Backprop and numerical gradients disagree; ``.report`` holds the details."""

    def __init__(self, message: str, report: GradcheckReport) -> None:
        super().__init__(message)
        self.report = report


def _working_copy(net: Any, dtype: str) -> tuple[Any, str]:
    """A copy of ``net`` in ``dtype`` (float32 where the device has no float64); a network
    without ``to()`` (the book's own) is checked as it is, in its own dtype."""
    layers = getattr(net, "layers", {})
    layers = layers if isinstance(layers, dict) else dict(enumerate(layers))
    for name, layer in layers.items():
        # A dropout layer draws a new mask per forward pass: the numerical and backprop
        # gradients would then see different functions.
        if hasattr(layer, "fixed_mask") and layer.fixed_mask is None:
            msg = (f"layer {name!r} draws a new dropout mask on every forward pass; set "
                   f"net.layers[{name!r}].fixed_mask (a boolean array of the layer's input "
                   "shape) before a gradient check")
            raise ValueError(msg)
    if not hasattr(net, "to"):
        return net, dtype_name(next(iter(net.params.values())).dtype)
    xp = net.xp
    if dtype == "float64" and not supports_float64(xp, net.device):
        dtype = "float32"
    work = net.to(dtype=dtype)
    for name, layer in layers.items():  # the copy checks the same function: same masks
        if getattr(layer, "fixed_mask", None) is not None:
            work.layers[name].fixed_mask = layer.fixed_mask
    return work, dtype


def _loss_fn(net: Any) -> Callable[[Array, Array], Any]:
    """``net.loss`` in training mode where it has one (``train_flg=True``, as the book's
    numerical gradients of MultiLayerNetExtend), so both sides see the same function."""
    try:
        takes_flag = "train_flg" in inspect.signature(net.loss).parameters
    except (TypeError, ValueError):
        takes_flag = False
    return functools.partial(net.loss, train_flg=True) if takes_flag else net.loss


def gradient_check(
    net: Any,
    x: Array,
    t: Array,
    *,
    mode: str = "full",
    dtype: str = "float64",
    h: float | None = None,
    n_directions: int = 4,
    seed: int = 0,
    atol: float | None = None,
    rtol: float | None = None,
) -> GradcheckReport:
    """Compare ``net.gradient(x, t)`` with numerical gradients of ``net.loss(x, t)``.

    ``net`` needs ``params``, ``loss`` and ``gradient``. An xpnet network (one with
    ``to(dtype=...)``) is copied to ``dtype`` first and never modified; another (the book's
    own, with a dict of arrays) is checked as it is, in full mode only, each element
    restored after its step. A ``loss`` that takes ``train_flg`` is called with ``True``.
    Defaults: ``h = 1e-4`` (float64) or ``1e-2`` (float32); ``atol = 1e-8, rtol = 1e-6``
    (float64) or ``atol = 5e-5, rtol = 1e-3`` (float32). A parameter passes when
    ``max_abs <= atol + rtol * scale``. In float32, away from ReLU's kink, the measured
    ``max_abs`` stays below an eighth of that bound (small nets, 80 seeds, both modes), and a
    1% error in a gradient whose largest element exceeds about 6e-3 fails the full check. A
    float32 step of ``h`` that moves a hidden pre-activation across 0 breaks any check: keep
    pre-activations more than ``h * max|x|`` away from 0, or check in float64.
    """
    if mode not in ("full", "fast"):
        msg = f"mode must be 'full' or 'fast', got {mode!r}"
        raise ValueError(msg)
    if dtype not in ("float32", "float64"):
        msg = f"dtype must be 'float32' or 'float64', got {dtype!r}"
        raise ValueError(msg)
    work, dtype = _working_copy(net, dtype)
    if mode == "fast" and not hasattr(net, "to"):
        msg = ("mode='fast' assigns params[name] and needs a network whose params rebind its "
               "layers (an xpnet network); use mode='full' for this one")
        raise ValueError(msg)
    # The work happens where the network lives (CuPy: with its device current).
    with on_device(next(iter(work.params.values()))):
        loss = _loss_fn(work)
        wide = dtype == "float64"
        h = (1e-4 if wide else 1e-2) if h is None else h
        atol = (1e-8 if wide else 5e-5) if atol is None else atol
        rtol = (1e-6 if wide else 1e-3) if rtol is None else rtol
        x = work._input(x) if hasattr(work, "_input") else x
        xp = work.xp if hasattr(work, "xp") else namespace(next(iter(work.params.values())))
        report = GradcheckReport(mode=mode, dtype=dtype, backend=backend_name(xp),
                                 device=str(device(x)), h=h, atol=atol, rtol=rtol)
        backprop = {k: to_numpy(v).astype(np.float64) for k, v in work.gradient(x, t).items()}
        if mode == "full":
            for name, bp in backprop.items():
                numeric = numerical_gradient(lambda _: loss(x, t), work.params[name], h=h)
                diff = np.abs(to_numpy(numeric).astype(np.float64) - bp)
                scale = float(np.max(np.abs(bp))) if bp.size else 0.0
                report.rows.append(_row(name, bp, bp.size, scale, diff, atol, rtol))
        else:
            rng = np.random.default_rng(seed)
            for name, bp in backprop.items():
                diffs = _directional(work, loss, name, bp, x, t, h, n_directions, rng)
                scale = float(np.linalg.norm(bp))
                report.rows.append(_row(name, bp, n_directions, scale, diffs, atol, rtol))
        return report


def _row(name: str, bp: np.ndarray, compared: int, scale: float, diff: np.ndarray,
         atol: float, rtol: float) -> ParamCheck:
    max_abs = float(np.max(diff)) if diff.size else 0.0
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf)
    ok = bool(np.isfinite(max_abs)) and max_abs <= atol + rtol * scale
    return ParamCheck(name, tuple(bp.shape), int(compared), scale, max_abs, max_rel, ok)


def _directional(work: Any, loss: Callable[[Array, Array], Any], name: str, bp: np.ndarray,
                 x: Array, t: Array, h: float, n_directions: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``|numerical - backprop|`` directional derivatives along random unit directions."""
    xp = work.xp
    original = work.params[name]
    diffs = []
    try:
        for _ in range(n_directions):
            v = rng.standard_normal(bp.shape)
            v /= np.linalg.norm(v) or 1.0
            step = asarray(h * v, xp, device=device(original), dtype=original.dtype)
            work.params[name] = original + step
            f_up = float(loss(x, t))
            work.params[name] = original - step
            f_down = float(loss(x, t))
            # Both sides per unit of h, with the step as actually stored (float32 rounds it).
            numeric = (f_up - f_down) / (2.0 * h)
            exact = float(np.sum(bp * to_numpy(step).astype(np.float64))) / h
            diffs.append(abs(numeric - exact))
    finally:
        work.params[name] = original
    return np.asarray(diffs)
