"""BLAS threads under mpiexec (issue 17, item 2) and the command under mpiexec (item 15).

Every rank used to start one BLAS thread per core: ``mpiexec -n 2 xpnet train`` on 2 cores ran
20x slower than one process. xpnet now gives each process ``cores // processes on the machine``
threads unless the user set a count; the command says so once, and a refusal prints once.
Speed itself is measured in ``python -m benchmarks.parallel --cli``, not here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xpnet import blas_threads

from .helpers import MPIEXEC, needs_mpi

ROOT = Path(__file__).resolve().parents[1]
MPICH = {"PMI_RANK": "0", "PMI_SIZE": "2", "MPI_LOCALNRANKS": "2"}


@pytest.mark.parametrize(("env", "cores", "want"), [
    ({}, 8, None),  # not under MPI: nothing to change
    (MPICH, 2, 1),
    (MPICH, 8, 4),
    ({**MPICH, "MPI_LOCALNRANKS": "3"}, 8, 2),
    ({**MPICH, "MPI_LOCALNRANKS": "16"}, 8, 1),  # at least one
    ({**MPICH, "MPI_LOCALNRANKS": "1"}, 8, None),  # one process on this machine: its default
    ({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"}, 8, 4),  # Open MPI
    ({"PMI_RANK": "0", "PMI_SIZE": "2"}, 8, 4),  # no local count: all on this machine
    ({**MPICH, "OMP_NUM_THREADS": "3"}, 8, None),  # the user's count wins
    ({**MPICH, "OPENBLAS_NUM_THREADS": "2"}, 8, None),
    ({**MPICH, "MKL_NUM_THREADS": "1"}, 8, None),
])
def test_threads_per_process(env, cores, want):
    assert blas_threads.threads_per_process(env, n_cores=cores) == want


def test_importing_xpnet_outside_mpi_sets_nothing():
    code = ("import os, xpnet; print(json.dumps({k: os.environ.get(k) for k in "
            "xpnet.blas_threads.THREAD_VARS}))")
    env = {k: v for k, v in os.environ.items()
           if k not in blas_threads.THREAD_VARS and k not in blas_threads.LAUNCHER_VARS}
    done = subprocess.run([sys.executable, "-c", "import json; " + code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    assert set(json.loads(done.stdout).values()) == {None}


# Each rank reports what its BLAS runs with (threadpoolctl, where installed) and its settings.
REPORT = textwrap.dedent('''
    import json, os, sys
    sys.path.insert(0, {root!r})
    import xpnet
    from xpnet import blas_threads
    report = {{"rank": int(os.environ.get("PMI_RANK", "-1")),
               "env": {{k: os.environ.get(k) for k in blas_threads.THREAD_VARS}},
               "line": blas_threads.describe()}}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        report["blas"] = sorted({{p["num_threads"] for p in threadpool_info()
                                if p["user_api"] == "blas"}})
    with open(os.path.join(sys.argv[1], f"rank{{report['rank']}}.json"), "w") as f:
        json.dump(report, f)
''')


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in blas_threads.THREAD_VARS}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _reports(tmp_path, **extra: str) -> list[dict]:
    script = tmp_path / "report.py"
    script.write_text(REPORT.format(root=str(ROOT)))
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script), str(tmp_path)],
                          cwd=ROOT, env=_clean_env(**extra), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


@needs_mpi
def test_each_rank_gets_its_share_of_the_cores(tmp_path):
    want = max(blas_threads.cores() // 2, 1)
    reports = _reports(tmp_path)
    assert [r["rank"] for r in reports] == [0, 1]
    for report in reports:
        assert set(report["env"].values()) == {str(want)}, report
        if "blas" in report:  # what the loaded BLAS really runs with
            assert report["blas"] == [want], report
        plural = "thread" if want == 1 else "threads"
        assert report["line"].startswith(f"{want} BLAS {plural} per process "
                                         f"({blas_threads.cores()} cores, 2 processes"), report


@needs_mpi
def test_a_thread_count_the_user_set_is_kept(tmp_path):
    for report in _reports(tmp_path, OPENBLAS_NUM_THREADS="2"):
        assert report["env"]["OPENBLAS_NUM_THREADS"] == "2"
        assert report["env"]["OMP_NUM_THREADS"] is None
        assert report["line"] == "BLAS threads as you set them (OPENBLAS_NUM_THREADS=2)"


@needs_mpi
def test_numpy_imported_first_is_limited_through_threadpoolctl(tmp_path):
    pytest.importorskip("threadpoolctl")
    script = tmp_path / "late.py"
    script.write_text(textwrap.dedent(f'''
        import json, os, sys
        import numpy  # before xpnet: the environment comes too late for its BLAS
        sys.path.insert(0, {str(ROOT)!r})
        from threadpoolctl import threadpool_info
        from xpnet import blas_threads
        line = blas_threads.describe()
        with open(os.path.join(sys.argv[1], os.environ["PMI_RANK"] + ".json"), "w") as f:
            json.dump([line, sorted({{p["num_threads"] for p in threadpool_info()
                                      if p["user_api"] == "blas"}})], f)
    '''))
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script), str(tmp_path)],
                          cwd=ROOT, env=_clean_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    want = max(blas_threads.cores() // 2, 1)
    for rank in (0, 1):
        text, threads = json.loads((tmp_path / f"{rank}.json").read_text())
        assert threads == [want]
        assert text.startswith(f"{want} BLAS thread")


# --------------------------------------------------------------------------- the command

CLI = textwrap.dedent('''
    import sys
    sys.path.insert(0, {root!r})
    import xpnet.datasets
    from tests.helpers import fake_mnist
    from xpnet.cli import main

    xpnet.datasets.load_mnist = fake_mnist
    sys.exit(main(sys.argv[1:]))
''')


def _cli(tmp_path, *argv: str) -> subprocess.CompletedProcess:
    script = tmp_path / "cli.py"
    script.write_text(CLI.format(root=str(ROOT)))
    return subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script), *argv], cwd=ROOT,
                          env=_clean_env(), capture_output=True, text=True, timeout=120)


@needs_mpi
def test_the_command_says_its_thread_choice_once(tmp_path):
    done = _cli(tmp_path, "train", "--iters", "13", "--batch-size", "50", "--out",
                str(tmp_path / "run"), "--no-plot")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "thread" in line]
    want = max(blas_threads.cores() // 2, 1)
    plural = "thread" if want == 1 else "threads"
    assert lines == [f"threads: xpnet's NumPy operations on {want} {plural} "
                     f"({blas_threads.cores()} cores / 2 processes on this machine; "
                     "1 BLAS thread each)"], done.stdout
    assert "  data parallel: 2 processes, batch 50 split across them" in done.stdout
    assert done.stdout.count("test accuracy after iteration 13") == 1


@needs_mpi
@pytest.mark.parametrize(("argv", "code", "says"), [
    (["train", "--resume", "somewhere"], 2, "--resume runs in one process: run it without "
                                            "mpiexec"),
    (["train", "--lr", "abc"], 2, "argument --lr: must be a positive number"),
    (["train", "--batchnorm"], 2, "--batchnorm goes with --model mlp"),
    (["train", "--batch-size", "1"], 2, "--batch-size 1 is smaller than the number of processes"),
    (["train", "--batch-size", "700"], 2, "--batch-size 700 is larger than the training set"),
    (["train", "--data-dir", "/nonexistent/mnist"], 2, "no such folder: /nonexistent/mnist"),
])
def test_a_refusal_under_mpiexec_prints_once(tmp_path, argv, code, says):
    done = _cli(tmp_path, *argv, "--out", str(tmp_path / "run"))
    assert done.returncode == code, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, done.stderr
    assert says in errors[0]


@needs_mpi
def test_a_failure_on_one_rank_is_reported_once_naming_the_rank(tmp_path):
    """A setup failure on rank 1 only (its data): rank 0 reports it, with the rank."""
    script = tmp_path / "cli.py"
    script.write_text(textwrap.dedent(f'''
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        import xpnet.datasets
        from tests.helpers import fake_mnist
        from xpnet.cli import main
        from xpnet.datasets import MNISTError

        def load(*args, **kwargs):
            if os.environ.get("PMI_RANK") == "1":
                raise MNISTError("the cache is unreadable here")
            return fake_mnist(*args, **kwargs)

        xpnet.datasets.load_mnist = load
        sys.exit(main(sys.argv[1:]))
    '''))
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script), "train", "--out",
                           str(tmp_path / "run")], cwd=ROOT, env=_clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert errors == ["xpnet: error: rank 1 of 2: the cache is unreadable here"], done.stderr


# --------------------------------------------------------------------------- xpnet's own threads

@pytest.mark.parametrize(("env", "cores", "want"), [
    ({}, 8, 8),  # every core this process may use, as PyTorch
    ({}, 1, 1),
    (MPICH, 8, 4),  # divided among the processes on this machine
    ({**MPICH, "MPI_LOCALNRANKS": "16"}, 8, 1),  # at least one
    ({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"}, 8, 4),
    ({"OMP_NUM_THREADS": "3"}, 8, 3),  # the user's count
    ({**MPICH, "OPENBLAS_NUM_THREADS": "2"}, 8, 2),
    ({"OMP_NUM_THREADS": "zero"}, 8, 8),  # not a count: the cores
])
def test_default_threads(env, cores, want):
    assert blas_threads.default_threads(env, n_cores=cores) == want


def test_the_default_is_the_cores_this_process_may_use():
    if hasattr(os, "sched_getaffinity"):
        assert blas_threads.cores() == len(os.sched_getaffinity(0))
    env = {k: v for k, v in os.environ.items()
           if k not in blas_threads.THREAD_VARS and k not in blas_threads.LAUNCHER_VARS}
    assert blas_threads.default_threads(env) == blas_threads.cores()


@pytest.fixture
def restore_threads():
    before = blas_threads.get_threads()
    yield
    blas_threads.set_threads(before)


@pytest.mark.parametrize(("value", "error", "says"), [
    (0, ValueError, "threads must be >= 1, got 0"),
    (-2, ValueError, "threads must be >= 1, got -2"),
    (1.5, TypeError, "threads must be an integer >= 1 (the threads of xpnet's operations), "
                     "got float 1.5"),
    ("2", TypeError, "got str '2'"),
    (True, TypeError, "got bool True"),
    (None, TypeError, "got NoneType None"),
])
def test_refused_thread_counts(value, error, says, restore_threads):
    before = blas_threads.get_threads()
    with pytest.raises(error, match=re.escape(says)):
        blas_threads.set_threads(value)
    assert blas_threads.get_threads() == before  # nothing changed


def test_set_threads_returns_the_count_it_replaces_and_the_context_restores_it(
        restore_threads):
    import numpy as np

    blas_threads.set_threads(3)
    assert blas_threads.set_threads(np.int64(2)) == 3  # NumPy integers count as integers
    assert blas_threads.get_threads() == 2
    with blas_threads.threads(1) as n:
        assert n == 1
        assert blas_threads.get_threads() == 1
    assert blas_threads.get_threads() == 2


def test_blas_runs_one_thread_per_worker_and_the_line_says_so(restore_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas_threads.set_threads(2)
    counts = {p["num_threads"] for p in threadpoolctl.threadpool_info()
              if p["user_api"] == "blas"}
    assert counts <= {1}
    assert blas_threads.describe_threads() == "2 threads (set; 1 BLAS thread each)"


def test_the_default_is_chosen_once_and_said(tmp_path):
    code = ("import xpnet; from xpnet import blas_threads; n = xpnet.get_threads(); "
            "print(n, '|', blas_threads.describe_threads())")
    env = {k: v for k, v in os.environ.items()
           if k not in blas_threads.THREAD_VARS and k not in blas_threads.LAUNCHER_VARS}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    n = blas_threads.cores()
    plural = "thread" if n == 1 else "threads"
    assert done.stdout.strip() == (f"{n} | {n} {plural} (the {n} cores this process may use; "
                                   "1 BLAS thread each)")


def test_torch_gets_the_count_when_loaded(restore_threads):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        blas_threads.set_threads(3)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
