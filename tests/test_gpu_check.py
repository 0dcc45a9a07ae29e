"""``benchmarks/gpu_check.sh --dry-run``: every step of the GPU check, here on the CPU with the
fake CuPy of ``tests/fakecupy``, so the script is tested before a device is lent (1-3 minutes:
opt in with ``XPNET_TEST_GPU_CHECK=1``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("XPNET_TEST_GPU_CHECK") != "1",
                       reason="the GPU check's dry run takes 1-3 minutes: "
                              "set XPNET_TEST_GPU_CHECK=1"),
    pytest.mark.skipif(shutil.which("g++") is None, reason="the fake CuPy's kernels need g++"),
]


def test_gpu_check_dry_run_passes(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"],
                          env=env, capture_output=True, text=True, timeout=900, check=False)
    summary = (tmp_path / "summary.txt").read_text()
    assert done.returncode == 0, summary + done.stdout[-3000:]
    steps = [line.split()[1].rstrip(":") for line in summary.splitlines()
             if line.startswith("PASS ")]
    for name in ("env", "compare", "pytest_cupy", "pytest_torch", "gradcheck", "train",
                 "train_graph", "train_deep", "example", "bench", "bench_convnet"):
        assert name in steps, summary
    assert "FAIL" not in summary
