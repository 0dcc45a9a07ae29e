"""The GPU check cannot pass a step that tested nothing, and its report survives a cut-off:
``benchmarks/gpu_report.py`` (each step appends to the JSON report as it ends) and the
``--backend cupy`` guard of the ``xpnet.testing`` plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.gpu_report import add_step, junit_counts

ROOT = Path(__file__).resolve().parents[2]


def _junit(path: Path, tests: int, skipped: int, failures: int = 0) -> Path:
    path.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="{tests}" '
                    f'skipped="{skipped}" failures="{failures}" errors="0"></testsuite>'
                    "</testsuites>")
    return path


def test_a_pytest_step_that_ran_no_test_fails(tmp_path):
    log = tmp_path / "step.log"
    log.write_text("975 skipped in 3.1s\n")
    report = tmp_path / "report.json"
    line = add_step(report, name="pytest_cupy", part="1", rc=0, seconds=3, limit=100, log=log,
                    junit=_junit(tmp_path / "all-skipped.xml", 975, 975))
    assert line.startswith("FAIL (no test ran) pytest_cupy")
    line = add_step(report, name="pytest_cupy", part="1", rc=0, seconds=3, limit=100, log=log,
                    junit=_junit(tmp_path / "ran.xml", 975, 20))
    assert line.startswith("PASS pytest_cupy")
    assert junit_counts(tmp_path / "ran.xml")["passed"] == 955
    line = add_step(report, name="pytest_cupy", part="1", rc=124, seconds=100, limit=100,
                    log=log, junit=tmp_path / "never-written.xml")
    assert line.startswith("FAIL (timed out after 100 s) pytest_cupy")


def test_the_report_grows_step_by_step_and_stays_valid(tmp_path):
    report = tmp_path / "report.json"
    log = tmp_path / "env.log"
    log.write_text("cuda_status: (True, 'ok')\n")
    result = tmp_path / "env.json"
    result.write_text(json.dumps({"device": "NVIDIA H200", "cupy": "14.2.0"}))
    add_step(report, name="env", part="1", rc=0, seconds=2, limit=20, log=log, result=result)
    first = json.loads(report.read_text())
    assert first["machine"]["device"] == "NVIDIA H200"
    assert [s["status"] for s in first["steps"]] == ["PASS"]
    add_step(report, name="train", part="1", rc=1, seconds=9, limit=25, log=log)
    second = json.loads(report.read_text())
    assert [s["name"] for s in second["steps"]] == ["env", "train"]
    assert second["failed"] == 1
    assert second["steps"][0]["tail"] == ["cuda_status: (True, 'ok')"]


def test_backend_cupy_without_a_usable_cupy_is_an_error_not_a_skip(tmp_path):
    """``pytest --backend cupy`` where CuPy is not usable would skip every test and pass."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = subprocess.run([sys.executable, "-c", "import xpnet.backend as b; "
                            "print(b.cuda_available())"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    if probe.stdout.strip() == "True":
        pytest.skip("a CUDA device is usable here: --backend cupy runs")
    done = subprocess.run([sys.executable, "-m", "pytest", "--backend", "cupy", "-q",
                           "-p", "no:cacheprovider", "tests/test_util.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert "--backend cupy: CuPy is not usable here" in done.stderr
