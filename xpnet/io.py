"""Saving and loading parameters (``.npz``, no pickle) and run records (JSON), atomically."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .backend import to_numpy
from .net import TwoLayerNet, check_param_shapes

__all__ = ["ParamsFileError", "atomic_write_bytes", "load_net", "load_params", "save_params",
           "temp_path_beside", "write_json"]

PARAM_NAMES = ("W1", "b1", "W2", "b2")
_META_KEY = "__metadata__"


class ParamsFileError(ValueError):
    """A parameter file is missing, corrupt, or does not fit the network."""


def temp_path_beside(path: str | os.PathLike[str]) -> Path:
    """A new empty file next to ``path`` (same folder, so ``os.replace`` is atomic), created with
    the mode a plain ``open()`` gives (``tempfile.mkstemp`` would make it private)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    msg = f"could not create a temporary file next to {path}"
    raise FileExistsError(msg)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file, fsync and ``os.replace``: readers
    (and concurrent writers) see the old file or the new one, never half of one."""
    path = Path(path)
    tmp = temp_path_beside(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Best effort: make the rename itself durable (POSIX; a no-op where it cannot be)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, default=str) + "\n"
    return atomic_write_bytes(path, text.encode())


def save_params(path: str | os.PathLike[str], params: Mapping[str, Any],
                metadata: Mapping[str, Any] | None = None) -> Path:
    """Save parameters (arrays of any backend) and a JSON-able ``metadata`` dict to ``.npz``."""
    import io

    arrays = {name: np.ascontiguousarray(to_numpy(value)) for name, value in params.items()}
    arrays[_META_KEY] = np.asarray(json.dumps(dict(metadata or {}), default=str))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def load_params(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read ``(params, metadata)`` from a file written by :func:`save_params`.

    Loads with ``allow_pickle=False``; checks that W1, b1, W2, b2 are there, are real numbers and
    fit together, and says what is wrong otherwise.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"no parameter file at {path}"
        raise ParamsFileError(msg)
    try:
        # Our own handle: np.load(path) leaks its file when the archive is corrupt.
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError (pickled object arrays), OSError
        msg = (f"{path} is not a readable xpnet parameter file ({type(exc).__name__}: {exc}); "
               "it must be an .npz written by `xpnet train` or xpnet.io.save_params")
        raise ParamsFileError(msg) from None
    metadata: dict[str, Any] = {}
    if _META_KEY in arrays:
        try:
            metadata = json.loads(str(arrays.pop(_META_KEY)))
        except json.JSONDecodeError as exc:
            msg = f"{path}: the metadata entry is not valid JSON ({exc})"
            raise ParamsFileError(msg) from None
    missing = [name for name in PARAM_NAMES if name not in arrays]
    if missing:
        held = ", ".join(sorted(arrays)) or "nothing"
        msg = (f"{path} lacks {', '.join(missing)} (it holds {held}); "
               "a TwoLayerNet needs W1, b1, W2 and b2")
        raise ParamsFileError(msg)
    for name in PARAM_NAMES:
        if not np.issubdtype(arrays[name].dtype, np.floating):
            msg = f"{path}: {name} has dtype {arrays[name].dtype}, expected float32 or float64"
            raise ParamsFileError(msg)
        if not np.all(np.isfinite(arrays[name])):
            msg = f"{path}: {name} holds NaN or infinite values"
            raise ParamsFileError(msg)
    try:
        check_param_shapes({name: arrays[name].shape for name in PARAM_NAMES})
    except ValueError as exc:
        raise ParamsFileError(f"{path}: {exc}") from None
    return {name: arrays[name] for name in PARAM_NAMES}, metadata


def load_net(path: str | os.PathLike[str], *, xp: Any = None, device: Any = None,
             dtype: Any = None, input_size: int | None = None) -> Any:
    """A :class:`~xpnet.TwoLayerNet` from a saved parameter file, on any backend and device.

    ``dtype=None`` keeps the file's dtype. ``input_size``, when given, must match W1's rows.
    """
    params, _ = load_params(path)
    if input_size is not None and params["W1"].shape[0] != input_size:
        msg = (f"{path}: W1 takes {params['W1'].shape[0]} inputs but the data has "
               f"{input_size} features per sample")
        raise ParamsFileError(msg)
    if dtype is None:
        dtype = params["W1"].dtype.name
    return TwoLayerNet.from_params(params, xp=xp, device=device, dtype=dtype)
