"""Checkpoints of a training run: save, load, validate, restore (no pickle).

A checkpoint is one ``.npz`` file (``allow_pickle=False``) written atomically (temporary file,
fsync, ``os.replace``): a crash at any moment leaves the previous checkpoint or the new one. It
holds the parameters (``param.W1`` ...), batch-norm running statistics (``buffer.running_mean1``
...), the optimizer's state arrays (``optim.m.W1`` ...), the permutation the batches are being
drawn from (``order``) and one JSON entry (``__checkpoint__``) with the rest: the network's kind,
sizes, options and dtype, the optimizer's name, hyper-parameters and step count, the state of the
batch-order generator (NumPy's ``bit_generator.state``) and of the dropout generator, the
iteration, the history so far, the run's settings and the xpnet version.

:func:`xpnet.train` writes one at every evaluation and on Ctrl-C (``checkpoint=PATH``) and
continues from one (``resume_from=load_checkpoint(PATH)``): the run then takes exactly the steps
the uninterrupted run would have taken.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import threading
import time
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .backend import asarray, dtype_name, random_family, to_numpy
from .rng import random_generator
from .runlock import LOCK_NAME, RunInUseError, RunLock, describe_holder, process_alive

# The run lock lives in xpnet.runlock; these names stay importable from here.
__all__ = ["CHECKPOINT_NAME", "LOCK_NAME", "Checkpoint", "CheckpointError", "CheckpointWarning",
           "Checkpointer", "RunInUseError", "RunLock", "describe_holder", "load_checkpoint",
           "save_checkpoint"]

#: The checkpoint's file name in a run directory.
CHECKPOINT_NAME = "checkpoint.npz"
FORMAT = "xpnet-checkpoint"
FORMAT_VERSION = 1
_META_KEY = "__checkpoint__"
# Settings a resumed run must share with the checkpoint (``iters`` may grow).
_SAME = ("batch_size", "seed", "eval_every", "eval_samples", "train_size", "test_size", "lr",
         "optimizer", "model", "sizes")


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not fit the run it should continue."""


class CheckpointWarning(UserWarning):
    """A checkpoint could not be written, or its dropout generator could not be carried over;
    training goes on."""


def _xpnet_version() -> str:
    from ._version import __version__

    return __version__


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _outside_xpnet() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` in the caller that names the first frame
    outside xpnet: the user's ``build_net()`` or ``train()`` call, however deep inside xpnet
    the warning is raised."""
    level, frame = 1, sys._getframe(1)  # the caller, who calls warnings.warn: level 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists), for comparisons."""
    return json.loads(json.dumps(value, default=str))


def _dropout_layers(net: Any) -> list[Any]:
    from .layers import Dropout

    layers = getattr(net, "layers", None) or {}
    return [layer for layer in layers.values() if isinstance(layer, Dropout)]


def _dropout_state(net: Any) -> dict[str, Any] | None:
    """``{"groups": [...], "states": [...]}``: dropout layers sharing a generator share a group."""
    layers = _dropout_layers(net)
    if not layers:
        return None
    seen: dict[int, int] = {}
    states: list[Any] = []
    groups: list[int | None] = []
    for layer in layers:
        if layer.rng is None:  # a layer of its own that has not drawn yet
            groups.append(None)
            continue
        if id(layer.rng) not in seen:
            seen[id(layer.rng)] = len(states)
            states.append(layer.rng.get_state())
        groups.append(seen[id(layer.rng)])
    return {"groups": groups, "states": states}


def save_checkpoint(path: str | os.PathLike[str], *, net: Any, optimizer: Any, history: Any,
                    rng: np.random.Generator, order: np.ndarray | None, order_used: int,
                    settings: Mapping[str, Any] | None = None) -> Path:
    """Write the state of a run to ``path`` atomically (see the module docstring).

    ``order`` is the permutation the batches come from and ``order_used`` how many batches of
    it were taken (``None`` when the next step starts a new one).
    """
    from ._files import atomic_write_bytes

    arrays: dict[str, np.ndarray] = {}
    for name, value in net.params.items():
        arrays[f"param.{name}"] = np.ascontiguousarray(to_numpy(value))
    buffers = {k: v for k, v in getattr(net, "buffers", dict)().items() if v is not None}
    for name, value in buffers.items():
        arrays[f"buffer.{name}"] = np.ascontiguousarray(to_numpy(value))
    opt_meta: dict[str, Any] = {}
    for key, value in optimizer.state_dict().items():
        if isinstance(value, Mapping):
            opt_meta[key] = {"arrays": list(value)}
            for k, a in value.items():
                arrays[f"optim.{key}.{k}"] = np.ascontiguousarray(a)
        else:
            opt_meta[key] = value
    if order is not None:
        # int32 where it fits: half the bytes (60000 MNIST indices: 240 kB instead of 480)
        small = order.shape[0] < 2**31
        arrays["order"] = np.asarray(order, dtype=np.int32 if small else np.int64)
    first = next(iter(net.params.values()))
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "xpnet": _xpnet_version(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "network": {"class": type(net).__name__, "sizes": list(getattr(net, "sizes", ())),
                    "config": net.config() if hasattr(net, "config") else {},
                    "dtype": dtype_name(first.dtype), "params": list(net.params),
                    "buffers": sorted(buffers)},
        "optimizer": opt_meta,
        "dropout": _dropout_state(net),
        "loop": {"iteration": int(history.iterations), "rng": rng.bit_generator.state,
                 "order_used": None if order is None else int(order_used)},
        "settings": dict(settings or {}),
        "history": history.to_dict(),
    }
    arrays[_META_KEY] = np.asarray(json.dumps(meta, default=str))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub: allow_pickle
    return atomic_write_bytes(path, buffer.getvalue())


@dataclass
class Checkpoint:
    """A loaded, validated checkpoint (host data only). Rebuild its network with
    :meth:`build_net` and optimizer with :meth:`build_optimizer`, or hand it to
    :func:`xpnet.train` as ``resume_from`` with a matching network and optimizer."""

    path: Path
    meta: dict[str, Any]
    params: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]
    optimizer_state: dict[str, Any]
    order: np.ndarray | None
    # Dropout generators made in place of another library's, by (id(network), group).
    _made_generators: dict[tuple[int, int], Any] = field(default_factory=dict, repr=False,
                                                          compare=False)

    @property
    def iteration(self) -> int:
        """Steps taken when the checkpoint was written."""
        return int(self.meta["loop"]["iteration"])

    @property
    def config(self) -> dict[str, Any]:
        """The run's settings (``iters``, ``batch_size``, ``seed``, ``eval_every`` ...)."""
        return {**self.meta["history"]["config"], **self.meta.get("settings", {})}

    def build_net(self, *, xp: Any = None, device: Any = None, dtype: Any = None) -> Any:
        """The checkpoint's network, with its parameters, buffers and dropout generator, on
        backend ``xp`` and ``device`` (any: a CPU run may continue elsewhere), in ``dtype``
        (default the checkpoint's; another one is for evaluating, not for resuming)."""
        from .nets import Network

        info = self.meta["network"]
        cls = Network.registry[info["class"]]
        net = cls.from_params(self.params, xp=xp, device=device,
                              dtype=info["dtype"] if dtype is None else dtype, **info["config"])
        self._restore_net(net)
        return net

    def build_optimizer(self) -> Any:
        """The checkpoint's optimizer with its state (moved to the parameters on first use)."""
        from .optim import get_optimizer

        state = self.optimizer_state
        cls_hypers = {k: v for k, v in state.items()
                      if isinstance(v, float) and k != "iter"}
        opt = get_optimizer(state["name"], **cls_hypers)
        opt.load_state_dict(state)
        return opt

    # -- restoring into a given run ----------------------------------------------------------

    def _check_net(self, net: Any) -> None:
        info = self.meta["network"]
        have = {"class": type(net).__name__, "sizes": _plain(list(getattr(net, "sizes", ()))),
                "config": _plain(net.config() if hasattr(net, "config") else {})}
        want = {"class": info["class"], "sizes": info["sizes"], "config": _plain(info["config"])}
        if have != want:
            msg = (f"{self.path} holds a {want['class']} of sizes {want['sizes']} "
                   f"({want['config']}) but the network to continue is a {have['class']} of "
                   f"sizes {have['sizes']} ({have['config']}); resume with the same network")
            raise CheckpointError(msg)
        first = next(iter(net.params.values()))
        if dtype_name(first.dtype) != info["dtype"]:
            msg = (f"{self.path} holds {info['dtype']} parameters but the network is "
                   f"{dtype_name(first.dtype)}; resume with a {info['dtype']} network")
            raise CheckpointError(msg)

    def _restore_net(self, net: Any) -> None:
        xp, device = net.xp, net.device
        for name, value in self.params.items():
            net.params[name] = asarray(value, xp, device=device, dtype=net.params[name].dtype)
        if self.buffers:
            net.load_buffers(self.buffers)
        self._restore_dropout(net)

    def _restore_dropout(self, net: Any) -> None:
        saved = self.meta.get("dropout")
        layers = _dropout_layers(net)
        if saved is None or not layers:
            return
        if len(saved["groups"]) != len(layers):
            msg = (f"{self.path} holds the state of {len(saved['groups'])} dropout layers, the "
                   f"network has {len(layers)}")
            raise CheckpointError(msg)
        # Generators this checkpoint made in place of another library's: build_net() and then
        # restore() (the command does both) hand over the same ones, with one warning.
        made = self._made_generators
        rngs: dict[int, Any] = {}
        for layer, group in zip(layers, saved["groups"], strict=True):
            if group is None:
                continue
            if group not in rngs and layer.rng is not None and \
                    made.get((id(net), group)) is layer.rng:
                rngs[group] = layer.rng
            if group not in rngs:
                state = saved["states"][group]
                rng = layer.rng or random_generator(net.xp, net.device, 0)
                if state.get("family", random_family(state["backend"])) == rng.family:
                    rng.set_state({"backend": rng.backend, "state": state["state"]})
                else:
                    # Another library's generator: its state means nothing here. Draw on from a
                    # generator seeded by the run's seed and the iteration (reproducible, but
                    # other masks than the uninterrupted run's).
                    seed = np.random.SeedSequence(
                        [abs(int(self.config.get("seed") or 0)), self.iteration, group])
                    rng = random_generator(net.xp, net.device,
                                           int(seed.generate_state(1, np.uint32)[0]))
                    made[(id(net), group)] = rng
                    warnings.warn(
                        f"the checkpoint's dropout generator is of {state['backend']!r}; on "
                        f"{rng.backend!r} the dropout masks continue from a new generator",
                        CheckpointWarning, stacklevel=_outside_xpnet())
                rngs[group] = rng
            layer.rng = rngs[group]

    def restore(self, net: Any, optimizer: Any, history: Any,
                rng: np.random.Generator) -> tuple[int, np.ndarray | None, int]:
        """Put the checkpoint's state into a run that :func:`xpnet.train` has set up:
        the network and optimizer (which must match), ``history`` (the run so far; the new
        settings in ``history.config`` must agree with the saved ones) and the batch-order
        generator ``rng``. Returns ``(next iteration, permutation in use or None, iteration
        it was drawn at)``."""
        self._check_net(net)
        saved = self.meta["history"]["config"]
        conflicts = [f"{k} {history.config.get(k)!r} (the checkpoint has {saved.get(k)!r})"
                     for k in _SAME if _plain(history.config.get(k)) != _plain(saved.get(k))]
        if conflicts:
            msg = (f"cannot continue {self.path} with other settings: {'; '.join(conflicts)}; "
                   "resume with the checkpoint's settings")
            raise CheckpointError(msg)
        if history.config["iters"] < self.iteration:
            msg = (f"{self.path} is at iteration {self.iteration}, past the "
                   f"{history.config['iters']} iterations asked for")
            raise CheckpointError(msg)
        if type(optimizer).__name__.lower() != str(self.optimizer_state["name"]).lower() and \
                getattr(optimizer, "name", None) != self.optimizer_state["name"]:
            msg = (f"{self.path} holds the state of optimizer {self.optimizer_state['name']!r}, "
                   f"not {getattr(optimizer, 'name', type(optimizer).__name__)!r}")
            raise CheckpointError(msg)
        try:
            optimizer.load_state_dict(self.optimizer_state)
            self._restore_net(net)
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(f"{self.path}: {exc}") from None
        rng.bit_generator.state = self.meta["loop"]["rng"]
        old = self.meta["history"]
        history.continue_from(old)  # the run's History rebuilds its own records
        history.iterations = self.iteration
        history.config["resumed"] = [*old["config"].get("resumed", []), {
            "iteration": self.iteration, "backend": history.backend, "device": history.device,
            "xpnet": _xpnet_version()}]
        used = self.meta["loop"]["order_used"]
        if self.order is None or used is None:
            return self.iteration, None, self.iteration
        return self.iteration, self.order, self.iteration - int(used)


def _open(path: Path) -> dict[str, np.ndarray]:
    try:
        # Our own handle (np.load(path) leaks it on a corrupt archive); reading every entry
        # checks each one's CRC, so a damaged file fails here and not halfway through a resume.
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError,
            NotImplementedError) as exc:
        msg = (f"{path} is corrupt or truncated ({type(exc).__name__}: {exc}); resume from an "
               "intact checkpoint or start the run again")
        raise CheckpointError(msg) from None
    except Exception as exc:  # zlib.error and friends: any damage is the file's
        msg = f"{path} is corrupt or truncated ({type(exc).__name__}: {exc})"
        raise CheckpointError(msg) from None


def _entry(meta: Mapping[str, Any], path: Path, *keys: str) -> Any:
    value: Any = meta
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            msg = f"{path} lacks the entry {'.'.join(keys)}; it is not a complete xpnet checkpoint"
            raise CheckpointError(msg)
        value = value[key]
    return value


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and validate a checkpoint: a file, or a run directory holding ``checkpoint.npz``.

    Raises
    ------
    CheckpointError
        No checkpoint there; a corrupt or truncated file; missing entries; another xpnet major
        version; a network this xpnet cannot build or parameters that do not fit it.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        msg = f"no checkpoint at {path}: the run wrote none yet (it writes one at each evaluation)"
        raise CheckpointError(msg)
    arrays = _open(path)
    meta = _metadata(path, arrays)
    info = meta["network"]
    params = _params(path, arrays, info)
    buffers = {name: _array(path, arrays, f"buffer.{name}") for name in info["buffers"]}
    state: dict[str, Any] = {}
    for key, value in meta["optimizer"].items():
        if isinstance(value, Mapping) and "arrays" in value:
            state[key] = {k: _array(path, arrays, f"optim.{key}.{k}") for k in value["arrays"]}
        else:
            state[key] = value
    order = _order(path, arrays, meta)
    _check_loop(path, meta)
    return Checkpoint(path=path, meta=meta, params=params, buffers=buffers,
                      optimizer_state=state, order=order)


def _metadata(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The JSON entry (taken out of ``arrays``): an xpnet checkpoint of this format and major
    version, with every entry the loader reads."""
    if _META_KEY not in arrays:
        msg = f"{path} lacks the entry {_META_KEY}; it is not an xpnet checkpoint"
        raise CheckpointError(msg)
    try:
        meta = json.loads(str(arrays.pop(_META_KEY)))
    except (json.JSONDecodeError, UnicodeError) as exc:
        raise CheckpointError(f"{path}: the {_META_KEY} entry is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an xpnet checkpoint (no format marker)")
    if meta.get("format_version") != FORMAT_VERSION:
        msg = (f"{path} has checkpoint format {meta.get('format_version')!r}; this xpnet reads "
               f"format {FORMAT_VERSION}")
        raise CheckpointError(msg)
    version = str(_entry(meta, path, "xpnet"))
    mine = _xpnet_version()
    if version.split(".")[0] != mine.split(".")[0]:
        msg = (f"{path} was written by xpnet {version}; this is xpnet {mine}, another major "
               f"version: resume with xpnet {version.split('.')[0]}.x")
        raise CheckpointError(msg)
    for keys in (("network", "class"), ("network", "config"), ("network", "dtype"),
                 ("network", "params"), ("network", "buffers"), ("optimizer", "name"),
                 ("loop", "iteration"), ("loop", "rng"), ("loop", "order_used"),
                 ("history", "config"), ("history", "loss"), ("history", "epochs"),
                 ("dropout",)):
        _entry(meta, path, *keys)
    return meta


def _order(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]
           ) -> np.ndarray | None:
    """The permutation the batches are drawn from (int64, as ``rng.permutation`` gives it),
    checked against how much of it the run used."""
    order = arrays.get("order")
    if order is not None and order.dtype.kind not in "iu":
        raise CheckpointError(f"{path}: the batch order entry holds {order.dtype}, not integers")
    if order is not None:
        order = order.astype(np.int64)
    used = meta["loop"]["order_used"]
    if used is not None and (order is None or order.ndim != 1 or not
                             0 <= int(used) <= order.shape[0]):
        raise CheckpointError(f"{path}: the batch order entry is missing or does not fit")
    return order


def _check_loop(path: Path, meta: Mapping[str, Any]) -> None:
    """The batch-order generator's state loads, and the history has one loss per step."""
    try:
        rng = np.random.default_rng()
        rng.bit_generator.state = meta["loop"]["rng"]
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: the batch-order generator state is invalid ({exc})") \
            from None
    if len(meta["history"]["loss"]) != int(meta["loop"]["iteration"]):
        msg = (f"{path}: the history holds {len(meta['history']['loss'])} losses for "
               f"{meta['loop']['iteration']} iterations")
        raise CheckpointError(msg)


def _array(path: Path, arrays: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    if key not in arrays:
        msg = f"{path} lacks the entry {key}; it is not a complete xpnet checkpoint"
        raise CheckpointError(msg)
    value = arrays[key]
    if value.dtype.kind != "f" or not np.all(np.isfinite(value)):
        raise CheckpointError(f"{path}: {key} is not an array of finite floats")
    return value


def _params(path: Path, arrays: Mapping[str, np.ndarray],
            info: Mapping[str, Any]) -> dict[str, np.ndarray]:
    from .nets import Network

    cls = Network.registry.get(info["class"])
    if cls is None or not isinstance(info["config"], Mapping):
        msg = (f"{path} holds a network of kind {info['class']!r}, which this xpnet cannot "
               f"build (it knows {', '.join(sorted(Network.registry))})")
        raise CheckpointError(msg)
    params = {name: _array(path, arrays, f"param.{name}") for name in info["params"]}
    try:
        names = cls._param_names(params, **info["config"])
        missing = [n for n in names if n not in params]
        if missing:
            raise CheckpointError(f"{path} lacks the parameters {', '.join(missing)}")
        cls.__new__(cls)._configure({n: params[n] for n in names}, **info["config"])
    except (ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path}: the parameters do not fit a {info['class']}: {exc}") \
            from None
    return params

class Checkpointer:
    """What :func:`xpnet.train` calls: ``save`` at each evaluation and on Ctrl-C, and,
    as a context manager around the loop, a Ctrl-C (SIGINT) handler that turns the signal into
    ``KeyboardInterrupt`` only at :meth:`poll` (the top of a step), so the state saved on
    Ctrl-C is never half a step. With ``path=None`` every method does nothing.

    Made, it takes the :class:`RunLock` of the checkpoint's folder (:class:`RunInUseError` if
    another process writes there); leaving the context manager, or :meth:`release`, gives it
    back."""

    def __init__(self, path: str | os.PathLike[str] | None, *, net: Any, optimizer: Any,
                 history: Any, rng: np.random.Generator, batches_per_perm: int,
                 started: float, settings: Mapping[str, Any] | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.net, self.optimizer, self.history, self.rng = net, optimizer, history, rng
        self.batches_per_perm = batches_per_perm
        self.settings = dict(settings or {})
        self.started = started  # perf_counter() at the run's start (earlier when resumed)
        self.seconds = 0.0  # time spent writing checkpoints
        self.written = 0
        self._interrupted = False
        self._previous: Any = None
        self._warned = False
        #: The iteration of the last checkpoint written (``None``: none yet).
        self.iteration: int | None = None
        self._lock: RunLock | None = None
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._lock = RunLock(self.path.parent).acquire()
            except OSError:
                pass  # a folder that cannot be written: save() says so and training goes on
            self._remove_stale_temporaries()

    def release(self) -> None:
        """Give the run lock back (done on leaving the context manager)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _remove_stale_temporaries(self) -> None:
        """Temporary files of writers killed mid-write (``.checkpoint.npz.<pid>.<hex>.tmp``)."""
        if self.path is None:
            return
        folder = self.path.parent
        if not folder.is_dir():
            return
        for tmp in folder.glob(f".{self.path.name}.*.tmp"):
            pid = tmp.name[len(self.path.name) + 2:].split(".")[0]
            if pid.isdigit() and not process_alive(int(pid)):
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def save(self, order: np.ndarray | None, perm_start: int, seconds: float) -> None:
        """Write the run's state: ``order`` is the host permutation drawn at iteration
        ``perm_start``, ``seconds`` the training time so far."""
        if self.path is None:
            return
        used = self.history.iterations - perm_start
        if order is not None and used >= self.batches_per_perm:
            order = None  # used up: the next step draws a new one
        began = time.perf_counter()
        self.history.train_time = seconds
        self.history.wall_time = began - self.started
        try:
            save_checkpoint(self.path, net=self.net, optimizer=self.optimizer,
                            history=self.history, rng=self.rng, order=order, order_used=used,
                            settings=self.settings)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                warnings.warn(f"cannot write the checkpoint {self.path} ({exc}); training goes "
                              "on, and tries again at the next evaluation",
                              CheckpointWarning, stacklevel=_outside_xpnet())
            return
        self.written += 1
        self.iteration = int(self.history.iterations)
        self.seconds += time.perf_counter() - began

    def poll(self) -> None:
        """Raise the ``KeyboardInterrupt`` of a Ctrl-C that came during the last step."""
        if self._interrupted:
            self._interrupted = False
            raise KeyboardInterrupt

    def _handler(self, signum: int, frame: Any) -> None:
        self._interrupted = True

    def __enter__(self) -> Checkpointer:
        if (self.path is not None and threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        self.release()
