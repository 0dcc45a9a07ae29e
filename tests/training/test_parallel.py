"""Data parallelism over MPI: a 2-process run equals the 1-process run, batch norm still
learns, a rank that dies or raises stops the others, single-process use imports no MPI.

The multi-process tests launch this file under ``mpiexec -n 2`` (``python -m
tests.training.test_parallel CASE OUT``); every launch is bounded by a subprocess timeout.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ..helpers import MPIEXEC, clusters, needs_mpi

ROOT = Path(__file__).resolve().parents[2]
STEPS, BATCH = 50, 25  # 25 rows on 2 ranks: shares of 12 and 13, unequal weights

# The data of these tests: unit-spread centers, float64 points, int64 labels.
mpi_clusters = functools.partial(clusters, spread=1.0, dtype=np.float64, label_dtype=np.int64)


def _equality_cases():
    """``(name, net factory, optimizer factory)`` of the exact-equality test (float64)."""
    from xpnet import MultiLayerNet, TwoLayerNet
    from xpnet.optim import SGD, Adam

    def two(seed):
        return TwoLayerNet(20, 16, 4, weight_init_std=0.1, dtype="float64", seed=seed)

    def mlp(seed):
        return MultiLayerNet(20, [16, 12], 4, weight_decay_lambda=0.01, dtype="float64",
                             seed=seed)

    return [("two-sgd", two, lambda: SGD(lr=0.3)), ("two-adam", two, lambda: Adam(lr=0.01)),
            ("mlp-sgd", mlp, lambda: SGD(lr=0.3)), ("mlp-adam", mlp, lambda: Adam(lr=0.01))]


def _run_equal(comm, out: Path) -> None:
    from xpnet.training import train

    x, t = mpi_clusters(0, 400, 20, 4, noise=1.0)
    for name, make_net, make_opt in _equality_cases():
        # Rank 1 starts from other weights: the broadcast from rank 0 must replace them.
        net = make_net(comm.Get_rank())
        history = train(net, x[:300], t[:300], x[300:], t[300:], iters=STEPS,
                        batch_size=BATCH, optimizer=make_opt(), seed=3, eval_every=20,
                        comm=comm)
        arrays = {k: np.asarray(v) for k, v in net.params.items()}
        arrays["loss"] = np.asarray(history.loss)
        arrays["acc"] = np.asarray([e.test_acc for e in history.epochs])
        np.savez(out / f"{name}-rank{comm.Get_rank()}.npz", **arrays)
    net, trainer = _trainer(x, t, comm)
    trainer.train()
    np.savez(out / f"trainer-rank{comm.Get_rank()}.npz", **{k: np.asarray(v) for k, v in
                                                           net.params.items()})


def _trainer(x, t, comm):
    """The book's Trainer (its MultiLayerNet, momentum) on the same data."""
    from xpnet import MultiLayerNet
    from xpnet.trainer import Trainer

    net = MultiLayerNet(20, [16], 4, dtype="float64", seed=0)
    return net, Trainer(net, x[:300], t[:300], x[300:], t[300:], epochs=4, mini_batch_size=BATCH,
                        optimizer="momentum", verbose=False, comm=comm)


def _bn_data():
    x, t = mpi_clusters(1, 6000, 30, 10, noise=1.3)
    return x[:4000], t[:4000], x[4000:], t[4000:]


def _bn_run(comm, out: Path | None = None):
    from xpnet import MultiLayerNetExtend
    from xpnet.training import train

    net = MultiLayerNetExtend(30, [64, 64], 10, use_batchnorm=True, dtype="float32", seed=0)
    history = train(net, *_bn_data(), iters=400, batch_size=100, optimizer="adam", seed=0,
                    eval_every=400, comm=comm)
    if out is not None:
        arrays = {k: np.asarray(v) for k, v in net.params.items()}
        for name, layer in net.layers.items():
            if hasattr(layer, "running_mean"):
                arrays[name + ".mean"] = np.asarray(layer.running_mean)
                arrays[name + ".var"] = np.asarray(layer.running_var)
        np.savez(out / f"bn-rank{comm.Get_rank()}.npz", **arrays)
    return history.final_test_acc


def _run_kill(comm, out: Path, how: str) -> None:
    """Rank 1 dies (SIGKILL), raises or hangs at its 20th step."""
    import signal

    from xpnet import TwoLayerNet
    from xpnet.training import train

    x, t = mpi_clusters(0, 400, 20, 4, noise=1.0)
    net = TwoLayerNet(20, 16, 4, seed=0)
    if comm.Get_rank() == 1:
        gradient, calls = net.gradient, [0]

        def failing(*args, **kwargs):
            calls[0] += 1
            if calls[0] == 20:
                if how == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                if how == "hang":
                    time.sleep(600)
                raise RuntimeError("boom at step 20")
            return gradient(*args, **kwargs)

        net.gradient = failing
    train(net, x[:300], t[:300], x[300:], t[300:], iters=100_000, batch_size=BATCH, comm=comm)
    (out / f"finished-rank{comm.Get_rank()}").write_text("should not get here")


def _run_ctrl_c(comm, out: Path, who: str) -> None:
    """A Ctrl-C (a real SIGINT) during step 20, on rank 0 only or on both ranks (as mpiexec
    forwards one), with a checkpoint: every rank stops after the same step, rank 0 writes the
    state of that step."""
    import signal

    from xpnet import MultiLayerNet
    from xpnet.optim import Adam
    from xpnet.training import train

    x, t = mpi_clusters(0, 400, 20, 4, noise=1.0)
    net = MultiLayerNet(20, [16, 12], 4, dtype="float64", seed=0)
    if who == "both" or comm.Get_rank() == 0:
        gradient, calls = net.gradient, [0]

        def signalling(*args, **kwargs):
            calls[0] += 1
            if calls[0] == 20:
                os.kill(os.getpid(), signal.SIGINT)
            return gradient(*args, **kwargs)

        net.gradient = signalling
    history = train(net, x[:300], t[:300], x[300:], t[300:], iters=STEPS, batch_size=BATCH,
                    optimizer=Adam(lr=0.01), seed=3, eval_every=20, comm=comm,
                    checkpoint=out / "c.npz" if comm.Get_rank() == 0 else None)
    (out / f"ctrl-c-rank{comm.Get_rank()}.txt").write_text(
        f"{history.status} {history.iterations} {len(history.loss)}")


def _run_cupy(comm, out: Path, case: str) -> None:
    """On the fake CuPy (two devices, no NCCL): each rank on its node-local GPU
    (``cupy-devices``) or both on device 0 (``cupy-shared``); the run falls back to host copies
    with one note, and its parameters equal one process's."""
    import array_api_compat.cupy as xp

    from xpnet import TwoLayerNet
    from xpnet.backend import to_numpy
    from xpnet.training import train
    from xpnet.training.parallel import Communicator, local_device

    x, t = mpi_clusters(0, 400, 20, 4, noise=1.0)
    wrapped = Communicator(comm)
    device = local_device(wrapped, xp) if case == "cupy-devices" else None
    net = TwoLayerNet(20, 16, 4, xp="cupy", device=device, dtype="float64", seed=0)
    lines: list[str] = []
    train(net, x[:300], t[:300], x[300:], t[300:], iters=STEPS, batch_size=BATCH, seed=3,
          comm=wrapped, log=lines.append)
    params = {k: to_numpy(v) for k, v in net.params.items()}
    np.savez(out / f"{case}-rank{comm.Get_rank()}.npz", device=np.asarray(net.device.id),
             **params)
    if comm.Get_rank() == 0:
        alone = TwoLayerNet(20, 16, 4, xp="cupy", dtype="float64", seed=0)
        train(alone, x[:300], t[:300], x[300:], t[300:], iters=STEPS, batch_size=BATCH, seed=3)
        np.savez(out / f"{case}-alone.npz", **{k: to_numpy(v) for k, v in alone.params.items()})
        (out / f"{case}-log.txt").write_text("\n".join(lines))


def _worker(case: str, out: str) -> None:
    from mpi4py import MPI

    comm, out_dir = MPI.COMM_WORLD, Path(out)
    if case.startswith("cupy-"):
        _run_cupy(comm, out_dir, case)
    elif case == "equal":
        _run_equal(comm, out_dir)
    elif case == "bn":
        acc = _bn_run(comm, out_dir)
        if comm.Get_rank() == 0:
            (out_dir / "bn.txt").write_text(f"{acc!r} {_bn_run(None)!r}")
    elif case.startswith("ctrl-c-"):
        _run_ctrl_c(comm, out_dir, case.removeprefix("ctrl-c-"))
    else:
        _run_kill(comm, out_dir, case)


def _mpiexec(case: str, out: Path, timeout: float, *extra: str, env: dict | None = None):
    cmd = [MPIEXEC, *extra, "-n", "2", sys.executable, "-m", "tests.training.test_parallel", case,
           str(out)]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    return proc, time.monotonic() - start


@needs_mpi
def test_two_processes_equal_one_process(tmp_path):
    from xpnet.training import train

    proc, _ = _mpiexec("equal", tmp_path, 120)
    assert proc.returncode == 0, proc.stderr
    x, t = mpi_clusters(0, 400, 20, 4, noise=1.0)
    for name, make_net, make_opt in _equality_cases():
        net = make_net(0)
        history = train(net, x[:300], t[:300], x[300:], t[300:], iters=STEPS,
                        batch_size=BATCH, optimizer=make_opt(), seed=3, eval_every=20)
        for rank in (0, 1):
            got = np.load(tmp_path / f"{name}-rank{rank}.npz")
            for key, value in net.params.items():
                # The run moved the parameters: equality is not that of the start.
                assert not np.allclose(value, make_net(0).params[key], rtol=1e-3), (name, key)
                np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-12,
                                           err_msg=f"{name} rank {rank} {key}")
            np.testing.assert_allclose(got["loss"], history.loss, rtol=1e-10, err_msg=name)
            assert got["acc"].tolist() == [e.test_acc for e in history.epochs], name
    net, trainer = _trainer(x, t, None)
    trainer.train()
    for rank in (0, 1):
        got = np.load(tmp_path / f"trainer-rank{rank}.npz")
        for key, value in net.params.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-12, err_msg=key)


@needs_mpi
def test_batch_norm_reaches_single_process_accuracy(tmp_path):
    proc, _ = _mpiexec("bn", tmp_path, 120)
    assert proc.returncode == 0, proc.stderr
    two, one = map(float, (tmp_path / "bn.txt").read_text().split())
    # The ranks hold one model: same parameters, same (averaged) running statistics.
    rank0, rank1 = (np.load(tmp_path / f"bn-rank{r}.npz") for r in (0, 1))
    assert any(key.endswith(".mean") for key in rank0.files)
    for key in rank0.files:
        np.testing.assert_array_equal(rank0[key], rank1[key], err_msg=key)
    assert one > 0.8  # a run that learned: the comparison means something
    assert abs(two - one) <= 0.005, (two, one)


@needs_mpi
@pytest.mark.parametrize("how", ["kill", "raise"])
def test_a_failing_rank_stops_the_other(tmp_path, how):
    proc, seconds = _mpiexec(how, tmp_path, 90)
    assert proc.returncode != 0
    assert seconds < 60
    assert not list(tmp_path.glob("finished-*"))
    text = proc.stdout + proc.stderr
    if how == "kill":  # mpiexec reports the dead rank and ends the other
        assert "BAD TERMINATION" in text or "rank" in text, text
    else:
        assert "rank 1 of 2: failed: RuntimeError: boom at step 20; aborting all ranks" in text


@needs_mpi
@pytest.mark.parametrize("who", ["rank0", "both"])
def test_ctrl_c_stops_every_rank_after_one_step_and_the_checkpoint_resumes(tmp_path, who):
    from xpnet import MultiLayerNet
    from xpnet.checkpoint import load_checkpoint
    from xpnet.optim import Adam
    from xpnet.training import train

    proc, seconds = _mpiexec(f"ctrl-c-{who}", tmp_path, 90)
    assert proc.returncode == 0, proc.stderr
    assert seconds < 60
    # Both ranks stopped after step 20 (the one the Ctrl-C came in) and counted it.
    for rank in (0, 1):
        assert (tmp_path / f"ctrl-c-rank{rank}.txt").read_text() == "interrupted 20 20", rank
    state = load_checkpoint(tmp_path / "c.npz")
    assert state.iteration == 20
    # Resumed in one process, the run ends where the uninterrupted one does (2 processes equal
    # 1 up to rounding): a step applied but not counted would be applied twice.
    x, t = mpi_clusters(0, 400, 20, 4, noise=1.0)

    def run(**kw):
        net = MultiLayerNet(20, [16, 12], 4, dtype="float64", seed=0)
        train(net, x[:300], t[:300], x[300:], t[300:], iters=STEPS, batch_size=BATCH,
              optimizer=Adam(lr=0.01), seed=3, eval_every=20, **kw)
        return net.params

    want, got = run(), run(resume_from=state)
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-12, err_msg=key)


@needs_mpi
def test_watchdog_stops_a_rank_waiting_for_a_hung_one(tmp_path):
    # Rank 1 hangs (alive, so the launcher sees nothing): rank 0 waits in the allreduce until
    # the watchdog aborts every rank after XPNET_MPI_TIMEOUT seconds.
    proc, seconds = _mpiexec("hang", tmp_path, 90, env={"XPNET_MPI_TIMEOUT": "3"})
    assert proc.returncode != 0
    assert 3 < seconds < 60
    assert ("rank 0 of 2: no answer from the other ranks for 3 s in the gradient allreduce"
            in proc.stderr), proc.stderr


FAKE_CUPY = ROOT / "tests" / "fakecupy"
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None,
                               reason="the fake CuPy's kernels need g++")


@needs_mpi
@needs_gxx
@pytest.mark.parametrize("case", ["cupy-devices", "cupy-shared"])
def test_cupy_ranks_take_their_own_gpu_or_fall_back_to_host_copies(tmp_path, case):
    """Two ranks on one node: ``local_device`` gives each the GPU of its node-local rank (both
    on device 0 made NCCL refuse the duplicate GPU at init). The fake CuPy has no NCCL, and a
    shared device cannot use it either: both runs say why in one line and take host copies,
    with the one-process result."""
    proc, _ = _mpiexec(case, tmp_path, 180, env={"PYTHONPATH": f"{FAKE_CUPY}:{ROOT}"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    devices = [int(np.load(tmp_path / f"{case}-rank{r}.npz")["device"]) for r in (0, 1)]
    assert devices == ([0, 1] if case == "cupy-devices" else [0, 0])
    log = (tmp_path / f"{case}-log.txt").read_text()
    if case == "cupy-devices":
        assert re.search(r"CuPy finds no NCCL library: pip install nvidia-nccl-cu1[23]", log), log
    else:
        assert "ranks 0, 1 share CUDA device 0, which NCCL refuses" in log, log
    assert log.count("note:") == 1, log
    alone = np.load(tmp_path / f"{case}-alone.npz")
    for r in (0, 1):
        got = np.load(tmp_path / f"{case}-rank{r}.npz")
        for key in alone.files:
            np.testing.assert_allclose(got[key], alone[key], rtol=1e-10, atol=1e-12)


@needs_mpi
@needs_gxx
@pytest.mark.skipif(os.environ.get("XPNET_TEST_MNIST") != "1",
                    reason="real MNIST runs: set XPNET_TEST_MNIST=1 (needs the data)")
def test_mpiexec_xpnet_train_on_cupy_puts_each_rank_on_its_gpu(tmp_path):
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "xpnet", "train", "--backend", "cupy",
           "--iters", "5", "--batch-size", "50", "--no-plot", "--out", str(tmp_path / "run")]
    env = {**os.environ, "PYTHONPATH": f"{FAKE_CUPY}:{ROOT}", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "data parallel: 2 processes on <CUDA Device 0>, <CUDA Device 1>" in proc.stdout, \
        proc.stdout
    assert proc.stdout.count("CuPy finds no NCCL library") == 1, proc.stdout


@needs_gxx
def test_nccl_absent_is_said_in_one_line_naming_the_package():
    """CuPy without libnccl: ``from cupy.cuda import nccl`` works and the module holds only
    ``available = False``; the NCCL communicator used to die on ``nccl.get_unique_id`` with an
    AttributeError."""
    code = ("from xpnet.ops.cupy_ops import _NcclCollectives, nccl_problem\n"
            "print(nccl_problem())\n"
            "class Comm:\n"
            "    is_root, size, rank = True, 1, 0\n"
            "    def bcast_object(self, value, what): return value\n"
            "try:\n"
            "    _NcclCollectives(Comm())._communicator()\n"
            "except RuntimeError as exc:\n"
            "    print('refused:', exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": f"{FAKE_CUPY}:{ROOT}"})
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.strip().splitlines()
    assert re.search(r"pip install nvidia-nccl-cu1[23] ", first), first
    assert second.startswith("refused: CuPy finds no NCCL library")


def test_single_process_use_imports_no_mpi():
    code = ("import sys, numpy as np\n"
            "from xpnet import TwoLayerNet\n"
            "from xpnet.training import train\n"
            "x = np.random.default_rng(0).normal(size=(40, 4)); t = np.arange(40) % 2\n"
            "train(TwoLayerNet(4, 3, 2, seed=0), x, t, x, t, iters=3, batch_size=10)\n"
            "print(sorted(m for m in sys.modules if m.startswith(('mpi4py',"
            " 'xpnet.training.parallel', 'cupy'))))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


if __name__ == "__main__":
    _worker(*sys.argv[1:3])
