"""The README's commands are the ones CI runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def fenced_after(text: str, marker: str) -> str:
    """The first fenced block after the line containing ``marker``."""
    rest = text[text.index(marker):]
    start = rest.index("```\n") + 4
    return rest[start:rest.index("```", start)].strip()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = fenced_after(readme, "Run the tests")
    assert "pytest" in command
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci


def test_readme_main_job_is_xpnet_train():
    readme = (ROOT / "README.md").read_text()
    assert fenced_after(readme, "Run the main job").endswith("xpnet train")


def test_readme_says_how_a_default_network_gets_to_the_gpu():
    """A network built without xp= stays on NumPy (issue 17): the README says so instead of
    "pass GPU arrays and the network trains on the GPU", and its example runs (on torch's CPU
    here, the device swapped for cuda:0)."""
    import pytest

    readme = (ROOT / "README.md").read_text()
    flat = " ".join(readme.split())
    assert "pass GPU arrays and the network trains on the GPU" not in flat
    assert "a network lives where it was built (`xp=`, `device=`; NumPy by default)" in flat
    rest = readme[readme.index("A network never moves by itself"):]
    start = rest.index("```python\n") + len("```python\n")
    code = rest[start:rest.index("```", start)]
    torch = pytest.importorskip("torch", reason="the README's example moves a network to torch")
    import numpy as np

    import xpnet

    rng = np.random.default_rng(0)
    scope = {"TwoLayerNet": xpnet.TwoLayerNet, "Adam": xpnet.Adam,
             "x_gpu": torch.asarray(rng.random((4, 784)), dtype=torch.float32),
             "t_gpu": torch.asarray([1, 2, 3, 4])}
    exec(code.replace('"cuda:0"', '"cpu"'), scope)
    assert scope["net"].params["W1"].dtype == torch.float32


def _sample(text: str) -> list[str]:
    """The quick start's sample output: the fenced block after "writes a run directory"."""
    return fenced_after(text, "and writes a run directory").splitlines()


def _comparable(line: str) -> str:
    """A printed line without what depends on the machine or the moment: the run directory's
    time stamp, the thread and core counts, and the seconds."""
    line = re.sub(r"runs/\d{8}-\d{6}-", "runs/<date>-<time>-", line)
    line = re.sub(r"on \d+ threads? \(the \d+ cores?", "on <n> threads (the <n> cores", line)
    return re.sub(r"\(\d+\.\d s\)$", "(<seconds>)", line)


@pytest.mark.mnist
@pytest.mark.skipif(os.environ.get("XPNET_TEST_MNIST") != "1",
                    reason="runs the quick start on real MNIST: set XPNET_TEST_MNIST=1")
def test_the_quick_start_prints_the_readmes_sample(tmp_path):
    """The quick-start command's header and first epoch line are the README's (issue 17: the
    sample said `lr 0.1` and `epoch 18` long after the command stopped printing them)."""
    readme = (ROOT / "README.md").read_text()
    command = fenced_after(readme, "Run the main job").split("&&")[-1].split()
    assert command == ["xpnet", "train"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "xpnet", *command[1:]], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    lines: list[str] = []
    try:
        for line in proc.stdout:  # the first evaluation is the first epoch line: then stop
            lines.append(line.rstrip("\n"))
            if line.startswith("epoch  1 "):
                break
    finally:
        proc.kill()
        proc.wait(timeout=60)
        proc.stdout.close()
    want = _sample(readme)[:4]
    assert want[2].startswith("threads: ")
    assert want[3].startswith("epoch  1 ")
    assert [_comparable(x) for x in lines] == [_comparable(x) for x in want]


def test_the_readme_says_resume_runs_in_one_process_and_the_blas_thread_rule():
    text = " ".join((ROOT / "README.md").read_text().split())
    assert "`--resume` runs in one process" in text
    assert "runs in one process (not under `mpiexec`)" in text
    assert ("xpnet gives each process `cores // processes on the machine` threads (at least 1) "
            "when an MPI launcher started it") in text
    assert "unless you set a count yourself (`OMP_NUM_THREADS`" in text


def test_the_readmes_mpi_table_is_the_committed_benchmark():
    import json

    report = json.loads((ROOT / "benchmarks/results/parallel-cli-2proc.json").read_text())
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| contender | training (s) |"):]
    rows = [line for line in table.splitlines()[2:5]]
    for line, row in zip(rows, report["rows"], strict=True):
        cells = [c.strip(" *") for c in line.strip("|").split("|")]
        assert cells[1:] == [f"{row['train_s']:.2f}", f"{row['s_per_600_steps']:.3f}",
                             f"{row['vs_1_process']:.2f}" if row["vs_1_process"] < 10 else
                             f"{row['vs_1_process']:.1f}"], (line, row)
    assert report["rows"][1]["vs_1_process"] <= 1.0  # issue 17: 2 processes no slower than 1
