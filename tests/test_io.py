"""Parameter files: round trips on every backend, no pickle, clear errors, atomic writes."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from xpnet import TwoLayerNet
from xpnet.io import ParamsFileError, atomic_write_bytes, load_net, load_params, save_params


def test_round_trip_on_every_backend(be, tmp_path, rng):
    net = TwoLayerNet(6, 5, 3, xp=be.xp, device=be.device, dtype="float32", seed=1)
    path = save_params(tmp_path / "params.npz", net.params, {"note": "hello", "iters": 3})
    params, meta = load_params(path)
    assert meta == {"note": "hello", "iters": 3}
    for key, value in net.params.items():
        np.testing.assert_array_equal(params[key], be.to_numpy(value))
        assert params[key].dtype == np.float32
    again = load_net(path, xp=be.xp, device=be.device)
    for value in again.params.values():
        be.assert_on(value, "float32")
    x = be.asarray(rng.normal(size=(4, 6)), "float32")
    be.assert_close(again.predict(x), be.to_numpy(net.predict(x)), rtol=0)


def test_load_net_can_change_backend_and_dtype(tmp_path):
    net = TwoLayerNet(6, 5, 3, dtype="float32", seed=1)
    path = save_params(tmp_path / "p.npz", net.params)
    wide = load_net(path, dtype="float64")
    assert wide.params["W1"].dtype == np.float64
    np.testing.assert_allclose(wide.params["W1"], net.params["W1"], rtol=0)


def test_files_never_hold_pickles(tmp_path):
    net = TwoLayerNet(4, 3, 2, seed=0)
    path = save_params(tmp_path / "p.npz", net.params, {"a": [1, 2]})
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            with archive.open(name) as member:
                header = member.read(128)
            assert b"'descr': '|O'" not in header, name


def test_pickled_object_arrays_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    obj = np.empty(1, dtype=object)
    obj[0] = {"x": 1}
    np.savez(path, W1=obj, b1=np.zeros(3), W2=np.zeros((3, 2)), b2=np.zeros(2))
    with pytest.raises(ParamsFileError, match="not a readable xpnet parameter file"):
        load_params(path)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"W1": np.zeros((4, 3)), "b1": np.zeros(3), "W2": np.zeros((3, 2))}, "lacks b2"),
        ({"W1": np.zeros((4, 3)), "b1": np.zeros(5), "W2": np.zeros((3, 2)),
          "b2": np.zeros(2)}, "shapes do not fit together"),
        ({"W1": np.zeros((4, 3)), "b1": np.zeros(3), "W2": np.zeros((4, 2)),
          "b2": np.zeros(2)}, "shapes do not fit together"),
        ({"W1": np.zeros((4, 3), dtype=np.int32), "b1": np.zeros(3), "W2": np.zeros((3, 2)),
          "b2": np.zeros(2)}, "W1 has dtype int32"),
        ({"W1": np.full((4, 3), np.nan), "b1": np.zeros(3), "W2": np.zeros((3, 2)),
          "b2": np.zeros(2)}, "W1 holds NaN"),
    ],
)
def test_bad_contents_are_named(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ParamsFileError, match=match):
        load_params(path)


def test_corrupt_and_missing_files(tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(ParamsFileError, match="not a readable xpnet parameter file"):
        load_params(corrupt)
    with pytest.raises(ParamsFileError, match="no parameter file"):
        load_params(tmp_path / "missing.npz")


def test_input_size_mismatch_is_named(tmp_path):
    path = save_params(tmp_path / "p.npz", TwoLayerNet(4, 3, 2, seed=0).params)
    with pytest.raises(ParamsFileError, match="W1 takes 4 inputs but the data has 784"):
        load_net(path, input_size=784)


def test_atomic_write_replaces_whole_and_leaves_no_temp_files(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"new contents"

    import xpnet.io as io_module

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(io_module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"half")
    assert target.read_bytes() == b"new contents"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]
