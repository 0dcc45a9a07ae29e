"""Saving and loading parameters and networks (``.npz``, no pickle, :mod:`xpnet._npz`) and
run records (JSON), atomically (:mod:`xpnet._files`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_write_bytes, temp_path_beside, write_json
from ._npz import (
    BUFFER_PREFIX,
    NETWORK_KEY,
    ParamsFileError,
    network_arrays,
    read_npz,
    write_npz,
)
from .nets import Network, TwoLayerNet
from .nets.base import names_text

__all__ = ["ParamsFileError", "atomic_write_bytes", "load_net", "load_params", "save_net",
           "save_params", "temp_path_beside", "write_json"]


def save_params(path: str | os.PathLike[str], params: Mapping[str, Any],
                metadata: Mapping[str, Any] | None = None) -> Path:
    """Save parameters (arrays of any backend) and a JSON-able ``metadata`` dict to ``.npz``."""
    return write_npz(path, params, metadata)


def save_net(path: str | os.PathLike[str], net: Network,
             metadata: Mapping[str, Any] | None = None) -> Path:
    """Save a network's parameters with what :func:`load_net` needs to rebuild it: its class,
    sizes and constructor options (``metadata["network"]``), besides ``metadata``; buffers
    (batch-norm running statistics) beside the parameters."""
    return write_npz(path, *network_arrays(net, metadata))


def _network_class(path: Path, metadata: Mapping[str, Any]
                   ) -> tuple[type[Network], dict[str, Any]]:
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
    arrays, metadata = read_npz(path)
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
