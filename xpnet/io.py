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
from .nets import Network, TwoLayerNet
from .nets.base import names_text

__all__ = ["ParamsFileError", "atomic_write_bytes", "load_net", "load_params", "save_net",
           "save_params", "temp_path_beside", "write_json"]

BUFFER_PREFIX = "buffer."
_META_KEY = "__metadata__"
#: The metadata entry naming the network a file holds: ``{"class": ..., "sizes": [...],
#: "config": {...}}``. Files without it (written before MultiLayerNet) hold a TwoLayerNet.
NETWORK_KEY = "network"


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


def save_net(path: str | os.PathLike[str], net: Network,
             metadata: Mapping[str, Any] | None = None) -> Path:
    """Save a network's parameters with what :func:`load_net` needs to rebuild it: its class,
    sizes and constructor options (``metadata["network"]``), besides ``metadata``."""
    meta = dict(metadata or {})
    # Buffers (batch-norm running statistics) are state, not parameters: saved beside them
    # under a prefix, so that a loaded network predicts as the saved one did.
    buffers = {k: v for k, v in getattr(net, "buffers", dict)().items() if v is not None}
    meta[NETWORK_KEY] = {"class": type(net).__name__, "sizes": list(net.sizes),
                         "config": net.config()}
    if buffers:
        meta[NETWORK_KEY]["buffers"] = sorted(buffers)
    arrays = dict(net.params)
    arrays.update({BUFFER_PREFIX + k: v for k, v in buffers.items()})
    return save_params(path, arrays, meta)


def _network_class(path: Path, metadata: Mapping[str, Any]) -> tuple[type[Network], dict]:
    """The network class and options a file's metadata names (TwoLayerNet when it names none)."""
    entry = metadata.get(NETWORK_KEY)
    if entry is None:
        return TwoLayerNet, {}
    known = Network.registry
    if not isinstance(entry, dict) or entry.get("class") not in known:
        what = entry.get("class") if isinstance(entry, dict) else entry
        msg = (f"{path} holds a network of kind {what!r}, which this xpnet cannot build "
               f"(it knows {', '.join(sorted(known))})")
        raise ParamsFileError(msg)
    config = entry.get("config") or {}
    if not isinstance(config, dict):
        msg = f"{path}: the network options in the metadata are not a dict: {config!r}"
        raise ParamsFileError(msg)
    return known[entry["class"]], config


def load_params(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read ``(params, metadata)`` from a file written by :func:`save_params` or
    :func:`save_net`.

    Loads with ``allow_pickle=False``; checks that the parameters of the network the file names
    (a TwoLayerNet's W1, b1, W2, b2 when it names none) are there, are finite real numbers and
    fit together, and says what is wrong otherwise.
    """
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
    cls, config = _network_class(path, metadata)
    names = cls._param_names(arrays, **config)
    extra = sorted(set(arrays) - set(names))
    if extra and NETWORK_KEY not in metadata:
        msg = (f"{path} holds {', '.join(extra)} besides a TwoLayerNet's W1, b1, W2, b2 but does "
               "not say which network it is; save networks with xpnet.io.save_net")
        raise ParamsFileError(msg)
    missing = [name for name in names if name not in arrays]
    if missing:
        held = ", ".join(sorted(arrays)) or "nothing"
        msg = (f"{path} lacks {', '.join(missing)} (it holds {held}); "
               f"a {cls.__name__} needs {names_text(names)}")
        raise ParamsFileError(msg)
    for name in names:
        if not np.issubdtype(arrays[name].dtype, np.floating):
            msg = f"{path}: {name} has dtype {arrays[name].dtype}, expected float32 or float64"
            raise ParamsFileError(msg)
        if not np.all(np.isfinite(arrays[name])):
            msg = f"{path}: {name} holds NaN or infinite values"
            raise ParamsFileError(msg)
    try:
        cls.__new__(cls)._configure({name: arrays[name] for name in names}, **config)
    except (ValueError, TypeError) as exc:
        raise ParamsFileError(f"{path}: {exc}") from None
    return {name: arrays[name] for name in names}, metadata


def load_net(path: str | os.PathLike[str], *, xp: Any = None, device: Any = None,
             dtype: Any = None, input_size: int | None = None) -> Any:
    """The network saved in ``path`` (a :class:`~xpnet.TwoLayerNet`, a
    :class:`~xpnet.nets.MultiLayerNet` ..., as its metadata says), on any backend and device.

    ``dtype=None`` keeps the file's dtype. ``input_size``, when given, must match W1's rows.
    """
    params, metadata = load_params(path)
    cls, config = _network_class(Path(path), metadata)
    if input_size is not None and params["W1"].ndim == 2 and params["W1"].shape[0] != input_size:
        msg = (f"{path}: W1 takes {params['W1'].shape[0]} inputs but the data has "
               f"{input_size} features per sample")
        raise ParamsFileError(msg)
    if dtype is None:
        dtype = params["W1"].dtype.name
    net = cls.from_params(params, xp=xp, device=device, dtype=dtype, **config)
    if input_size is not None and net.input_size != input_size:  # a conv net: C*H*W values
        msg = (f"{path}: the {cls.__name__} takes {net.input_size} values per sample but the "
               f"data has {input_size}")
        raise ParamsFileError(msg)
    names = metadata.get(NETWORK_KEY, {}).get("buffers") or []
    if names:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
            missing = [k for k in names if BUFFER_PREFIX + k not in data.files]
            if missing or not hasattr(net, "load_buffers"):
                msg = (f"{path}: the file lists buffers {names} but "
                       + (f"lacks {missing}" if missing else f"a {cls.__name__} has none"))
                raise ParamsFileError(msg)
            try:
                net.load_buffers({k: data[BUFFER_PREFIX + k] for k in names})
            except (ValueError, TypeError) as exc:
                raise ParamsFileError(f"{path}: {exc}") from None
    return net
