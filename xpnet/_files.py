"""Files written atomically: readers (and concurrent writers) see the old file or the new one,
never half of one. The bottom of the package: no xpnet import."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_bytes", "temp_path_beside", "write_json"]


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
