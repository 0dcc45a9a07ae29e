"""Reading and writing IDX files, the format the MNIST files are stored in.

An IDX file is a 4-byte magic number ``00 00 <dtype> <ndim>``, then ``ndim`` big-endian
``uint32`` dimensions, then the array data in C order.  Only the unsigned-byte dtype
(``0x08``) is supported, which is all MNIST uses: labels are ``0x00000801`` (1-D) and
images ``0x00000803`` (3-D).  Files may be gzip-compressed; that is detected by the gzip
magic bytes ``1f 8b``, not by the file name.

Writing exists so that tests can build small IDX files.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "GZIP_MAGIC",
    "IDX_IMAGES_MAGIC",
    "IDX_LABELS_MAGIC",
    "IDX_UBYTE",
    "IDXError",
    "encode_idx",
    "gunzip",
    "is_gzip",
    "maybe_gunzip",
    "parse_idx",
    "read_idx",
    "write_idx",
]

GZIP_MAGIC = b"\x1f\x8b"
IDX_UBYTE = 0x08
IDX_LABELS_MAGIC = 0x00000801
IDX_IMAGES_MAGIC = 0x00000803


class IDXError(ValueError):
    """An IDX file is malformed, truncated, or not what was expected."""


def is_gzip(data: bytes) -> bool:
    """Return True when ``data`` starts with the gzip magic bytes ``1f 8b``."""
    return data[:2] == GZIP_MAGIC


def gunzip(data: bytes, *, max_size: int | None = None, name: str = "<bytes>") -> bytes:
    """Decompress gzip ``data``; refuse output larger than ``max_size`` bytes (if given)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = stream.read() if max_size is None else stream.read(max_size + 1)
    except (OSError, EOFError) as exc:
        raise IDXError(f"{name}: cannot decompress gzip data: {exc}") from exc
    if max_size is not None and len(out) > max_size:
        raise IDXError(f"{name}: gzip data decompresses to more than {max_size} bytes")
    return out


def maybe_gunzip(data: bytes, *, max_size: int | None = None, name: str = "<bytes>") -> bytes:
    """Decompress ``data`` if it is gzip (by magic bytes), else return it unchanged."""
    return gunzip(data, max_size=max_size, name=name) if is_gzip(data) else data


def _parse_header(data: bytes, name: str) -> tuple[int, tuple[int, ...], int]:
    """Return ``(magic, dims, header_size)`` of IDX ``data``, checking the magic bytes."""
    if len(data) < 4:
        raise IDXError(
            f"{name}: truncated IDX file: expected at least 4 header bytes, got {len(data)}"
        )
    zero, dtype_byte, ndim = struct.unpack(">HBB", data[:4])
    magic = int.from_bytes(data[:4], "big")
    if zero != 0:
        raise IDXError(
            f"{name}: not an IDX file: magic number 0x{magic:08x} does not start with 00 00"
            " (is it an HTML error page or a still-compressed file?)"
        )
    if dtype_byte != IDX_UBYTE:
        raise IDXError(
            f"{name}: unsupported IDX dtype byte 0x{dtype_byte:02x} (magic 0x{magic:08x});"
            f" only 0x{IDX_UBYTE:02x} (unsigned byte) is supported"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IDXError(
            f"{name}: truncated IDX header: expected {header_size} bytes for {ndim}"
            f" dimensions, got {len(data)}"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header_size])
    return magic, dims, header_size


def _check_shape(dims: tuple[int, ...], expect: Sequence[int | None], name: str) -> None:
    """Raise IDXError unless ``dims`` matches ``expect`` (``None`` matches any size)."""
    ok = len(dims) == len(expect) and all(
        e is None or d == e for d, e in zip(dims, expect, strict=True)
    )
    if not ok:
        shown = tuple("any" if e is None else e for e in expect)
        raise IDXError(f"{name}: unexpected IDX dimensions {dims}, expected {shown}")


def parse_idx(
    data: bytes,
    *,
    name: str = "<bytes>",
    expect_magic: int | None = None,
    expect_shape: Sequence[int | None] | None = None,
) -> np.ndarray:
    """Parse raw (not gzipped) IDX ``data`` into a ``uint8`` array without copying.

    ``name`` is used in error messages.  ``expect_magic`` (e.g. ``IDX_IMAGES_MAGIC``) and
    ``expect_shape`` (``None`` entries match any size) are checked if given.  The payload
    must be exactly as long as the product of the dimensions.  The result is a read-only
    view of ``data`` when ``data`` is ``bytes``.
    """
    magic, dims, header_size = _parse_header(data, name)
    if expect_magic is not None and magic != expect_magic:
        raise IDXError(
            f"{name}: wrong IDX magic number 0x{magic:08x}, expected 0x{expect_magic:08x}"
        )
    if expect_shape is not None:
        _check_shape(dims, expect_shape, name)
    expected = int(np.prod(dims, dtype=np.int64))
    actual = len(data) - header_size
    if actual < expected:
        raise IDXError(
            f"{name}: truncated IDX file: dimensions {dims} need {expected} data bytes"
            f" after the {header_size}-byte header, got {actual}"
        )
    if actual > expected:
        raise IDXError(
            f"{name}: IDX file too long: dimensions {dims} need {expected} data bytes"
            f" after the {header_size}-byte header, got {actual}"
        )
    return np.frombuffer(data, dtype=np.uint8, count=expected, offset=header_size).reshape(dims)


def read_idx(
    path: str | os.PathLike[str],
    *,
    expect_magic: int | None = None,
    expect_shape: Sequence[int | None] | None = None,
) -> np.ndarray:
    """Read an IDX file, gzipped or raw, into a ``uint8`` array (see :func:`parse_idx`)."""
    path = Path(path)
    data = maybe_gunzip(path.read_bytes(), name=str(path))
    return parse_idx(data, name=str(path), expect_magic=expect_magic, expect_shape=expect_shape)


def encode_idx(array: np.ndarray) -> bytes:
    """Return the IDX bytes (raw, not gzipped) of a ``uint8`` array of 1 to 255 dimensions."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"only uint8 arrays can be written as IDX, got {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got {array.ndim}")
    header = struct.pack(f">HBB{array.ndim}I", 0, IDX_UBYTE, array.ndim, *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def write_idx(path: str | os.PathLike[str], array: np.ndarray, *, compress: bool = False) -> Path:
    """Write ``array`` to ``path`` as IDX, gzip-compressed if ``compress``; return the path."""
    data = encode_idx(array)
    if compress:
        data = gzip.compress(data, mtime=0)
    path = Path(path)
    path.write_bytes(data)
    return path
