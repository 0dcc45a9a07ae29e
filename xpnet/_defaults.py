"""The default backend, device and dtype of networks built without naming them.

``with xpnet.defaults(xp="torch", device="cpu", dtype="float32"): net = TwoLayerNet(784, 50,
10)`` builds ``net`` on PyTorch's CPU in float32, as ``TwoLayerNet(..., xp="torch",
device="cpu", dtype="float32")`` would. The rule, applied by every network's constructor (and
``from_params``): an argument given explicitly wins; ``xp=None`` takes the default namespace
and then ``device=None`` the default device (a device belongs to its backend, so an explicit
``xp`` never takes the default device); ``dtype=None`` takes the default dtype. Outside any
``defaults`` block nothing changes: NumPy, its CPU, the book's float64.

The setting is a :mod:`contextvars` variable: blocks nest, and each thread or task sees its own.
``xpnet book`` runs a script of the book inside one such block.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .backend import Namespace, get_namespace, parse_device, resolve_dtype

__all__ = ["Defaults", "current_defaults", "defaults"]


@dataclass(frozen=True)
class Defaults:
    """What :func:`defaults` set: a namespace, a device object of it (``None``: the backend's
    default device) and a dtype of it (``None``: the network's own default, the book's
    float64 or float32 where the device has no float64)."""

    xp: Namespace
    device: Any
    dtype: Any


_CURRENT: contextvars.ContextVar[Defaults | None] = contextvars.ContextVar(
    "xpnet_defaults", default=None)


def current_defaults() -> Defaults | None:
    """The innermost :func:`defaults` setting in force, or ``None`` outside any."""
    return _CURRENT.get()


@contextlib.contextmanager
def defaults(xp: Namespace | str | None = None, device: Any = None,
             dtype: Any = None) -> Iterator[Defaults]:
    """Make ``xp``/``device``/``dtype`` the defaults of networks built inside the block.

    ``xp`` is a backend name (``"numpy"``, ``"torch"``, ``"array_api_strict"``, ``"cupy"``) or
    a namespace (``None``: NumPy); ``device`` a device spec of that backend (``"cuda:0"``,
    ``"cpu"``, ``"device1"``, a device object); ``dtype`` ``"float32"`` or ``"float64"``. They
    are checked here, so a wrong name fails at the ``with`` line (``BackendError``,
    ``ValueError``, ``TypeError``). Yields the :class:`Defaults` in force.
    """
    space = get_namespace(xp)
    where = parse_device(space, device)
    kind = None if dtype is None else resolve_dtype(space, dtype, where)
    setting = Defaults(space, where, kind)
    token = _CURRENT.set(setting)
    try:
        yield setting
    finally:
        _CURRENT.reset(token)
