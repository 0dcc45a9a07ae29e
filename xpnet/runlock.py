"""The lock of a run directory: one training run writes there at a time.

:class:`RunLock` holds ``flock`` on the folder's lock file (:data:`LOCK_NAME`), which names the
process that holds it (pid, host, command, start time); a second run is refused with
:class:`RunInUseError`, which carries that record. The lock is re-entrant within a process and
dies with its process, even a killed one. Where there is no ``flock``, an exclusive file whose
process is checked for life stands in.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["LOCK_NAME", "RunInUseError", "RunLock", "describe_holder", "process_alive"]

#: The lock file of a run directory in use (see :class:`RunLock`).
LOCK_NAME = ".xpnet-run.lock"


class RunInUseError(RuntimeError):
    """Another process is running in this run directory (it holds its :class:`RunLock`).

    ``holder`` is what that process wrote into the lock file (``pid``, ``host``, ``command``,
    ``started``; empty if it had not written it yet)."""

    def __init__(self, message: str, folder: Path, holder: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.folder = folder
        self.holder = dict(holder)


# Locks this process holds: real path of the lock file -> [file descriptor, depth].
_HELD: dict[str, list[int]] = {}
_HELD_GUARD = threading.Lock()


def describe_holder(holder: Mapping[str, Any]) -> str:
    """``"pid 123 on host, started ..., running `xpnet train ...`"`` from a lock file's record."""
    if not holder.get("pid"):
        return "a process that is starting"
    text = f"pid {holder['pid']}"
    if holder.get("host"):
        text += f" on {holder['host']}"
    if holder.get("started"):
        text += f", started {holder['started']}"
    if holder.get("command"):
        text += f", running `{holder['command']}`"
    return text


class RunLock:
    """Exclusive use of a run directory (or a checkpoint's folder) by one process at a time.

    The lock is the file :data:`LOCK_NAME` in ``folder``, locked with ``flock`` (POSIX; where
    there is none, created exclusively and held while its process lives) and naming its holder:
    process id, host, command line and start time. A second process asking for it gets
    :class:`RunInUseError` naming the first. A process that dies (even by SIGKILL) releases it:
    the operating system drops the ``flock``, and a lock file left behind by a dead process is
    taken over. Re-entrant within a process (``xpnet train`` holds it around the loop, which
    takes it again for its checkpoints).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._key: str | None = None

    def acquire(self) -> RunLock:
        """Take the lock (the folder must exist); :class:`RunInUseError` if another process
        holds it."""
        key = os.path.realpath(self.path)
        with _HELD_GUARD:
            if key in _HELD:
                _HELD[key][1] += 1
                self._key = key
                return self
            fd = _take(self.path)
            _HELD[key] = [fd, 1]
            self._key = key
        return self

    def release(self) -> None:
        """Give the lock back (the lock file goes when the outermost holder lets go)."""
        if self._key is None:
            return
        with _HELD_GUARD:
            key, self._key = self._key, None
            entry = _HELD.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _HELD[key]
            try:
                os.unlink(key)  # still locked by us: nobody else can be using this file
            except OSError:  # Windows removes no open file: close first
                os.close(entry[0])
                with contextlib.suppress(OSError):
                    os.unlink(key)
            else:
                os.close(entry[0])  # drops the flock

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._key is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder_record() -> bytes:

    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "command": " ".join([os.path.basename(sys.argv[0] or "python"), *sys.argv[1:]]),
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    return json.dumps(record).encode()


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_bytes() or b"{}")
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _in_use(path: Path) -> RunInUseError:
    holder = _read_holder(path)
    msg = (f"{path.parent} is in use by another run ({describe_holder(holder)}); wait for it to "
           "finish or write to another folder")
    return RunInUseError(msg, path.parent, holder)


def _take(path: Path) -> int:
    """An open descriptor of ``path`` that this process holds the lock of."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): an exclusively created file, checked for life
        return _take_exclusive(path)
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise _in_use(path) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # its holder removed the file as we opened it: take the new one
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_record(), 0)
        return fd
    raise _in_use(path)


def _take_exclusive(path: Path) -> int:
    for _ in range(100):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            holder = _read_holder(path)
            pid = holder.get("pid")
            if isinstance(pid, int) and not process_alive(pid):
                with contextlib.suppress(OSError):
                    path.unlink()  # left behind by a process that is gone
                continue
            raise _in_use(path) from None
        os.write(fd, _holder_record())
        return fd
    raise _in_use(path)


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
