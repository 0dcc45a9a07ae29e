"""The ``.npz`` format of xpnet's parameter files: named arrays plus a JSON metadata entry,
loaded with ``allow_pickle=False`` (no file can run code), written atomically. Networks are
written through their public parts (``params``, ``buffers()``, ``sizes``, ``config()``), so
this module imports none of them; :mod:`xpnet.io` rebuilds networks from the files."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_write_bytes
from .backend import to_numpy

__all__ = ["BUFFER_PREFIX", "NETWORK_KEY", "ParamsFileError", "network_arrays", "read_npz",
           "write_npz"]

BUFFER_PREFIX = "buffer."
_META_KEY = "__metadata__"
#: The metadata entry naming the network a file holds: ``{"class": ..., "sizes": [...],
#: "config": {...}}``. Files without it (written before MultiLayerNet) hold a TwoLayerNet.
NETWORK_KEY = "network"


class ParamsFileError(ValueError):
    """A parameter file is missing, corrupt, or does not fit the network."""


def write_npz(path: str | os.PathLike[str], params: Mapping[str, Any],
              metadata: Mapping[str, Any] | None = None) -> Path:
    """Save arrays (of any backend) and a JSON-able ``metadata`` dict to ``.npz``, atomically."""
    arrays = {name: np.ascontiguousarray(to_numpy(value)) for name, value in params.items()}
    arrays[_META_KEY] = np.asarray(json.dumps(dict(metadata or {}), default=str))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub: allow_pickle
    return atomic_write_bytes(path, buffer.getvalue())


def network_arrays(net: Any, metadata: Mapping[str, Any] | None = None
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(arrays, metadata)`` that save a network: its parameters, its buffers (batch-norm
    running statistics: state, not parameters, saved beside them under a prefix so that a
    loaded network predicts as the saved one did), and ``metadata["network"]``: its class,
    sizes and constructor options."""
    meta = dict(metadata or {})
    buffers = {k: v for k, v in getattr(net, "buffers", dict)().items() if v is not None}
    meta[NETWORK_KEY] = {"class": type(net).__name__, "sizes": list(net.sizes),
                         "config": net.config()}
    if buffers:
        meta[NETWORK_KEY]["buffers"] = sorted(buffers)
    arrays = dict(net.params)
    arrays.update({BUFFER_PREFIX + k: v for k, v in buffers.items()})
    return arrays, meta


def read_npz(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, metadata)`` of an ``.npz`` written by :func:`write_npz`, loaded with
    ``allow_pickle=False``; a missing, foreign, corrupt or pickle-holding file is a
    :class:`ParamsFileError` that says so (never NumPy's advice to load pickles)."""
    path = Path(path)
    if not path.is_file():
        msg = f"no parameter file at {path}"
        raise ParamsFileError(msg)
    what = ("it must be an .npz written by `xpnet train` or xpnet.io.save_params (or a "
            "checkpoint.npz, which `xpnet evaluate` and xpnet.checkpoint read)")
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise ParamsFileError(f"cannot read {path} ({exc.strerror or exc})") from None
    if head != b"PK\x03\x04":  # not a zip archive: NumPy would try it as a pickle
        msg = f"{path} is not an .npz archive (no zip header); {what}"
        raise ParamsFileError(msg)
    try:
        # Our own handle: np.load(path) leaks its file when the archive is corrupt.
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except ValueError as exc:
        if "pickle" not in str(exc):
            msg = f"{path} is not a readable xpnet parameter file (ValueError: {exc}); {what}"
            raise ParamsFileError(msg) from None
        # NumPy's advice (allow_pickle=True) would run code from the file: never.
        msg = (f"{path} holds Python objects (pickled arrays), which xpnet never loads: they "
               f"could run code; {what}")
        raise ParamsFileError(msg) from None
    except Exception as exc:  # zipfile.BadZipFile, EOFError, OSError, zlib.error
        msg = (f"{path} is not a readable xpnet parameter file ({type(exc).__name__}: {exc}); "
               f"{what}")
        raise ParamsFileError(msg) from None
    metadata: dict[str, Any] = {}
    if _META_KEY in arrays:
        try:
            metadata = json.loads(str(arrays.pop(_META_KEY)))
        except json.JSONDecodeError as exc:
            msg = f"{path}: the metadata entry is not valid JSON ({exc})"
            raise ParamsFileError(msg) from None
    return arrays, metadata
