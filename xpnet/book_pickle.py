"""Read the book's pre-trained weights (``params.pkl``, ``deep_convnet_params.pkl``) safely.

The book saves a network's parameters as ``pickle.dump(dict_of_numpy_arrays, f)``. A plain
``pickle.load`` runs whatever callable the file names, so a downloaded ``.pkl`` can run any code.
:func:`load_book_params` unpickles with a restricted :class:`pickle.Unpickler` that resolves only
the few globals a NumPy array pickle needs and refuses everything else before calling it.
xpnet's own format stays ``.npz`` read with ``allow_pickle=False``.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
from typing import Any

import numpy as np

__all__ = ["UnsafePickleError", "load_book_params"]


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for something other than NumPy arrays and plain containers."""


def _latin1_encode(text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes (``encode(str, 'latin1')``),
    limited to latin-1 so that no codec lookup can import other modules."""
    if not isinstance(text, str) or codecs.lookup("latin1").name != "iso8859-1":
        raise UnsafePickleError("refusing _codecs.encode on anything but a str")
    if encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        msg = f"refusing to load: _codecs.encode with encoding {encoding!r} (only latin-1)"
        raise UnsafePickleError(msg)
    return text.encode("latin-1", errors)


def _numpy_globals() -> dict[str, Any]:
    """The array reconstruction functions, taken from NumPy's own ``__reduce__`` so no private
    module is imported (``numpy.core`` warns on NumPy 2, ``numpy._core`` is absent on 1.x)."""
    sample = np.zeros(1)
    return {
        "_reconstruct": sample.__reduce__()[0],
        "_frombuffer": sample.__reduce_ex__(5)[0],
    }


_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray",
                  "numpy.core.numeric", "numpy._core.numeric")


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Resolves NumPy's array/dtype reconstruction globals and ``OrderedDict``; refuses all else."""

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file)
        self._source = source
        self._numpy = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        if module in _NUMPY_MODULES and name in self._numpy:
            return self._numpy[name]
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module == "_codecs" and name == "encode":
            return _latin1_encode
        if (module, name) == ("collections", "OrderedDict"):
            import collections

            return collections.OrderedDict
        msg = (f"refusing to load {self._source}: the file wants to run {module}.{name}; "
               "only NumPy arrays are accepted (dicts/lists of numeric ndarrays). "
               "Do not open this file with pickle.load")
        raise UnsafePickleError(msg)


def load_book_params(path: str | os.PathLike[str] | bytes) -> dict[str, np.ndarray]:
    """Read the book's parameter pickle (``{name: ndarray}``) without running code from it.

    Parameters
    ----------
    path : file path of the ``.pkl`` file (or the pickle's bytes)

    Returns
    -------
    dict of str to numpy.ndarray
        The arrays as saved (the book's are float64), e.g. ``W1`` ``(30, 1, 5, 5)``.

    Raises
    ------
    UnsafePickleError
        The file names any global other than NumPy's array reconstruction (a ``__reduce__``
        payload such as ``os.system``): nothing it names is called.
    ValueError
        The file is not a pickle, or holds something other than a dict of str to numeric arrays.
    """
    if isinstance(path, (bytes, bytearray)):
        source, data = "the given bytes", bytes(path)
    else:
        source = repr(os.fspath(path))
        with open(path, "rb") as f:
            data = f.read()
    try:
        obj = _ArrayOnlyUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError:
        raise
    except Exception as exc:
        msg = f"{source} is not a readable parameter pickle ({type(exc).__name__}: {exc})"
        raise ValueError(msg) from None
    if not isinstance(obj, dict):
        msg = f"{source} holds a {type(obj).__name__}, expected a dict of name -> NumPy array"
        raise ValueError(msg)
    out: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or type(value) is not np.ndarray:
            msg = (f"{source}: entry {key!r} is a {type(value).__name__}, expected str -> "
                   "numpy.ndarray")
            raise ValueError(msg)
        if value.dtype.hasobject or value.dtype.kind not in "biuf":
            msg = f"{source}: array {key!r} has dtype {value.dtype}, expected a numeric dtype"
            raise ValueError(msg)
        out[key] = value
    return out
