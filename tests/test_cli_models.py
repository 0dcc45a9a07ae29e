"""``xpnet train`` / ``xpnet gradcheck`` with the chapter-6 to 8 models and optimizers, on the
synthetic MNIST stand-in (the ``mnist`` fixture; real MNIST: project/test_mnist_models.py)."""

from __future__ import annotations

import json

import pytest

from xpnet.cli import main


def _train(tmp_path, *args):
    out = tmp_path / "run"
    code = main(["train", *args, "--out", str(out), "--quiet", "--no-plot"])
    return code, out


@pytest.mark.usefixtures("mnist")
def test_mlp_with_every_option_trains_and_records_them(tmp_path, capsys):
    code, out = _train(tmp_path, "--model", "mlp", "--hidden", "30,20", "--activation",
                       "sigmoid", "--weight-init", "xavier", "--batchnorm", "--dropout", "0.1",
                       "--weight-decay", "0.01", "--optimizer", "Adam", "--lr", "0.01",
                       "--epochs", "3", "--batch-size", "50", "--seed", "4")
    assert code == 0
    history = json.loads((out / "history.json").read_text())
    assert history["config"]["model"] == "MultiLayerNetExtend"
    assert history["config"]["optimizer"] == {"name": "adam", "lr": 0.01, "beta1": 0.9,
                                              "beta2": 0.999}
    assert history["iterations"] == 3 * 600 // 50
    assert len(history["epochs"]) == 4  # steps 1, 13, 25 and the last
    assert history["final_test_acc"] > 0.8
    meta = json.loads(json.dumps(history))  # JSON all the way down
    assert meta["config"]["sizes"] == [784, 30, 20, 10]
    # The run directory's network comes back with its options and batch-norm statistics.
    from xpnet.io import load_net

    net = load_net(out / "params.npz")
    assert net.config() == {"activation": "sigmoid", "weight_decay_lambda": 0.01,
                            "use_dropout": True, "dropout_ration": 0.1, "use_batchnorm": True}
    assert all(v is not None for v in net.buffers().values())
    capsys.readouterr()
    assert main(["evaluate", str(out / "params.npz")]) == 0
    assert f"test acc {history['final_test_acc']:.4f}" in capsys.readouterr().out


@pytest.mark.usefixtures("mnist")
@pytest.mark.parametrize(("optimizer", "lr"), [("sgd", 0.01), ("momentum", 0.01),
                                               ("nesterov", 0.01), ("adagrad", 0.01),
                                               ("rmsprop", 0.01), ("adam", 0.001)])
def test_each_optimizer_gets_its_book_default_lr(tmp_path, optimizer, lr):
    code, out = _train(tmp_path, "--model", "mlp", "--hidden", "20", "--optimizer", optimizer,
                       "--iters", "5", "--batch-size", "50")
    assert code == 0
    config = json.loads((out / "history.json").read_text())["config"]
    assert config["optimizer"]["name"] == optimizer
    assert config["lr"] == lr


@pytest.mark.usefixtures("mnist")
def test_two_layer_default_is_still_the_books_chapter_5_run(tmp_path):
    code, out = _train(tmp_path, "--iters", "3")
    assert code == 0
    config = json.loads((out / "history.json").read_text())["config"]
    assert config["model"] == "TwoLayerNet"
    assert config["optimizer"] == {"name": "sgd", "lr": 0.1}
    assert config["sizes"] == [784, 50, 10]


@pytest.mark.usefixtures("mnist")
def test_simple_convnet_trains_from_the_command(tmp_path):
    code, out = _train(tmp_path, "--model", "simple-convnet", "--optimizer", "adam",
                       "--iters", "4", "--batch-size", "20")
    assert code == 0
    history = json.loads((out / "history.json").read_text())
    assert history["config"]["model"] == "SimpleConvNet"
    assert history["iterations"] == 4


@pytest.mark.parametrize(("args", "message"), [
    (["--batchnorm"], "--batchnorm goes with --model mlp"),
    (["--batchnorm", "--dropout", "0.2"], "--batchnorm, --dropout go with --model mlp"),
    (["--model", "simple-convnet", "--hidden", "10"], "--hidden goes with --model mlp"),
    (["--model", "mlp", "--hidden-size", "10"], "--hidden-size goes with --model two-layer"),
    (["--model", "mlp", "--dropout", "1.5"], "--dropout must lie in"),
])
def test_options_that_do_not_fit_the_model_are_refused(tmp_path, capsys, args, message):
    code, out = _train(tmp_path, *args)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (out / "history.json").exists()


@pytest.mark.parametrize(("command", "args", "message"), [
    ("train", ["--batch-size", "1"],
     "--batchnorm needs --batch-size 2 or more (got 1): batch normalization normalizes each "
     "feature over the batch, and one sample is its own mean"),
    ("gradcheck", ["--samples", "1"], "--batchnorm needs --samples 2 or more (got 1)"),
])
def test_batchnorm_on_one_sample_is_refused_up_front(tmp_path, capsys, monkeypatch, command,
                                                     args, message):
    """BatchNormalization refuses a training batch of one (its output would be beta): the
    command says so in one line, exit 2, before it loads data or makes a run directory."""
    import xpnet.cli.commands
    import xpnet.cli.run

    def no_data(*_a, **_k):
        raise AssertionError("the refusal must come before the data is loaded")

    # each subcommand's module calls it by the name it imported
    monkeypatch.setattr(xpnet.cli.run, "_load_mnist", no_data)
    monkeypatch.setattr(xpnet.cli.commands, "_load_mnist", no_data)
    out = tmp_path / "run"
    extra = ["--out", str(out)] if command == "train" else []
    assert main([command, "--model", "mlp", "--batchnorm", *args, *extra]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"xpnet: error: {message}")
    assert captured.err.count("\n") == 1  # one line
    assert captured.out == ""
    assert not out.exists()


def test_batchnorm_under_mpi_needs_two_samples_per_process():
    """``mpiexec -n 2 xpnet train --batchnorm --batch-size 3``: one process would get one
    sample; the check the command runs once it knows the number of processes refuses it."""
    import argparse

    from xpnet.cli.common import CLIError
    from xpnet.cli.run import _check_batchnorm_batch

    args = argparse.Namespace(batchnorm=True, batch_size=3)
    with pytest.raises(CLIError, match=r"^--batchnorm needs 2 or more samples per process: "
                                       r"--batch-size 3 split across 2 processes gives 1; use "
                                       r"--batch-size 4 or more$") as exc:
        _check_batchnorm_batch(args, 2)
    assert exc.value.code == 2
    _check_batchnorm_batch(argparse.Namespace(batchnorm=True, batch_size=4), 2)
    _check_batchnorm_batch(argparse.Namespace(batchnorm=False, batch_size=1), 1)


@pytest.mark.parametrize(("args", "message"), [
    (["--iters", "5", "--epochs", "2"], "not allowed with argument"),
    (["--hidden", "10,x"], "layer widths"),
    (["--weight-init", "glorot"], "relu, he, sigmoid, xavier"),
    (["--optimizer", "adamw"], "invalid choice"),
])
def test_bad_option_values_are_usage_errors(capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--model", "mlp", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.usefixtures("mnist")
@pytest.mark.parametrize("model", [
    ["--model", "mlp", "--hidden", "12,10", "--batchnorm", "--dropout", "0.3",
     "--weight-decay", "0.1"],
    ["--model", "simple-convnet", "--samples", "2"],
])
def test_gradcheck_of_the_new_models_passes(capsys, model):
    assert main(["gradcheck", "--mode", "fast", *model]) == 0
    table = capsys.readouterr().out
    assert "gamma1" in table or "(30, 1, 5, 5)" in table
    assert "FAIL" not in table


@pytest.mark.usefixtures("mnist")
def test_eval_samples_evaluates_epochs_on_a_subset_and_the_end_on_the_whole_test_set(tmp_path):
    code, out = _train(tmp_path, "--model", "mlp", "--hidden", "20", "--iters", "30",
                       "--batch-size", "50", "--eval-samples", "40")
    assert code == 0
    history = json.loads((out / "history.json").read_text())
    assert history["config"]["eval_samples"] == 40
    # Epoch evaluations (after steps 1, 13, 25; none after the last step) on 40 images...
    assert [e["iteration"] for e in history["epochs"]] == [1, 13, 25]
    for e in history["epochs"]:
        assert round(e["test_acc"] * 40, 9) == round(e["test_acc"] * 40)
        assert round(e["train_acc"] * 40, 9) == round(e["train_acc"] * 40)
    # ...the final accuracy on the whole test set, that of the saved parameters.
    import xpnet.datasets
    from xpnet.io import load_net

    _, (x_test, t_test) = xpnet.datasets.load_mnist()
    assert history["final_test_acc"] == load_net(out / "params.npz").accuracy(x_test, t_test)
