"""``python -m benchmarks.convnet``: the floors time the convolutions the networks really have,
the report carries the floors' ratios, and ``--gpu`` without a device skips both contenders with
their reasons instead of failing."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_every_thread_count_runs_in_one_interleaved_run(tmp_path):
    pytest.importorskip("torch", reason="the scaling table compares with torch-eager")
    pytest.importorskip("threadpoolctl", reason="the contenders' BLAS threads are set with it")
    path = tmp_path / "threads.json"
    root = str(Path(__file__).resolve().parents[2])  # this checkout as the baseline
    assert bench.main(["--quick", "--models", "simple,mlp", "--threads", "1,2", "--no-memory",
                       "--baseline", root, "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    assert report["config"]["threads"] == [1, 2]
    assert "cpu" in report["machine"]
    assert "cores" in report["machine"]
    simple, mlp = report["models"]["simple"], report["models"]["mlp"]
    per_count = {f"{name}@{n}t" for name in ("xpnet-numpy", "xpnet-main", "torch-eager")
                 for n in (1, 2)}
    # The book's code and the floors at the first count only; the MLP has neither.
    assert set(simple["step_ms"]) == per_count | {"book-im2col@1t", "matmul-floor@1t",
                                                  "im2col-floor@1t"}
    assert set(mlp["step_ms"]) == per_count
    for entry in (simple, mlp):
        ms = {k: v["median"] for k, v in entry["step_ms"].items()}
        assert entry["scaling"]["xpnet-numpy@2t/xpnet-numpy@1t"] == pytest.approx(
            ms["xpnet-numpy@2t"] / ms["xpnet-numpy@1t"])
        assert entry["ratios"]["xpnet-numpy@2t/torch-eager@2t"] == pytest.approx(
            ms["xpnet-numpy@2t"] / ms["torch-eager@2t"])
        assert "xpnet-numpy@1t/xpnet-main@1t" in entry["ratios"]


@pytest.mark.parametrize("text", ["0", "1,x", "", "2,-1"])
def test_bad_thread_counts_are_refused(text, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--threads", text])
    assert "must be thread counts >= 1 separated by commas" in capsys.readouterr().err


def test_thread_switch_gives_each_contender_its_counts():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import xpnet
    from benchmarks.harness import ThreadSwitch

    before = xpnet.get_threads()
    switch = ThreadSwitch()
    seen = []

    def make():
        return lambda i: seen.append((xpnet.get_threads(), blas()))

    def blas():
        return {p["num_threads"] for p in threadpoolctl.threadpool_info()
                if p["user_api"] == "blas"}
    try:
        mine = switch.wrap(make, xpnet=2, blas=1)()
        book = switch.wrap(make, blas=2)()
        mine(0)
        book(0)
        mine(1)
    finally:
        xpnet.set_threads(before)
    assert seen[0] == (2, {1})
    assert seen[1][1] <= {2}
    assert seen[2] == (2, {1})


def test_baseline_contenders_at_two_counts_each_run_at_their_own():
    """``--threads 1,2 --baseline``: two contenders share the baseline package's one pool; each
    step runs at its own count, and a loaded torch keeps the count its contenders were given."""
    from benchmarks.harness import train_images

    base = bench.load_baseline(str(Path(__file__).resolve().parents[2]))
    x, t, _ = train_images(True, flatten=False, n_random=8)
    torch = pytest.importorskip("torch", reason="checks torch's count is left alone")
    torch.set_num_threads(1)
    one = bench._baseline_step(1, "simple", x, t, 4, 0, pkg=base)
    two = bench._baseline_step(2, "simple", x, t, 4, 0, pkg=base)
    for i, (step, count) in enumerate([(one, 1), (two, 2), (one, 1), (two, 2)]):
        step(i // 2)  # each contender's steps 0, 1, ...
        assert base.get_threads() == count
        assert torch.get_num_threads() == 1
