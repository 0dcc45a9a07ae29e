"""``python -m benchmarks.convnet``: the floors time the convolutions the networks really have,
the report carries the floors' ratios, and ``--gpu`` without a device skips both contenders with
their reasons instead of failing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import convnet as bench
from xpnet.conv import Convolution
from xpnet.nets import DeepConvNet, SimpleConvNet


@pytest.mark.parametrize(("model", "cls"), [("simple", SimpleConvNet), ("deep", DeepConvNet)])
def test_floor_shapes_are_the_networks_convolutions(model, cls):
    net = cls(seed=0, dtype="float32")
    net.predict(np.zeros((2, 1, 28, 28), dtype=np.float32))
    convs = [layer for layer in net.layers.values() if isinstance(layer, Convolution)]
    seen = [(int(c.x.shape[1]), int(c.W.shape[0]), int(c.x.shape[2]), int(c.W.shape[2]), c.pad,
             c.input_grad) for c in convs]
    assert all(c.stride == 1 and c.x.shape[2] == c.x.shape[3] for c in convs)
    assert bench.conv_shapes(model) == seen


def test_quick_run_reports_the_floors(tmp_path):
    pytest.importorskip("torch", reason="the floors' ratios are to the torch-eager contender")
    path = tmp_path / "convnet.json"
    assert bench.main(["--quick", "--models", "simple", "--no-memory", "--json", str(path)]) == 0
    entry = json.loads(path.read_text())["models"]["simple"]
    assert set(entry["step_ms"]) == {"xpnet-numpy", "book-im2col", "torch-eager",
                                     "matmul-floor", "im2col-floor"}
    floors = entry["floor_ratios"]
    assert set(floors) == {"matmul-floor/torch-eager", "im2col-floor/torch-eager"}
    ms = {k: v["median"] for k, v in entry["step_ms"].items()}
    assert floors["matmul-floor/torch-eager"] == pytest.approx(ms["matmul-floor"]
                                                               / ms["torch-eager"])


def test_gpu_mode_without_a_device_skips_with_reasons(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch", reason="the torch-cuda contender's reason needs torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device: the contenders would run")
    monkeypatch.setattr("xpnet.backend.cuda_status", lambda: (False, "CuPy is not installed"))
    path = tmp_path / "gpu.json"
    assert bench.main(["--gpu", "--quick", "--models", "simple", "--json", str(path)]) == 0
    entry = json.loads(path.read_text())["models"]["simple"]
    assert entry["step_ms"] == {}
    assert entry["skipped"] == {"xpnet-cupy": "RuntimeError: CuPy is not installed",
                                "torch-cuda": "RuntimeError: torch reports no CUDA device"}
