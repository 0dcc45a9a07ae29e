"""The command's rough edges of issue 17: one-line errors with the right exit code for every
subcommand, run directories in use, resuming (a finished run, from the checkpoint file, from a
read-only directory), evaluating checkpoints, and messages that name the option and the fix.
On the synthetic MNIST stand-in (the ``mnist`` fixture)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xpnet.checkpoint import CHECKPOINT_NAME, load_checkpoint
from xpnet.cli import main

from .test_checkpoint import _lock_held_elsewhere

ROOT = Path(__file__).resolve().parents[1]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("xpnet: error: "), err
    return err


def _usage_error(capsys, argv) -> str:
    """``main(argv)`` is refused by the parser: exit 2, one message naming the option."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.fixture
def run(request, tmp_path):
    """A finished 2-epoch run directory (600 fake images, batch 100)."""
    request.getfixturevalue("mnist")
    out = tmp_path / "run"
    assert main(["train", "--model", "mlp", "--hidden", "20", "--epochs", "2", "--out", str(out),
                 "-q", "--no-plot"]) == 0
    return out


# --------------------------------------------------------------------------- item 11


@pytest.mark.parametrize("text", ["100,,10", "100,0", ",100", "100,", "100,-5"])
def test_empty_or_zero_hidden_widths_are_refused(capsys, text):
    line = _usage_error(capsys, ["train", "--model", "mlp", f"--hidden={text}"])
    assert "argument --hidden: must be positive layer widths separated by commas" in line
    assert repr(text) in line


@pytest.mark.usefixtures("mnist")
def test_a_batch_larger_than_the_training_set_is_one_line(tmp_path, capsys):
    assert main(["train", "--batch-size", "700", "--out", str(tmp_path / "r"), "-q"]) == 2
    err = _one_error_line(capsys)
    assert "--batch-size 700 is larger than the training set (600 images)" in err


@pytest.mark.usefixtures("mnist")
def test_every_value_error_of_the_setup_is_one_line(tmp_path, capsys, monkeypatch):
    import xpnet.training

    def refuse(*args, **kwargs):
        raise ValueError("a check inside train() failed")

    monkeypatch.setattr(xpnet.training, "train", refuse)
    assert main(["train", "--iters", "3", "--out", str(tmp_path / "r"), "-q"]) == 2
    assert "a check inside train() failed" in _one_error_line(capsys)


@pytest.mark.usefixtures("mnist")
@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_torch_cuda_on_a_cpu_only_torch_is_one_line(tmp_path, capsys, command, run):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this torch can use CUDA: cuda:0 is no error here")
    argv = {"train": ["train", "--out", str(tmp_path / "r")],
            "evaluate": ["evaluate", str(run / "params.npz")]}[command]
    capsys.readouterr()
    assert main([*argv, "--backend", "torch", "--device", "cuda:0"]) == 2
    assert f"this torch ({torch.__version__}) cannot use CUDA" in _one_error_line(capsys)


@pytest.mark.parametrize("command", [["train"], ["gradcheck"], ["evaluate", "p.npz"],
                                     ["data", "fetch", "mnist"]])
def test_a_data_dir_that_does_not_exist_is_refused(tmp_path, capsys, command):
    missing = tmp_path / "nowhere"
    line = _usage_error(capsys, [*command, "--data-dir", str(missing)])
    assert f"argument --data-dir: no such folder: {missing}" in line


def test_graph_out_that_cannot_be_written_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["graph", "apple", "--out", str(blocker / "apple.dot")]) == 2
    err = _one_error_line(capsys)
    assert f"{blocker} is a file, not a folder; choose another --out" in err
    assert blocker.read_text() == "not a folder"


def test_graph_write_errors_are_one_line(tmp_path, capsys, monkeypatch):
    """Any OSError of writing the picture (a full disk, a read-only folder: root writes
    anywhere, so it is raised here by hand) is one line, exit 2."""
    from xpnet import graph

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "apple.dot"))

    monkeypatch.setattr(graph, "render_example", full_disk)
    assert main(["graph", "apple", "--out", str(tmp_path / "apple.dot")]) == 2
    assert "cannot write" in _one_error_line(capsys)


# --------------------------------------------------------------------------- item 12


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--lr", "abc", "must be a positive number, got 'abc'"),
    ("--lr", "-1", "must be a positive number, got '-1'"),
    ("--lr", "inf", "must be a positive number, got 'inf'"),
    ("--iters", "ten", "must be a positive integer, got 'ten'"),
    ("--batch-size", "1.5", "must be a positive integer, got '1.5'"),
    ("--seed", "-1", "must be an integer >= 0, got '-1'"),
    ("--seed", "x", "must be an integer >= 0, got 'x'"),
    ("--weight-decay", "-0.1", "must be a number >= 0, got '-0.1'"),
    ("--threads", "0", "must be a positive integer, got '0'"),
    ("--threads", "1.5", "must be a positive integer, got '1.5'"),
])
def test_bad_values_name_the_option_and_what_it_takes(capsys, option, value, says):
    line = _usage_error(capsys, ["train", f"{option}={value}"])
    assert f"argument {option}: {says}" in line
    assert "_positive" not in line
    assert "invalid" not in line


@pytest.mark.usefixtures("mnist")
def test_evaluate_a_text_file_does_not_quote_numpys_pickle_advice(capsys):
    assert main(["evaluate", str(ROOT / "README.md")]) == 1
    err = _one_error_line(capsys)
    assert "README.md is not an .npz archive" in err
    assert "allow_pickle" not in err


def test_evaluate_a_checkpoint_or_a_run_directory(run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(run / "params.npz")]) == 0
    from_params = capsys.readouterr().out
    assert main(["evaluate", str(run / CHECKPOINT_NAME)]) == 0
    from_checkpoint = capsys.readouterr().out
    assert "the checkpoint at iteration 12" in from_checkpoint
    # The checkpoint of a finished run holds the final parameters.
    accuracies = from_params.split(": ", 1)[1].split("(")[0]
    assert accuracies in from_checkpoint
    (run / "params.npz").unlink()
    assert main(["evaluate", str(run)]) == 0  # a run directory: its checkpoint now
    assert accuracies in capsys.readouterr().out


# --------------------------------------------------------------------------- item 13

USAGE, FAILED = 2, 1


def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


@pytest.mark.usefixtures("mnist")
def test_exit_codes_are_the_same_for_every_subcommand(run, tmp_path, capsys):
    """2: the command line is wrong (a path that does not exist or is not of the kind named);
    1: the work failed (a damaged file, a diverged run)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 torn")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / CHECKPOINT_NAME).write_bytes(b"PK\x03\x04 torn")
    cases = [
        (["train", "--resume", str(tmp_path / "nowhere")], USAGE),
        (["train", "--resume", str(empty)], USAGE),  # was 1: a folder without a checkpoint
        (["evaluate", str(tmp_path / "nowhere.npz")], USAGE),  # was 1
        (["evaluate", str(empty)], USAGE),
        (["gradcheck", "--data-dir", str(tmp_path / "nowhere")], USAGE),
        (["graph", "apple", "--out", str(garbage / "x.dot")], USAGE),
        (["train", "--iters", "0"], USAGE),
        (["train", "--resume", str(broken), "-q"], FAILED),
        (["evaluate", str(garbage)], FAILED),
        (["evaluate", str(broken / CHECKPOINT_NAME)], FAILED),
        (["train", "--lr", "1e6", "--out", str(tmp_path / "div"), "-q", "--no-plot"], FAILED),
    ]
    got = [(argv, _exit_code(argv)) for argv, _ in cases]
    assert got == cases


# --------------------------------------------------------------------------- item 3


@pytest.mark.usefixtures("mnist")
def test_a_diverged_run_exits_1_and_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--lr", "1e6", "--out", str(out), "-q", "--no-plot"]) == 1
    err = _one_error_line(capsys)
    assert "training diverged: the loss grew from" in err
    assert "try a smaller one than lr=1e+06" in err
    history = json.loads((out / "history.json").read_text())
    assert history["status"] == "diverged"
    assert not (out / "params.npz").exists()


# --------------------------------------------------------------------------- item 4


@pytest.mark.usefixtures("mnist")
def test_a_second_run_into_a_directory_in_use_is_refused_naming_the_first(tmp_path, capsys,
                                                                          monkeypatch):
    import xpnet.training

    out = tmp_path / "run"
    out.mkdir()

    def refuse(*args, **kwargs):
        raise AssertionError("training started in a run directory in use")

    monkeypatch.setattr(xpnet.training, "train", refuse)
    with _lock_held_elsewhere(tmp_path, out) as holder:
        assert main(["train", "--iters", "3", "--out", str(out), "-q"]) == 1
        err = _one_error_line(capsys)
        assert f"--out {out} is in use by another run (pid {holder.pid}" in err
        assert "holder.py" in err
        assert "wait for it to finish, or choose another folder" in err
        assert main(["train", "--resume", str(out)]) == 2  # no checkpoint there yet
    assert not list(out.iterdir()) or [p.name for p in out.iterdir()] == [".xpnet-run.lock"]


@pytest.mark.usefixtures("mnist")
def test_the_command_holds_the_lock_until_the_run_is_written(tmp_path, monkeypatch):
    import xpnet.cli.run
    import xpnet.training

    out = tmp_path / "run"
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from xpnet.checkpoint import RunInUseError, RunLock
        try:
            RunLock(sys.argv[1]).acquire()
        except RunInUseError:
            print("refused")
        else:
            print("taken")
    '''))

    def other_process() -> str:
        return subprocess.run([sys.executable, str(probe), str(out)], capture_output=True,
                              text=True, timeout=60, check=True).stdout.strip()

    seen = {}
    real_train, real_write = xpnet.training.train, xpnet.cli.run._write_run

    def train(*args, **kwargs):
        seen["training"] = other_process()
        return real_train(*args, **kwargs)

    def write_run(*args, **kwargs):
        seen["writing"] = other_process()
        return real_write(*args, **kwargs)

    monkeypatch.setattr(xpnet.training, "train", train)
    monkeypatch.setattr(xpnet.cli.run, "_write_run", write_run)
    assert main(["train", "--iters", "3", "--out", str(out), "-q", "--no-plot"]) == 0
    assert seen == {"training": "refused", "writing": "refused"}
    assert other_process() == "taken"


# --------------------------------------------------------------------------- items 5, 6


def test_extending_a_finished_run_numbers_its_epochs_as_an_uninterrupted_run(run, tmp_path,
                                                                             capsys):
    ref = tmp_path / "ref"
    assert main(["train", "--model", "mlp", "--hidden", "20", "--epochs", "3", "--out",
                 str(ref), "-q", "--no-plot"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "epoch  3  iter     13" in out
    assert "epoch  4" not in out
    want = json.loads((ref / "history.json").read_text())
    got = json.loads((run / "history.json").read_text())
    assert [(e["epoch"], e["iteration"]) for e in got["epochs"]] == \
        [(e["epoch"], e["iteration"]) for e in want["epochs"]] == [(1, 1), (2, 7), (3, 13),
                                                                   (4, 18)]
    assert got["loss"] == want["loss"]


@pytest.mark.usefixtures("mnist")
def test_a_checkpoint_warning_prints_once_as_one_line(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "run"
    assert main(["train", "--model", "mlp", "--hidden", "20", "--dropout", "0.2", "--epochs", "1",
                 "--out", str(out), "-q", "--no-plot"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--epochs", "2", "--backend", "torch",
                 "-q", "--no-plot"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["xpnet: warning: the checkpoint's dropout generator is of 'numpy'; on 'torch' "
                   "the dropout masks continue from a new generator"]


def test_resume_takes_the_checkpoint_file_too(run, capsys):
    capsys.readouterr()
    assert main(["train", "--resume", str(run / CHECKPOINT_NAME), "--epochs", "3", "-q",
                 "--no-plot"]) == 0
    assert load_checkpoint(run).iteration == 18


def _unwritable(monkeypatch, folder: Path) -> None:
    """Writing into ``folder`` fails with EACCES (root writes anywhere: chmod proves nothing
    here, so the write probe is refused by hand)."""
    import xpnet._files

    real = xpnet._files.temp_path_beside

    def probe(path):
        if Path(path).parent == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(xpnet._files, "temp_path_beside", probe)


def test_a_read_only_run_directory_gives_advice_that_can_be_followed(run, tmp_path, capsys,
                                                                     monkeypatch):
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    _unwritable(monkeypatch, run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "3", "-q"]) == 2
    err = _one_error_line(capsys)
    assert f"--resume {run}: cannot write there (Permission denied)" in err
    advice = f"xpnet train --resume {run} --out NEW_DIR"
    assert advice in err
    # Follow it: the run goes on in the new folder, the old one stays as it was.
    new = tmp_path / "continued"
    argv = [*advice.split()[1:-1], str(new), "--epochs", "3", "-q", "--no-plot"]
    assert main(argv) == 0
    assert load_checkpoint(new).iteration == 18
    assert json.loads((new / "history.json").read_text())["iterations"] == 18
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_resume_out_refuses_a_folder_holding_another_run(run, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(["train", "--iters", "2", "--out", str(other), "-q", "--no-plot"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--out", str(other)]) == 2
    assert "holds another run's checkpoint" in _one_error_line(capsys)


def test_a_read_only_run_directory_for_real(run):
    import os

    run.chmod(0o500)
    try:
        if os.access(run, os.W_OK):
            pytest.skip("running as root, who can write into a 0o500 folder: the refusal is "
                        "tested with a refused write probe above")
        assert main(["train", "--resume", str(run), "--epochs", "3", "-q"]) == 2
    finally:
        run.chmod(0o700)


# --------------------------------------------------------------------------- item 14


def test_the_command_help_names_the_books_networks_and_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "chapter-5 backprop network" not in text
    assert "chapters 5 to 8" in text
    assert "exit codes: 0 done; 1 the work failed" in text


@pytest.mark.usefixtures("mnist")
@pytest.mark.parametrize(("epochs", "header"), [("1", "1 epoch (6 iterations)"),
                                                ("2", "2 epochs (12 iterations)")])
def test_one_epoch_is_singular(tmp_path, capsys, epochs, header):
    assert main(["train", "--epochs", epochs, "--out", str(tmp_path / "r"), "--no-plot"]) == 0
    assert f"  {header}, batch 100" in capsys.readouterr().out

