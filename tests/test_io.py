"""Parameter files: round trips on every backend, no pickle, clear errors, atomic writes."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from xpnet import TwoLayerNet
from xpnet.io import ParamsFileError, atomic_write_bytes, load_net, load_params, save_params


def test_round_trip_on_every_backend(xp, tmp_path, rng):
    net = TwoLayerNet(6, 5, 3, xp=xp.namespace, device=xp.device, dtype="float32", seed=1)
    path = save_params(tmp_path / "params.npz", net.params, {"note": "hello", "iters": 3})
    params, meta = load_params(path)
    assert meta == {"note": "hello", "iters": 3}
    for key, value in net.params.items():
        np.testing.assert_array_equal(params[key], xp.to_numpy(value))
        assert params[key].dtype == np.float32
    again = load_net(path, xp=xp.namespace, device=xp.device)
    for value in again.params.values():
        xp.assert_on(value, "float32")
    x = xp.asarray(rng.normal(size=(4, 6)), "float32")
    xp.assert_close(again.predict(x), xp.to_numpy(net.predict(x)), rtol=0)


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
    with pytest.raises(ParamsFileError, match=r"holds Python objects .* never loads") as info:
        load_params(path)
    assert "allow_pickle" not in str(info.value)  # NumPy's advice to load it unsafely: never


def test_a_file_that_is_no_npz_is_named_without_numpys_pickle_advice(tmp_path):
    """``xpnet evaluate README.md`` quoted NumPy's "load it unsafely using allow_pickle"."""
    text = tmp_path / "README.md"
    text.write_text("# a text file\n")
    with pytest.raises(ParamsFileError, match=r"README.md is not an \.npz archive") as info:
        load_params(text)
    assert "pickle" not in str(info.value)


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


# --------------------------------------------------------------------------- any network (issue 8)


def test_multi_layer_net_round_trip_on_every_backend(xp, tmp_path, rng):
    from xpnet.io import save_net
    from xpnet.nets import MultiLayerNet

    net = MultiLayerNet(6, [5, 4, 3], 2, activation="sigmoid", weight_init_std=0.3,
                        weight_decay_lambda=0.25, xp=xp.namespace, device=xp.device,
                        dtype="float32", seed=2)
    path = save_net(tmp_path / "mlp.npz", net, {"note": "hi"})
    params, meta = load_params(path)
    assert meta["note"] == "hi"
    assert meta["network"] == {"class": "MultiLayerNet", "sizes": [6, 5, 4, 3, 2],
                               "config": {"activation": "sigmoid", "weight_decay_lambda": 0.25}}
    assert list(params) == ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"]
    for key, value in net.params.items():
        np.testing.assert_array_equal(params[key], xp.to_numpy(value))
    again = load_net(path, xp=xp.namespace, device=xp.device)
    assert type(again) is MultiLayerNet
    assert (again.activation, again.weight_decay_lambda) == ("sigmoid", 0.25)
    assert again.hidden_size_list == [5, 4, 3]
    for value in again.params.values():
        xp.assert_on(value, "float32")
    x = xp.asarray(rng.normal(size=(3, 6)), "float32")
    t = xp.asarray([0, 1, 1], "uint8")
    xp.assert_close(again.predict(x), xp.to_numpy(net.predict(x)), rtol=0)
    xp.assert_close(again.loss(x, t), xp.to_numpy(net.loss(x, t)), rtol=0)  # decay kept


def test_save_net_of_a_two_layer_net_loads_as_one(tmp_path):
    from xpnet.io import save_net

    net = TwoLayerNet(4, 3, 2, seed=0)
    again = load_net(save_net(tmp_path / "p.npz", net))
    assert type(again) is TwoLayerNet
    np.testing.assert_array_equal(again.params["W2"], net.params["W2"])


def test_network_files_with_problems_are_named(tmp_path):
    from xpnet.io import save_net
    from xpnet.nets import MultiLayerNet

    net = MultiLayerNet(4, [3, 3], 2, seed=0)
    good = save_net(tmp_path / "good.npz", net)
    params, meta = load_params(good)
    cases = {
        "lacks b3": ({k: v for k, v in params.items() if k != "b3"}, meta),
        "shapes do not fit together": ({**params, "W2": np.zeros((3, 4))}, meta),
        "network of kind 'ResNet'": (params, {"network": {"class": "ResNet"}}),
        "does not say which network": (params, {}),
    }
    for match, (arrays, metadata) in cases.items():
        path = save_params(tmp_path / "bad.npz", arrays, metadata)
        with pytest.raises(ParamsFileError, match=match):
            load_net(path)
