"""What the book's two convolutional networks share: ``conv_param`` checks, the spatial sizes
through convolutions and 2x2 poolings, ``(N, C, H, W)`` input checks, batched accuracy, and the
book's ``save_params``/``load_params`` (our ``.npz`` out; ``.npz`` or the book's ``.pkl`` in).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import int_at_least, window_count
from .._npz import NETWORK_KEY, network_arrays, read_npz, write_npz
from ..backend import Array, asarray, backend_name, dtype_name
from ..book_pickle import load_book_params
from .base import check_size, names_text

__all__ = ["CONV_KEYS", "ConvNetMixin", "check_conv_param", "check_input_dim", "conv_out",
           "expect_shapes", "pool_out"]

CONV_KEYS = ("filter_num", "filter_size", "pad", "stride")


def _nonneg(name: str, value: Any) -> int:
    return int_at_least(value, name, 0)


def check_input_dim(input_dim: Any) -> tuple[int, int, int]:
    """``(C, H, W)`` as a tuple of three positive integers, else ``ValueError``."""
    if isinstance(input_dim, (str, bytes)) or not isinstance(input_dim, Sequence) or len(
            input_dim) != 3:
        msg = (f"input_dim must be (channels, height, width), e.g. (1, 28, 28), "
               f"got {input_dim!r}")
        raise ValueError(msg)
    c, h, w = (check_size(f"input_dim[{i}]", n) for i, n in enumerate(input_dim))
    return c, h, w


def check_conv_param(conv_param: Any, name: str, default: Mapping[str, int],
                     weight_shape: tuple[int, ...] | None = None) -> dict[str, int]:
    """A full ``{'filter_num', 'filter_size', 'pad', 'stride'}`` dict from ``conv_param``.

    Keys left out take ``weight_shape``'s values (``filter_num``, ``filter_size``: when the
    weights already exist) or ``default``'s; given keys must agree with ``weight_shape``.
    """
    if not isinstance(conv_param, Mapping):
        msg = (f"{name} must be a dict with keys {names_text(CONV_KEYS)}, "
               f"got {type(conv_param).__name__} {conv_param!r}")
        raise TypeError(msg)
    unknown = sorted(set(conv_param) - set(CONV_KEYS))
    if unknown:
        msg = f"{name} has unknown keys {unknown}; it takes {names_text(CONV_KEYS)}"
        raise ValueError(msg)
    full = dict(default)
    if weight_shape is not None:
        full["filter_num"], full["filter_size"] = int(weight_shape[0]), int(weight_shape[2])
    full.update(conv_param)
    out = {
        "filter_num": check_size(f"{name}['filter_num']", full["filter_num"]),
        "filter_size": check_size(f"{name}['filter_size']", full["filter_size"]),
        "pad": _nonneg(f"{name}['pad']", full["pad"]),
        "stride": check_size(f"{name}['stride']", full["stride"]),
    }
    if weight_shape is not None:
        want = (out["filter_num"], out["filter_size"], out["filter_size"])
        got = (int(weight_shape[0]), int(weight_shape[2]), int(weight_shape[3]))
        if want != got:
            msg = (f"{name} says {out['filter_num']} filters of {out['filter_size']}x"
                   f"{out['filter_size']} but the weights have shape {tuple(weight_shape)}")
            raise ValueError(msg)
    return out


def conv_out(hw: tuple[int, int], p: Mapping[str, int], name: str) -> tuple[int, int]:
    """Output height and width of a convolution with ``p`` on an ``hw`` input."""
    fs, stride, pad = p["filter_size"], p["stride"], p["pad"]
    return (window_count(hw[0], fs, stride, pad, f"{name} (height)"),
            window_count(hw[1], fs, stride, pad, f"{name} (width)"))


def pool_out(hw: tuple[int, int], name: str) -> tuple[int, int]:
    """Output size of a 2x2 max pooling with stride 2: half of ``hw``, floored (an odd last
    row or column is dropped, as in the book's layers and PyTorch)."""
    return (window_count(hw[0], 2, 2, 0, f"{name} (height)"),
            window_count(hw[1], 2, 2, 0, f"{name} (width)"))


def expect_shapes(host: Mapping[str, Any], expected: Mapping[str, tuple[int, ...]],
                  what: str) -> None:
    """``ValueError`` listing every parameter whose shape differs from ``expected``."""
    wrong = [f"{k} {tuple(host[k].shape)} (expected {v})" for k, v in expected.items()
             if tuple(host[k].shape) != tuple(v)]
    if wrong:
        msg = f"parameter shapes do not fit {what}: {'; '.join(wrong)}"
        raise ValueError(msg)


def _json_like(value: Any) -> Any:
    """``value`` as it reads back from a file's JSON metadata (tuples become lists)."""
    return json.loads(json.dumps(value))


if TYPE_CHECKING:  # the mixin sits before Network in its subclasses' bases
    from .base import Network as _MixinBase
else:
    _MixinBase = object


class ConvNetMixin(_MixinBase):
    """Input checks, batched accuracy and the book's parameter files, for networks that take
    images ``(N, C, H, W)`` with ``(C, H, W) == self.input_dim``.

    Flat input ``(N, C*H*W)`` (MNIST loaded with ``flatten=True``) is reshaped to
    ``(N, C, H, W)`` (a view: row-major pixels, as ``load_mnist(flatten=False)`` gives); any
    other shape is a ``ValueError`` that says which shape the network takes.
    """

    input_dim: tuple[int, int, int]

    @property
    def input_size(self) -> int:
        """Values per sample, ``C * H * W``."""
        return math.prod(self.input_dim)

    def _input(self, x: Array) -> Array:
        x = super()._input(x)  # the array check, dtype and device first: a reshape keeps them
        shape = tuple(x.shape)
        dim = self.input_dim
        if len(shape) == 2 and shape[1] == self.input_size:
            return self.xp.reshape(x, (shape[0], *dim))
        if len(shape) != 4 or shape[1:] != dim:
            msg = (f"{type(self).__name__} takes images of shape (N, {dim[0]}, {dim[1]}, "
                   f"{dim[2]}) (or flat rows (N, {self.input_size})), got shape {shape}; "
                   "load MNIST with load_mnist(flatten=False) or reshape with "
                   f"xp.reshape(x, (-1, {dim[0]}, {dim[1]}, {dim[2]}))")
            raise ValueError(msg)
        return x

    def predict(self, x: Array, train_flg: bool = False) -> Array:
        """Scores ``(N, output_size)`` for images ``(N, C, H, W)``; ``train_flg=True`` applies
        dropout (where the network has any) as in training."""
        return self._forward(self._input(x), bool(train_flg))

    def loss(self, x: Array, t: Array, train_flg: bool = False) -> Array:
        """Mean cross-entropy loss (0-d array) for images ``x`` and labels ``t`` (one-hot rows
        or class indices); ``train_flg`` as for :meth:`predict`."""
        return self._loss(x, t, bool(train_flg))

    def accuracy(self, x: Array, t: Array, batch_size: int = 100) -> float:
        """Fraction of images whose highest score is the true class, evaluated ``batch_size``
        images at a time (the book's default 100): memory stays that of one small batch, and
        the last, partial batch counts too (the book drops it)."""
        batch_size = check_size("batch_size", batch_size)
        return super().accuracy(x, t, batch_size=batch_size)

    @property
    def sizes(self) -> tuple[int, ...]:
        """``(C*H*W, *affine widths)``: values per sample, then the widths of the fully
        connected layers (``hidden_size``, ``output_size``)."""
        widths = [int(self._params[name].shape[1]) for name in self._affine_names]
        return (self.input_size, *widths)

    @property
    def hidden_size(self) -> int:
        """Width of the hidden fully connected layer."""
        return self.sizes[-2]

    _affine_names: tuple[str, ...] = ()

    # ----------------------------------------------------------------- the book's files

    def save_params(self, file_name: str | os.PathLike[str] = "params.npz") -> Path:
        """Save the parameters, with what :func:`xpnet.io.load_net` needs to rebuild the
        network, as ``.npz`` (read back with ``allow_pickle=False``), atomically.

        No pickle is ever written (a pickle can carry code). A name ending in ``.pkl``, as in
        the book's scripts (``save_params("params.pkl")`` after training), still gets the
        ``.npz`` contents under that exact name, with a warning: the book's next script's
        ``load_params("params.pkl")`` then reads the weights just trained (it tells the two
        formats apart by their first bytes), where Python's ``pickle`` would refuse the file.
        """
        path = Path(file_name)
        if path.suffix.lower() in (".pkl", ".pickle"):
            warnings.warn(
                f"save_params writes .npz contents (no pickle) to {str(file_name)!r}: "
                "load_params reads it back, pickle.load does not; name it "
                f"{str(path.with_suffix('.npz'))!r} to say what it holds",
                UserWarning, stacklevel=2)
        return write_npz(path, *network_arrays(self))

    def load_params(self, file_name: str | os.PathLike[str] = "params.pkl") -> None:
        """Replace the parameters with those of ``file_name``: the book's pickle (read by
        :func:`xpnet.book_pickle.load_book_params`, which runs no code from the file) or an
        ``.npz`` written by :meth:`save_params`. Every array must have this network's shape;
        values are cast to its dtype and moved to its device. Nothing changes on an error."""
        path = Path(file_name)
        if not path.is_file():
            msg = f"no parameter file at {path}"
            raise FileNotFoundError(msg)
        with open(path, "rb") as handle:
            is_zip = handle.read(4) == b"PK\x03\x04"  # .npz is a zip; a pickle starts b"\x80"
        if is_zip:
            host, metadata = read_npz(path)
            entry = metadata.get(NETWORK_KEY) or {}
            kind = entry.get("class")
            if kind != type(self).__name__:
                msg = f"{path} holds a {kind or 'TwoLayerNet'}, not a {type(self).__name__}"
                raise ValueError(msg)
            mine = _json_like(self.config())
            theirs = entry.get("config") or {}
            if theirs != mine:
                diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
                msg = (f"{path} holds a {kind} with other options ({', '.join(diff)}: "
                       f"{ {k: theirs.get(k) for k in diff} }, this one has "
                       f"{ {k: mine.get(k) for k in diff} }); build it with "
                       "xpnet.io.load_net(path) instead")
                raise ValueError(msg)
        else:
            host = load_book_params(path)
        names = list(self._params)
        missing = [k for k in names if k not in host]
        extra = sorted(set(host) - set(names))
        if missing or extra:
            msg = (f"{path} holds {', '.join(sorted(host)) or 'nothing'}; a "
                   f"{type(self).__name__} has {', '.join(names)}"
                   + (f" (missing {', '.join(missing)})" if missing else "")
                   + (f" (unknown {', '.join(extra)})" if extra else ""))
            raise ValueError(msg)
        expect_shapes(host, {k: tuple(v.shape) for k, v in self._params.items()},
                      f"this {type(self).__name__} ({path})")
        for name in names:
            if not np.issubdtype(host[name].dtype, np.floating) or not np.all(
                    np.isfinite(host[name])):
                msg = f"{path}: {name} must hold finite floating-point numbers"
                raise ValueError(msg)
        arrays = {k: asarray(np.asarray(host[k]), self.xp, device=self.device, dtype=self.dtype)
                  for k in names}
        self._params.update(arrays)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return (f"{type(self).__name__}({options}, hidden_size={self.hidden_size}, "
                f"output_size={self.output_size}, xp={backend_name(self.xp)!r}, "
                f"device={self.device!r}, dtype={dtype_name(self.dtype)!r})")
