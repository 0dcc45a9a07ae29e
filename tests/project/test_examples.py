"""The examples/ scripts run as they are (the ones that need real MNIST: test_mnist_run.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import book_path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str, cwd: Path | None = None) -> str:
    env = dict(os.environ, PYTHONWARNINGS="error")
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                            text=True, timeout=600, env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def printed(stdout: str) -> dict[str, float]:
    return {k: float(v) for k, v in (line.split(":") for line in stdout.strip().splitlines())}


def test_buy_apple_prints_the_books_numbers():
    values = printed(run_example("buy_apple.py"))
    assert values == pytest.approx({"price": 220, "dApple": 2.2, "dApple_num": 110,
                                    "dTax": 200})


def test_buy_apple_orange_prints_the_books_numbers():
    values = printed(run_example("buy_apple_orange.py"))
    assert values == pytest.approx({"price": 715, "dApple": 2.2, "dApple_num": 110,
                                    "dOrange": 3.3, "dOrange_num": 165, "dTax": 650})


def test_train_on_gpu_runs_or_says_why_not():
    from xpnet.backend import cuda_available

    out = run_example("train_on_gpu.py") if not cuda_available() else None
    if out is None:
        pytest.skip("a CUDA device is usable here: the full GPU run belongs to the GPU check")
    assert out.startswith("skipped: no usable CUDA device")


def test_train_convnet_on_gpu_runs_or_says_why_not():
    from xpnet.backend import cuda_available

    if cuda_available():
        pytest.skip("a CUDA device is usable here: the full GPU run belongs to the GPU check")
    out = run_example("train_convnet_on_gpu.py", "--epochs", "1")
    assert out.startswith("skipped: no usable CUDA device")
    assert len(out.strip().splitlines()) == 1


def test_visualize_filter_draws_saved_weights(tmp_path):
    """Filters of a saved SimpleConvNet (no MNIST needed): the example reads the .npz back and
    reports how far the weights moved from the seed-0 initial ones it draws itself."""
    pytest.importorskip("matplotlib")
    from xpnet import SimpleConvNet

    net = SimpleConvNet(seed=1)  # another seed: W1 differs from the example's seed-0 start
    params = net.save_params(tmp_path / "net.npz")
    out_png = tmp_path / "filters.png"
    out = run_example("visualize_filter.py", "--params", str(params), "--out", str(out_png))
    # Two independent N(0, 0.01^2) draws: |a - b| / |b| is about sqrt(2).
    change = float(out.split("relative change from the initial weights")[1].split()[0])
    assert 1.2 < change < 1.6
    assert out_png.stat().st_size > 5_000


def test_visualize_filter_reads_the_books_pickle(tmp_path):
    params = book_path("ch07/params.pkl")  # the book's trained SimpleConvNet weights
    pytest.importorskip("matplotlib")
    out_png = tmp_path / "filters.png"
    out = run_example("visualize_filter.py", "--params", str(params), "--out", str(out_png))
    assert "first-layer filters: 30" in out
    change = float(out.split("relative change from the initial weights")[1].split()[0])
    assert change > 3  # trained filters are far larger than the std-0.01 start
    assert out_png.stat().st_size > 5_000
