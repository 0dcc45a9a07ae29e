"""Seeded random numbers on a backend's device (the Array API has none).

NumPy, PyTorch and CuPy each have their own generator; layers that need random numbers on the
device (Dropout masks) ask :func:`random_generator` for one, and the backend's operations
(:func:`xpnet.ops.ops_for`) say how it draws: PyTorch's generator, xpnet's counter-based CuPy
kernel, or NumPy on the host moved to the device (array-api-strict).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import seed as check_seed
from .backend import Array, Namespace, backend_name, default_device, dtype_name, get_namespace
from .ops import ops_for

__all__ = ["RandomGenerator", "random_generator"]

_RANDOM_DTYPES = ("float32", "float64")


class RandomGenerator:
    """A seeded stream of uniform ``[0, 1)`` numbers on one backend and device.

    Made by :func:`random_generator`. ``random(shape, dtype)`` draws on the device where the
    library has its own generator (PyTorch, CuPy) and with NumPy on the host otherwise
    (array-api-strict, moved with ``xp.asarray(..., device=...)``). ``get_state()`` returns plain
    host data (dicts, lists, ints, strings: JSON-compatible) that ``set_state()`` restores, so
    the stream continues exactly where it was.
    """

    def __init__(self, xp: Namespace, device: Any, seed: int | None) -> None:
        self.xp = xp
        self.device = default_device(xp) if device is None else device
        self.backend = backend_name(xp)
        # SeedSequence turns any seed (or None: fresh OS entropy) into well-mixed state.
        self._stream = ops_for(xp).random_stream(self.device, np.random.SeedSequence(seed))

    @property
    def family(self) -> str:
        """Generators of one family share a state format (``"numpy-host"``, ``"torch"``,
        ``"cupy"``): a state moves between their backends."""
        return str(self._stream.family)

    def draws_on(self, xp: Namespace, device: Any) -> bool:
        """Whether this generator's numbers land on ``device`` of ``xp``'s backend."""
        return self.backend == backend_name(xp) and repr(self.device) == repr(device)

    def random(self, shape: tuple[int, ...] | int, dtype: Any = "float64") -> Array:
        """Uniform samples in ``[0, 1)`` of ``shape`` and floating ``dtype`` (``"float32"``,
        ``"float64"`` or that dtype of the namespace) on the generator's device."""
        shape = (shape,) if isinstance(shape, int) else tuple(int(n) for n in shape)
        name = dtype if isinstance(dtype, str) else dtype_name(dtype)
        if name not in _RANDOM_DTYPES:
            msg = f"random numbers come as float32 or float64, got dtype {dtype!r}"
            raise TypeError(msg)
        return self._stream.random(shape, name)

    def get_state(self) -> dict[str, Any]:
        """The generator's state as plain host data (JSON-compatible)."""
        return {"backend": self.backend, "family": self.family,
                "state": self._stream.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`get_state` (of a generator of the same backend)."""
        got = state.get("backend") if isinstance(state, dict) else None
        if got != self.backend:
            msg = (f"this is a {self.backend} random generator; the state given comes from "
                   f"{got!r}: restore it into a generator of that backend")
            raise ValueError(msg)
        self._stream.set_state(state["state"])

    def __repr__(self) -> str:
        return f"RandomGenerator(backend={self.backend!r}, device={self.device!r})"


def random_generator(xp: Namespace | str | None = None, device: Any = None,
                     seed: int | None = None) -> RandomGenerator:
    """A seeded generator of uniform random numbers on ``device`` of backend ``xp``.

    Parameters
    ----------
    xp
        A namespace, a backend name, or ``None`` (NumPy).
    device
        Where the numbers land (``None``: the backend's default device).
    seed
        Any non-negative integer; ``None`` takes fresh entropy from the OS. The same seed gives
        the same stream on the same backend (streams differ between backends).

    Returns
    -------
    RandomGenerator
        ``random(shape, dtype)``, ``get_state()``, ``set_state(state)``.
    """
    if xp is None or isinstance(xp, str):
        xp = get_namespace(xp)
    return RandomGenerator(xp, device, check_seed(seed))
