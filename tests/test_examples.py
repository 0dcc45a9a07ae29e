"""The examples/ scripts run as they are (the ones that need real MNIST: test_mnist_run.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


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
