"""Checkpoints (xpnet.checkpoint): a killed run resumes to the very parameters of an
uninterrupted one; a kill during a write never leaves a checkpoint that crashes the loader;
checkpoints that cannot be honoured are refused clearly."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from xpnet.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    CheckpointWarning,
    load_checkpoint,
)
from xpnet.nets import MultiLayerNetExtend, TwoLayerNet
from xpnet.optim import SGD, Adam
from xpnet.trainer import Trainer
from xpnet.training import train

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")

# 230 samples in batches of 20: 11 batches per permutation; evaluations (and checkpoints)
# every 7 steps, so most checkpoints fall in the middle of a permutation.
SETUP = dict(iters=57, batch_size=20, eval_every=7, seed=5)

# The child process: builds the data and network from its arguments, trains with checkpoints,
# optionally kills itself (SIGKILL, in the middle of a step) at a given gradient call, or resumes.
CHILD = textwrap.dedent('''
    import functools, json, os, signal, sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from tests.test_checkpoint import data, make
    from xpnet.checkpoint import load_checkpoint
    from xpnet.training import train

    spec = json.loads(sys.argv[1])
    net, opt = make(spec["kind"], spec["dtype"])
    resume = load_checkpoint(spec["checkpoint"]) if spec.get("resume") else None
    if spec.get("kill_at"):
        calls = [0]
        gradient = net.gradient

        @functools.wraps(gradient)
        def killing(*args, **kwargs):
            calls[0] += 1
            if calls[0] == spec["kill_at"]:
                os.kill(os.getpid(), signal.SIGKILL)
            return gradient(*args, **kwargs)

        net.gradient = killing
    train(net, *data(), **spec["setup"], optimizer=opt, checkpoint=spec["checkpoint"],
          resume_from=resume)
    np.savez(spec["out"], **{{k: np.asarray(v) for k, v in net.params.items()}})
''')


def data():
    rng = np.random.default_rng(1)
    return (rng.random((230, 20)), rng.integers(0, 5, 230),
            rng.random((50, 20)), rng.integers(0, 5, 50))


def make(kind, dtype, **where):
    """TwoLayerNet with SGD, or MultiLayerNetExtend with batch norm, dropout and Adam."""
    if kind == "two-layer":
        return TwoLayerNet(20, 8, 5, dtype=dtype, seed=3, **where), SGD(lr=0.1)
    if kind == "mlp-nodrop":
        return MultiLayerNetExtend(20, [16, 16], 5, use_batchnorm=True, dtype=dtype, seed=3,
                                   **where), Adam()
    return MultiLayerNetExtend(20, [16, 16], 5, use_batchnorm=True, use_dropout=True,
                               dropout_ration=0.2, dtype=dtype, seed=3, **where), Adam()


def _child(tmp_path, **spec):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(script), json.dumps(spec)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", ["two-layer", "mlp"])
def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_parameters(tmp_path, kind, dtype):
    common = {"kind": kind, "dtype": dtype, "setup": SETUP}
    ref = _child(tmp_path, **common, checkpoint=str(tmp_path / "ref.npz"),
                 out=str(tmp_path / "ref-params.npz"))
    assert ref.returncode == 0, ref.stderr
    ckpt = str(tmp_path / "run" / CHECKPOINT_NAME)
    # Gradient call 31 is step 30, the 9th batch of the third permutation; the last checkpoint
    # is from the evaluation after step 29 (29 = 2 * 11 + 7: also mid-permutation).
    killed = _child(tmp_path, **common, checkpoint=ckpt, kill_at=31,
                    out=str(tmp_path / "never.npz"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (tmp_path / "never.npz").exists()
    assert load_checkpoint(ckpt).iteration == 29
    resumed = _child(tmp_path, **common, checkpoint=ckpt, resume=True,
                     out=str(tmp_path / "resumed.npz"))
    assert resumed.returncode == 0, resumed.stderr
    with np.load(tmp_path / "ref-params.npz") as want, np.load(tmp_path / "resumed.npz") as got:
        assert sorted(want.files) == sorted(got.files)
        for name in want.files:
            assert got[name].dtype == np.dtype(dtype)
            assert np.array_equal(want[name], got[name]), name
    # The history reads as one run: every step's loss, evaluations at the same iterations.
    full = load_checkpoint(tmp_path / "ref.npz").meta["history"]
    joined = load_checkpoint(ckpt).meta["history"]
    assert joined["iterations"] == full["iterations"] == 57
    assert joined["loss"] == full["loss"]
    assert [e["iteration"] for e in joined["epochs"]] == [e["iteration"] for e in full["epochs"]]
    assert [e["test_acc"] for e in joined["epochs"]] == [e["test_acc"] for e in full["epochs"]]
    assert [r["iteration"] for r in joined["config"]["resumed"]] == [29]


def _interrupting(net, at):
    """Make ``net.gradient`` raise KeyboardInterrupt (as Ctrl-C would) at call ``at``."""
    calls = [0]
    gradient = net.gradient

    @functools.wraps(gradient)
    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == at:
            raise KeyboardInterrupt
        return gradient(*args, **kwargs)

    net.gradient = wrapped


@pytest.mark.parametrize("at", [1, 12, 23, 30])  # incl. the first step of a new permutation
def test_ctrl_c_writes_a_checkpoint_that_resumes_exactly(tmp_path, at):
    net, opt = make("mlp", "float64")
    train(net, *data(), **SETUP, optimizer=opt)
    want = {k: np.asarray(v) for k, v in net.params.items()}
    net, opt = make("mlp", "float64")
    _interrupting(net, at)
    history = train(net, *data(), **SETUP, optimizer=opt, checkpoint=tmp_path / "c.npz")
    assert history.status == "interrupted"
    state = load_checkpoint(tmp_path / "c.npz")
    assert state.iteration == at - 1
    net, opt = make("mlp", "float64")
    history = train(net, *data(), **SETUP, optimizer=opt, resume_from=state)
    assert history.status == "finished"
    for name, value in want.items():
        assert np.array_equal(value, np.asarray(net.params[name])), name


@pytest.fixture
def python_sigint():
    """SIGINT handled as an interactive Python handles it (``KeyboardInterrupt``), which train()
    takes over. A process started as a background shell job inherits SIGINT ignored, and
    Python then leaves it ignored; train() rightly respects that."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_real_sigint_stops_between_steps_and_resumes_exactly(tmp_path, python_sigint):
    net, opt = make("two-layer", "float64")
    train(net, *data(), **SETUP, optimizer=opt)
    want = {k: np.asarray(v) for k, v in net.params.items()}
    net, opt = make("two-layer", "float64")
    calls = [0]
    gradient = net.gradient

    @functools.wraps(gradient)
    def signalling(*args, **kwargs):  # the signal arrives in the middle of step 17
        calls[0] += 1
        if calls[0] == 17:
            os.kill(os.getpid(), signal.SIGINT)
        return gradient(*args, **kwargs)

    net.gradient = signalling
    history = train(net, *data(), **SETUP, optimizer=opt, checkpoint=tmp_path / "c.npz")
    assert history.status == "interrupted"
    assert history.iterations == 17  # step 17 was finished, step 18 never began
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    net, opt = make("two-layer", "float64")
    train(net, *data(), **SETUP, optimizer=opt, resume_from=load_checkpoint(tmp_path / "c.npz"))
    for name, value in want.items():
        assert np.array_equal(value, np.asarray(net.params[name])), name


# --------------------------------------------------------------------------- kills during writes

WRITER = textwrap.dedent('''
    import sys
    sys.path.insert(0, {root!r})
    import numpy as np
    from xpnet.nets import MultiLayerNetExtend
    from xpnet.optim import Adam
    from xpnet.training import train

    # Big parameters, tiny batches and a checkpoint after every step: nearly all the time goes
    # into writing checkpoints.
    rng = np.random.default_rng(0)
    x, t = rng.random((40, 784)), rng.integers(0, 10, 40)
    net = MultiLayerNetExtend(784, [100] * 4, 10, use_batchnorm=True, use_dropout=True, seed=1)
    print("ready", flush=True)
    train(net, x, t, x, t, iters=10**6, batch_size=5, eval_every=1, eval_samples=5,
          optimizer=Adam(), checkpoint=sys.argv[1])
''')


def test_kills_at_random_moments_of_writing_never_break_the_loader(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=str(ROOT)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    ckpt = tmp_path / "run" / CHECKPOINT_NAME
    chance = random.Random(12)
    outcomes = []
    for _ in range(10):
        child = subprocess.Popen([sys.executable, str(script), str(ckpt)], env=env,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline() == "ready\n"
        time.sleep(chance.uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        try:
            state = load_checkpoint(ckpt.parent)
        except CheckpointError as exc:  # refused clearly: nothing else may escape the loader
            outcomes.append(f"refused: {exc}")
            continue
        # It resumes: a few more steps from where the killed writer left off.
        rng = np.random.default_rng(0)
        x, t = rng.random((40, 784)), rng.integers(0, 10, 40)
        net = MultiLayerNetExtend(784, [100] * 4, 10, use_batchnorm=True, use_dropout=True)
        history = train(net, x, t, x, t, iters=state.iteration + 3, batch_size=5, eval_every=1,
                        eval_samples=5, optimizer=Adam(), resume_from=state)
        assert history.status == "finished"
        assert history.iterations == len(history.loss) == state.iteration + 3
        outcomes.append("resumed")
    assert "resumed" in outcomes, outcomes
    # Temporary files of killed writers are cleared by the next writer of that checkpoint.
    train(*make("two-layer", "float64")[:1], *data(), iters=1, batch_size=20,
          checkpoint=tmp_path / "other.npz")
    leftovers = list(ckpt.parent.glob(f".{CHECKPOINT_NAME}.*.tmp"))
    net, opt = make("two-layer", "float64")
    with pytest.raises(CheckpointError):  # a TwoLayerNet cannot continue that run
        train(net, *data(), **SETUP, optimizer=opt, checkpoint=ckpt,
              resume_from=load_checkpoint(ckpt))
    from xpnet.checkpoint import Checkpointer

    Checkpointer(ckpt, net=None, optimizer=None, history=None, rng=None, batches_per_perm=1,
                 started=0.0)
    assert not list(ckpt.parent.glob(f".{CHECKPOINT_NAME}.*.tmp")), leftovers


def test_every_truncation_and_many_bit_flips_are_refused(tmp_path):
    net, opt = make("mlp", "float32")
    train(net, *data(), iters=9, batch_size=20, eval_every=4, optimizer=opt,
          checkpoint=tmp_path / "c.npz")
    whole = (tmp_path / "c.npz").read_bytes()
    bad = tmp_path / "bad.npz"
    for size in [0, 1, 21, *range(100, len(whole), max(len(whole) // 97, 1)), len(whole) - 1]:
        bad.write_bytes(whole[:size])
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            load_checkpoint(bad)
    chance = random.Random(3)
    for _ in range(150):
        damaged = bytearray(whole)
        at = chance.randrange(len(damaged))
        damaged[at] ^= 1 << chance.randrange(8)
        bad.write_bytes(bytes(damaged))
        with contextlib.suppress(CheckpointError):  # a flip in an unused field is harmless
            load_checkpoint(bad)


# --------------------------------------------------------------------------- refusals


@pytest.fixture
def saved(tmp_path):
    net, opt = make("mlp", "float64")
    _interrupting(net, 20)
    train(net, *data(), **SETUP, optimizer=opt, checkpoint=tmp_path / "c.npz")
    return tmp_path / "c.npz"


def _rewrite(path, change_meta=None, drop=()):
    with np.load(path, allow_pickle=False) as data_:
        arrays = {k: data_[k] for k in data_.files if k not in drop}
    meta = json.loads(str(arrays["__checkpoint__"]))
    if change_meta:
        change_meta(meta)
    arrays["__checkpoint__"] = np.asarray(json.dumps(meta))
    np.savez(path, **arrays)


def test_another_model_sizes_settings_or_dtype_are_refused(saved):
    state = load_checkpoint(saved)
    cases = [
        (make("two-layer", "float64"), {}, "holds a MultiLayerNetExtend"),
        ((MultiLayerNetExtend(20, [16, 8], 5, use_batchnorm=True, use_dropout=True,
                              dropout_ration=0.2), Adam()), {}, r"sizes \[20, 16, 8, 5\]"),
        ((MultiLayerNetExtend(20, [16, 16], 5, use_batchnorm=True), Adam()), {},
         "use_dropout"),
        (make("mlp", "float32"), {}, "float64 parameters but the network is float32"),
        (make("mlp", "float64"), {"batch_size": 10}, "batch_size 10"),
        (make("mlp", "float64"), {"seed": 6}, "seed 6"),
        ((make("mlp", "float64")[0], SGD()), {}, "optimizer"),
        (make("mlp", "float64"), {"iters": 10}, "past the 10 iterations"),
    ]
    for (net, opt), change, match in cases:
        with pytest.raises(CheckpointError, match=match):
            train(net, *data(), **{**SETUP, **change}, optimizer=opt, resume_from=state)


def test_another_major_version_format_or_missing_entries_are_refused(saved):
    _rewrite(saved, lambda m: m.update(xpnet="1.0.0"))
    with pytest.raises(CheckpointError, match=r"written by xpnet 1\.0\.0; .* another major"):
        load_checkpoint(saved)
    _rewrite(saved, lambda m: m.update(xpnet="0.1.0", format_version=99))
    with pytest.raises(CheckpointError, match="format 99"):
        load_checkpoint(saved)
    _rewrite(saved, lambda m: m.update(format_version=1))
    load_checkpoint(saved)  # intact again
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(saved.parent / "nothing-here")
    with zipfile.ZipFile(saved.parent / "other.npz", "w") as archive:
        archive.writestr("W1.npy", b"")
    with pytest.raises(CheckpointError):
        load_checkpoint(saved.parent / "other.npz")


@pytest.mark.parametrize("entry", ["param.W2", "buffer.running_var1", "optim.m.W1", "order",
                                   "__checkpoint__"])
def test_each_missing_entry_is_named(saved, entry):
    with np.load(saved) as data_:
        arrays = {k: data_[k] for k in data_.files if k != entry}
    np.savez(saved, **arrays)
    with pytest.raises(CheckpointError, match=f"lacks the entry {entry}|batch order"):
        load_checkpoint(saved)


@pytest.mark.parametrize("drop_key", [("network", "config"), ("loop", "rng"),
                                      ("history", "loss")])
def test_each_missing_json_entry_is_named(saved, drop_key):
    _rewrite(saved, lambda m: m[drop_key[0]].pop(drop_key[1]))
    with pytest.raises(CheckpointError, match=f"lacks the entry {'.'.join(drop_key)}"):
        load_checkpoint(saved)


# --------------------------------------------------------------------------- other backends


@pytest.mark.parametrize("kind", ["two-layer", "mlp-nodrop", "mlp"])
def test_a_numpy_run_resumes_on_another_backend(xp, tmp_path, kind):
    net, opt = make(kind, "float64")
    train(net, *data(), **SETUP, optimizer=opt)
    want = {k: np.asarray(v) for k, v in net.params.items()}
    net, opt = make(kind, "float64")
    _interrupting(net, 26)
    train(net, *data(), **SETUP, optimizer=opt, checkpoint=tmp_path / "c.npz")
    state = load_checkpoint(tmp_path / "c.npz")
    if xp.name in ("torch", "cupy") and kind == "mlp":  # another library's generator
        with pytest.warns(CheckpointWarning, match="dropout masks continue from a new"):
            state.build_net(xp=xp.namespace, device=xp.device)
        return
    moved = state.build_net(xp=xp.namespace, device=xp.device)
    opt = state.build_optimizer()
    train(moved, *data(), **SETUP, optimizer=opt, resume_from=state,
          checkpoint=tmp_path / "c.npz")
    for name, value in want.items():
        xp.assert_on(moved.params[name], "float64")
        # atol: the biases ahead of batch norm get no gradient, they hold rounding noise
        np.testing.assert_allclose(xp.to_numpy(moved.params[name]), value, rtol=1e-9,
                                   atol=1e-9, err_msg=name)


def test_trainer_resume_finishes_the_run(tmp_path, capsys):
    x, t, xt, tt = data()
    net, _ = make("mlp", "float32")
    Trainer(net, x, t, xt, tt, epochs=3, mini_batch_size=20, optimizer="adam",
            optimizer_param={"lr": 0.01}, verbose=False).train()
    want = {k: np.asarray(v) for k, v in net.params.items()}
    net, _ = make("mlp", "float32")
    _interrupting(net, 20)
    first = Trainer(net, x, t, xt, tt, epochs=3, mini_batch_size=20, optimizer="adam",
                    optimizer_param={"lr": 0.01}, verbose=False, checkpoint=tmp_path / "c.npz")
    assert first.train().status == "interrupted"
    net, _ = make("mlp", "float32")
    again = Trainer(net, x, t, xt, tt, epochs=3, mini_batch_size=20, optimizer="adam",
                    optimizer_param={"lr": 0.01}, verbose=False)
    history = again.resume(tmp_path / "c.npz")
    assert history.status == "finished"
    assert history.iterations == again.max_iter
    assert len(again.train_loss_list) == again.max_iter
    assert again.final_test_acc is not None
    for name, value in want.items():
        assert np.array_equal(value, np.asarray(net.params[name])), name


# --------------------------------------------------------------------------- the command line

CLI_CHILD = textwrap.dedent('''
    import functools, os, signal, sys
    sys.path.insert(0, {root!r})
    import xpnet.datasets
    from tests.helpers import fake_mnist
    from xpnet.cli import main
    from xpnet.nets import MultiLayerNetExtend

    xpnet.datasets.load_mnist = fake_mnist
    kill_at = int(os.environ.get("KILL_AT", "0"))
    calls = [0]
    gradient = MultiLayerNetExtend.gradient

    @functools.wraps(gradient)
    def killing(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return gradient(self, *args, **kwargs)

    MultiLayerNetExtend.gradient = killing
    sys.exit(main(sys.argv[1:]))
''')

MLP_RUN = ["--model", "mlp", "--batchnorm", "--dropout", "0.2", "--hidden", "30,30",
           "--optimizer", "adam", "--dtype", "float64", "--epochs", "3", "--batch-size", "50",
           "--seed", "4", "--no-plot", "-q"]


def _cli(tmp_path, *argv, kill_at=0):
    script = tmp_path / "cli_child.py"
    script.write_text(CLI_CHILD.format(root=str(ROOT)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "KILL_AT": str(kill_at)}
    return subprocess.run([sys.executable, str(script), "train", *argv], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_run_killed_mid_epoch_resumes_with_the_same_parameters(tmp_path):
    # 600 fake images in batches of 50: 12 steps an epoch, checkpoints after steps 1, 13, 25.
    ref = _cli(tmp_path, *MLP_RUN, "--out", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    run = tmp_path / "run"
    killed = _cli(tmp_path, *MLP_RUN, "--out", str(run), kill_at=20)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert load_checkpoint(run).iteration == 13
    assert not (run / "params.npz").exists()
    resumed = _cli(tmp_path, "--resume", str(run), "-q")
    assert resumed.returncode == 0, resumed.stderr
    with np.load(tmp_path / "ref" / "params.npz") as want, np.load(run / "params.npz") as got:
        for name in want.files:
            if name != "__metadata__":
                assert np.array_equal(want[name], got[name]), name
    full = json.loads((tmp_path / "ref" / "history.json").read_text())
    joined = json.loads((run / "history.json").read_text())
    assert joined["loss"] == full["loss"]
    assert joined["final_test_acc"] == full["final_test_acc"]
    assert joined["iterations"] == 36


def test_cli_resume_refuses_options_that_change_the_run(tmp_path, monkeypatch, capsys):
    from tests.helpers import fake_mnist
    from xpnet import datasets
    from xpnet.cli import main

    monkeypatch.setattr(datasets, "load_mnist", fake_mnist)
    run = tmp_path / "run"
    assert main(["train", "--iters", "5", "--batch-size", "50", "--out", str(run), "-q",
                 "--no-plot"]) == 0
    for extra in (["--seed", "0"], ["--model", "mlp"], ["--dtype=float64"], ["--lr", "1"],
                  ["--batch-s", "20"]):
        capsys.readouterr()
        assert main(["train", "--resume", str(run), *extra]) == 2
        err = capsys.readouterr().err
        assert "--resume continues the run with its own settings" in err
        assert extra[0].split("=")[0] in err or "--batch-size" in err
    assert main(["train", "--resume", str(tmp_path / "nowhere")]) == 2
    (run / CHECKPOINT_NAME).write_bytes(b"PK\x03\x04 torn")
    assert main(["train", "--resume", str(run), "-q"]) == 1
    assert "corrupt or truncated" in capsys.readouterr().err


def test_the_checkpoint_benchmark_runs(tmp_path, capsys):
    from benchmarks import checkpoint as bench

    assert bench.main(["--train-size", "300", "--writes", "2", "--dir", str(tmp_path),
                       "--json", str(tmp_path / "b.json")]) == 0
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [(r["model"], r["dtype"]) for r in rows] == [
        ("two-layer", "float32"), ("two-layer", "float64"), ("mlp-bn", "float32"),
        ("mlp-bn", "float64")]
    assert all(r["write_s"] > 0 and r["bytes"] > 0 for r in rows)
    assert "share" in capsys.readouterr().out


# --------------------------------------------------------------------------- issue 17

# A process that takes a run directory's lock, says so, and holds it until killed.
HOLDER = textwrap.dedent('''
    import sys, time
    sys.path.insert(0, {root!r})
    from xpnet.checkpoint import RunLock
    RunLock(sys.argv[1]).acquire()
    print("held", flush=True)
    time.sleep(120)
''')


@contextlib.contextmanager
def _lock_held_elsewhere(tmp_path, folder):
    """Another process holding ``folder``'s run lock (killed with SIGKILL on exit)."""
    script = tmp_path / "holder.py"
    script.write_text(HOLDER.format(root=str(ROOT)))
    proc = subprocess.Popen([sys.executable, str(script), str(folder)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()


def test_a_run_directory_in_use_is_refused_naming_the_running_process(tmp_path):
    from xpnet.checkpoint import RunInUseError, RunLock

    run = tmp_path / "run"
    run.mkdir()
    with _lock_held_elsewhere(tmp_path, run) as holder:
        with pytest.raises(RunInUseError, match=rf"is in use by another run \(pid {holder.pid} ") \
                as info:
            RunLock(run).acquire()
        assert "holder.py" in str(info.value)  # its command line
        net, opt = make("two-layer", "float64")
        with pytest.raises(RunInUseError):  # train() writing checkpoints there: refused too
            train(net, *data(), **SETUP, optimizer=opt, checkpoint=run / CHECKPOINT_NAME)
        assert not (run / CHECKPOINT_NAME).exists()
    # SIGKILL left the lock file behind; the lock itself went with the process.
    with RunLock(run) as lock:
        assert lock.held
    assert not (run / ".xpnet-run.lock").exists()


def test_the_run_lock_is_reentrant_and_held_while_training(tmp_path):
    from xpnet.checkpoint import RunLock

    run = tmp_path / "run"
    run.mkdir()
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from xpnet.checkpoint import RunInUseError, RunLock
        try:
            RunLock(sys.argv[1]).acquire()
        except RunInUseError as exc:
            print("refused:", exc)
        else:
            print("taken")
    '''))

    def other_process_gets_it():
        done = subprocess.run([sys.executable, str(probe), str(run)], capture_output=True,
                              text=True, timeout=60, check=True)
        return done.stdout.startswith("taken"), done.stdout

    seen = []

    class Probing(TwoLayerNet):
        def gradient(self, *args, **kwargs):
            if not seen:
                seen.append(other_process_gets_it())
            return super().gradient(*args, **kwargs)

    with RunLock(run):  # the command holds it around the loop; the loop takes it again
        net = Probing(20, 8, 5, dtype="float64", seed=3)
        train(net, *data(), **SETUP, optimizer=SGD(lr=0.1), checkpoint=run / CHECKPOINT_NAME)
        assert other_process_gets_it()[0] is False  # still held: the outer hold
    assert seen[0][0] is False, seen
    assert f"pid {os.getpid()}" in seen[0][1]
    assert other_process_gets_it()[0] is True


def test_a_finished_run_extended_from_its_checkpoint_numbers_epochs_as_an_uninterrupted_one(
        tmp_path):
    """Extending a 6-epoch run to 7 gave 9 records (epochs 8 and 9 after 6, the old run's
    evaluation after its last step kept as epoch 7)."""
    kwargs = dict(batch_size=20, seed=5)  # 230 samples: 11 steps an epoch
    net, opt = make("two-layer", "float64")
    ref = train(net, *data(), iters=77, **kwargs, optimizer=opt)
    net, opt = make("two-layer", "float64")
    train(net, *data(), iters=66, **kwargs, optimizer=opt, checkpoint=tmp_path / "c.npz")
    net, opt = make("two-layer", "float64")
    longer = train(net, *data(), iters=77, **kwargs, optimizer=opt,
                   resume_from=load_checkpoint(tmp_path / "c.npz"))
    assert [(e.epoch, e.iteration) for e in longer.epochs] == \
        [(e.epoch, e.iteration) for e in ref.epochs] == [*((k + 1, 11 * k + 1) for k in range(7)),
                                                          (8, 77)]
    assert longer.loss == ref.loss
    assert longer.final_test_acc == ref.final_test_acc


def test_a_finished_trainer_run_checkpoints_its_last_step(tmp_path):
    """Without an evaluation after the last step (the book's Trainer), the checkpoint was the
    last epoch's start: extending the run repeated that epoch's steps."""
    net, _ = make("two-layer", "float64")
    x, t, xt, tt = data()
    trainer = Trainer(net, x, t, xt, tt, epochs=2, mini_batch_size=20, verbose=False,
                      checkpoint=tmp_path / "c.npz")
    trainer.train()
    assert [e.iteration for e in trainer.history.epochs] == [1, 13]  # epochs of 11.5 steps
    assert load_checkpoint(tmp_path / "c.npz").iteration == trainer.max_iter == 23


def test_a_checkpoint_made_for_another_backend_warns_once_from_build_net_and_restore(tmp_path):
    torch = pytest.importorskip("torch")
    net, opt = make("mlp", "float32")
    train(net, *data(), **{**SETUP, "iters": 8}, optimizer=opt, checkpoint=tmp_path / "c.npz")
    state = load_checkpoint(tmp_path / "c.npz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        moved = state.build_net(xp="torch", device=torch.device("cpu"))
        train(moved, *data(), **SETUP, optimizer=state.build_optimizer(), resume_from=state)
    assert [w.category for w in caught] == [CheckpointWarning], [str(w.message) for w in caught]
    # It names the line that called build_net (a bug found by mutation testing: it named a
    # line inside xpnet/checkpoint.py).
    assert caught[0].filename == __file__


# --------------------------------------------------------------------------- hostile and corrupt
# files, the saver's counters and its Ctrl-C state: edges found unguarded by mutation testing.


@pytest.mark.parametrize("entry", ["param.W1", "buffer.running_mean1", "optim.v.b2"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_a_checkpoint_is_refused(saved, entry, bad):
    """A checkpoint whose parameters, running statistics or optimizer state hold NaN or
    infinity does not load (resuming would train on garbage): guards the finite check."""
    with np.load(saved, allow_pickle=False) as data_:
        arrays = {k: data_[k] for k in data_.files}
    arrays[entry] = arrays[entry].copy()
    arrays[entry].flat[1] = bad
    np.savez(saved, **arrays)
    with pytest.raises(CheckpointError, match=f"{entry} is not an array of finite floats"):
        load_checkpoint(saved)


def test_integer_parameters_are_refused(saved):
    with np.load(saved, allow_pickle=False) as data_:
        arrays = {k: data_[k] for k in data_.files}
    arrays["param.b1"] = np.zeros(arrays["param.b1"].shape, dtype=np.int64)
    np.savez(saved, **arrays)
    with pytest.raises(CheckpointError, match=r"param\.b1 is not an array of finite floats"):
        load_checkpoint(saved)


@pytest.mark.parametrize("entry", ["extra", "__checkpoint__"])
def test_object_arrays_are_never_unpickled(saved, entry):
    """An object array (a pickle inside the .npz) is refused, even in an entry the loader does
    not otherwise read and even holding the valid JSON: guards `allow_pickle=False`."""
    with np.load(saved, allow_pickle=False) as data_:
        arrays = {k: data_[k] for k in data_.files}
    if entry == "extra":
        arrays["extra"] = np.array([{"payload": 1}], dtype=object)
    else:
        arrays[entry] = np.array([str(arrays[entry])], dtype=object)[0:1].reshape(())
    np.savez(saved, **arrays)
    with pytest.raises(CheckpointError, match=r"corrupt or truncated \(ValueError: Object "
                                              r"arrays cannot be loaded"):
        load_checkpoint(saved)


def _tamper(saved, meta=None, arrays=None):
    with np.load(saved, allow_pickle=False) as data_:
        have = {k: data_[k] for k in data_.files}
    if meta is not None:
        have["__checkpoint__"] = np.asarray(meta(json.loads(str(have["__checkpoint__"]))))
    if arrays is not None:
        arrays(have)
    np.savez(saved, **have)


def _with(meta, keys, value):
    *path, last = keys
    node = meta
    for key in path:
        node = node[key]
    node[last] = value
    return json.dumps(meta)


@pytest.mark.parametrize(("change", "match"), [
    (lambda m: "{not json", "the __checkpoint__ entry is not valid JSON"),
    (lambda m: json.dumps([m]), "is not an xpnet checkpoint"),
    (lambda m: _with(m, ("format",), "other"), "is not an xpnet checkpoint"),
    (lambda m: _with(m, ("network", "class"), "Perceptron"),
     "network of kind 'Perceptron', which this xpnet cannot build"),
    (lambda m: _with(m, ("network", "config"), []), "which this xpnet cannot build"),
    (lambda m: _with(m, ("network", "params"), ["W1", "b1", "W2", "b2", "W3"]),
     "lacks the parameters|gamma|beta"),
    (lambda m: _with(m, ("network", "config"), {**m["network"]["config"], "activation": "tanh"}),
     "the parameters do not fit a MultiLayerNetExtend"),
    (lambda m: _with(m, ("loop", "rng"), {"bit_generator": "Nothing"}),
     "the batch-order generator state is invalid"),
    (lambda m: _with(m, ("loop", "iteration"), 3), "the history holds 19 losses for 3 iterations"),
    (lambda m: _with(m, ("loop", "order_used"), 10**6),
     "the batch order entry is missing or does not fit"),
    (lambda m: _with(m, ("loop", "order_used"), -1),
     "the batch order entry is missing or does not fit"),
])
def test_tampered_json_is_refused_by_name(saved, change, match):
    """Each check of the JSON entry, with its message."""
    _tamper(saved, meta=change)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(saved)


def test_a_batch_order_of_floats_or_of_two_dimensions_is_refused(saved):
    _tamper(saved, arrays=lambda a: a.update(order=a["order"].astype(np.float64)))
    with pytest.raises(CheckpointError, match="the batch order entry holds float64, not integers"):
        load_checkpoint(saved)
    _tamper(saved, arrays=lambda a: a.update(order=np.stack([a["order"].astype(np.int64)] * 2)))
    with pytest.raises(CheckpointError, match="batch order entry is missing or does not fit"):
        load_checkpoint(saved)


def test_an_intact_checkpoint_loads_with_its_order_and_state(saved):
    saved.rename(saved.parent / CHECKPOINT_NAME)
    state = load_checkpoint(saved.parent)  # a folder: its checkpoint.npz
    assert state.path == saved.parent / CHECKPOINT_NAME
    assert state.order is not None
    assert state.order.dtype == np.int64
    assert state.iteration == len(state.meta["history"]["loss"])
    assert sorted(state.optimizer_state) == ["beta1", "beta2", "iter", "lr", "m", "name", "v"]


def _saver(tmp_path, **kwargs):
    from xpnet.checkpoint import Checkpointer
    from xpnet.training.history import History

    net, opt = make("two-layer", "float64")
    history = History(config={"iters": 10}, backend="numpy", device="cpu", dtype="float64")
    history.iterations = 4
    history.loss[:] = [1.0] * 4
    where = kwargs.pop("path", tmp_path / "run" / "c.npz")
    return Checkpointer(where, net=net, optimizer=opt, history=history,
                        rng=np.random.default_rng(0), batches_per_perm=3,
                        started=time.perf_counter() - 100.0, **kwargs)


def test_the_savers_counters(tmp_path):
    """written, iteration and seconds count the checkpoints written; a permutation used up
    (4 steps since it was drawn, 3 per permutation) is not saved."""
    saver = _saver(tmp_path)
    with saver:
        assert (saver.written, saver.iteration, saver.seconds) == (0, None, 0.0)
        saver.save(np.arange(60), perm_start=0, seconds=1.5)
        assert (saver.written, saver.iteration) == (1, 4)
        assert saver.seconds > 0
        assert 100.0 <= saver.history.wall_time < 1000.0  # since the run's start
        state = load_checkpoint(saver.path)
        assert state.order is None
        assert state.meta["loop"]["order_used"] is None
        assert state.meta["history"]["train_time"] == 1.5
        saver.history.iterations = 5
        saver.history.loss.append(1.0)
        saver.save(np.arange(100), perm_start=3, seconds=2.0)
        assert (saver.written, saver.iteration) == (2, 5)
        state = load_checkpoint(saver.path)
        assert state.meta["loop"]["order_used"] == 2
        np.testing.assert_array_equal(state.order, np.arange(100))
        with np.load(saver.path, allow_pickle=False) as raw:
            assert raw["order"].dtype == np.int32  # half the bytes of int64 where it fits
    assert not saver._lock


def test_a_checkpoint_that_cannot_be_written_warns_once_and_is_not_counted(tmp_path,
                                                                          monkeypatch):
    import xpnet.checkpoint as ckpt

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt, "save_checkpoint", fail)
    saver = _saver(tmp_path)
    with saver:
        with pytest.warns(CheckpointWarning, match="cannot write the checkpoint .*No space") as w:
            saver.save(None, 0, 1.0)
        assert w[0].filename == __file__  # the caller's line, not xpnet's
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            saver.save(None, 0, 1.0)  # once only
        assert (saver.written, saver.iteration, saver.seconds) == (0, None, 0.0)


def test_ctrl_c_state_is_cleared_once_raised_and_the_handler_restored(tmp_path):
    """Ctrl-C during a step sets a flag that the next poll turns into KeyboardInterrupt once;
    the poll after that goes on; leaving restores Python's own SIGINT handler and the lock."""
    saver = _saver(tmp_path)
    saver.poll()  # nothing pending
    with saver:
        assert signal.getsignal(signal.SIGINT) == saver._handler
        signal.raise_signal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            saver.poll()
        try:
            saver.poll()  # cleared: training goes on after a handled interrupt
        except KeyboardInterrupt:
            pytest.fail("the interrupt was raised a second time: its flag was not cleared")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert saver._lock is None
    mine = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        saver.__exit__(None, None, None)  # leaving twice restores nothing the second time
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, mine)
    other = _saver(tmp_path / "other")  # the folder is free again
    other.release()
    assert other._lock is None


def test_without_a_path_the_saver_does_nothing(tmp_path):
    """path=None: no SIGINT handler, no lock, no file, nothing counted."""
    saver = _saver(tmp_path, path=None)
    with saver:
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        saver.save(np.arange(6), 0, 1.0)
        assert (saver.written, saver.iteration) == (0, None)
    assert not list(tmp_path.iterdir())


def test_stale_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = folder / f".c.npz.{child.pid}.abc.tmp"
    live = folder / f".c.npz.{os.getpid()}.abc.tmp"
    odd = folder / ".c.npz.notapid.tmp"
    for path in (dead, live, odd):
        path.write_bytes(b"x")
    _saver(tmp_path).release()
    assert not dead.exists()
    assert live.exists()
    assert odd.exists()


def test_a_network_whose_dropout_never_drew_round_trips(tmp_path):
    """Dropout layers that have not drawn yet have no generator: saved as no group, restored
    as nothing to restore (each draws from its own generator later)."""
    from xpnet.checkpoint import save_checkpoint
    from xpnet.layers import Dropout
    from xpnet.training.history import History

    net, opt = make("mlp", "float64")
    for layer in net.layers.values():
        if isinstance(layer, Dropout):
            layer.rng = None  # as a Dropout(seed=None) of its own before its first draw
    history = History(config={"iters": 10}, backend="numpy", device="cpu", dtype="float64")
    save_checkpoint(tmp_path / "c.npz", net=net, optimizer=opt, history=history,
                    rng=np.random.default_rng(0), order=None, order_used=0)
    state = load_checkpoint(tmp_path / "c.npz")
    assert state.meta["dropout"] == {"groups": [None, None], "states": []}
    moved = state.build_net()
    for name, value in net.params.items():
        np.testing.assert_array_equal(moved.params[name], value)
