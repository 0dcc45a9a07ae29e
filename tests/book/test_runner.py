"""xpnet.book.runner and ``xpnet book``: refusals (on a clone made here, no book needed), the
import hook, and the book's scripts, unedited, on NumPy, PyTorch (CPU), array-api-strict's
device1 and the fake CuPy (those need ``$XPNET_BOOK_DIR`` and the MNIST files)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xpnet.book import BookRunError, RunSettings, run_script
from xpnet.book.modules import MODULES
from xpnet.cli import main
from xpnet.datasets.mnist import mnist_paths

from ..helpers import book_path

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = {"numpy": [], "torch": ["--backend", "torch", "--device", "cpu"],
            "strict-device1": ["--backend", "array_api_strict", "--device", "device1"]}


def _clone(tmp_path: Path, script: str, source: str, extra: dict[str, str] | None = None) -> Path:
    """A folder shaped like the book's clone (common/, dataset/) holding one script."""
    root = tmp_path / "clone"
    for folder in ("common", "dataset", "ch05"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / script).write_text(source)
    for name, text in (extra or {}).items():
        (root / name).write_text(text)
    return root / script


def _xpnet(*args: str, cwd: Path, env: dict[str, str] | None = None,
           timeout: float = 600) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg", **(env or {})}
    full.pop("DISPLAY", None)
    return subprocess.run([sys.executable, "-m", "xpnet", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=timeout, check=False)


# ----------------------------------------------------------------------------- refusals


def test_a_script_outside_a_clone_is_a_command_line_error(tmp_path, capsys):
    script = tmp_path / "alone.py"
    script.write_text("print('ran')\n")
    assert main(["book", str(script)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"xpnet: error: {script} is not inside a clone of the book's "
                          "repository")
    assert "git clone https://github.com/oreilly-japan/deep-learning-from-scratch" in err
    assert main(["book", str(tmp_path / "missing.py")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize(("source", "named"), [
    ("from common.gradient import numerical_gradient_2d\n",
     "common.gradient.numerical_gradient_2d"),
    ("import common.nothing_here\n", "common.nothing_here is a module of the book's code"),
    ("from dataset.mnist import init_mnist\n", "dataset.mnist.init_mnist"),
    ("import awesome_net\n", "the script imports awesome_net (ch05/awesome_net.py"),
])
def test_what_xpnet_does_not_provide_is_named(tmp_path, capsys, source, named):
    script = _clone(tmp_path, "ch05/s.py", "import sys, os\nsys.path.append(os.pardir)\n"
                    + source, {"ch05/awesome_net.py": "raise SystemExit('the book ran')\n"})
    assert main(["book", "--out", str(tmp_path / "out"), str(script)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("xpnet: error: "), err
    assert named in err, err
    assert "never the book's" in err
    assert "common" not in sys.modules
    assert "awesome_net" not in sys.modules


def test_a_package_xpnet_does_not_install_is_named(tmp_path, capsys):
    script = _clone(tmp_path, "ch05/s.py", "import no_such_package_for_xpnet\n")
    assert main(["book", str(script)]) == 1
    assert ("the script needs the package 'no_such_package_for_xpnet', which xpnet does not "
            "install: pip install no_such_package_for_xpnet") in capsys.readouterr().err


def test_the_runner_sets_the_scene_and_puts_everything_back(tmp_path, capsys):
    script = _clone(tmp_path, "ch05/s.py", (
        "import sys, os\nsys.path.append(os.pardir)\n"
        "import numpy as np\nfrom common.optimizer import *\nfrom layer_naive import MulLayer\n"
        "import matplotlib.pyplot as plt\n"
        "print('cwd', os.getcwd()); print('path0', sys.path[0]); print('argv', sys.argv[1:])\n"
        "print('np', np is __import__('numpy'), SGD.__module__, MulLayer().forward(2, 3))\n"
        "plt.plot([1, 2]); plt.show()\n"))
    before = (os.getcwd(), list(sys.path), list(sys.argv), list(sys.meta_path))
    run_script(script, RunSettings(out=tmp_path / "out", args=("a", "b")))
    out = capsys.readouterr().out
    assert f"cwd {script.parent}" in out
    assert f"path0 {script.parent}" in out
    assert "argv ['a', 'b']" in out
    assert "np True common.optimizer 6" in out
    assert f"xpnet book: figure saved to {tmp_path / 'out' / 's-1.png'}" in out
    assert (tmp_path / "out" / "s-1.png").stat().st_size > 0
    assert before == (os.getcwd(), list(sys.path), list(sys.argv), list(sys.meta_path))
    assert not [k for k in sys.modules if k.partition(".")[0] in MODULES]


def test_threads_are_set_for_the_script_and_put_back(tmp_path, capsys):
    from xpnet.blas_threads import get_threads

    script = _clone(tmp_path, "ch05/s.py", "import xpnet\nprint('threads', xpnet.get_threads())\n")
    before = get_threads()
    for n in (1, 3):
        assert main(["book", "--threads", str(n), "--out", str(tmp_path / "out"),
                     str(script)]) == 0
        assert f"threads {n}\n" in capsys.readouterr().out
        assert get_threads() == before


def test_the_scripts_own_exit_code_is_the_commands(tmp_path, capsys):
    script = _clone(tmp_path, "ch05/s.py", "raise SystemExit(3)\n")
    assert main(["book", str(script)]) == 3
    script.write_text("import sys\nsys.exit('no data here')\n")  # a message: printed, exit 1
    assert main(["book", str(script)]) == 1
    assert capsys.readouterr().err == "no data here\n"
    script.write_text("import sys\nsys.exit()\n")
    assert main(["book", str(script)]) == 0
    with pytest.raises(BookRunError, match=r"^is a folder, not a script: ") as caught:
        run_script(tmp_path / "clone" / "common")
    assert caught.value.code == 2


# ----------------------------------------------------------------------------- the book


def _needs_mnist() -> None:
    if not all(p.exists() for p in mnist_paths().values()):
        pytest.skip("needs the MNIST files in xpnet's cache: run `xpnet data fetch mnist`")


def _run_book(tmp_path: Path, script: str, backend: str, max_train: int,
              *extra: str) -> subprocess.CompletedProcess[str]:
    path = book_path(script)
    result = _xpnet("book", *BACKENDS[backend], "--max-train", str(max_train), "--out",
                    str(tmp_path / "out"), *extra, str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


QUICK = [  # (script, --max-train, what its output shows)
    ("ch05/buy_apple.py", 100, "price: 220"),
    ("ch05/buy_apple_orange.py", 100, "price: 715"),
    ("ch06/optimizer_compare_naive.py", 100, "figure saved to"),
    ("ch07/gradient_check.py", 100, "b3 "),
    ("ch07/visualize_filter.py", 100, "visualize_filter-2.png"),
    ("ch07/apply_filter.py", 100, "apply_filter-2.png"),
    ("ch08/half_float_network.py", 600, "caluculate accuracy (float16)"),
    ("ch08/misclassified_mnist.py", 600, "test accuracy:"),
    ("ch06/overfit_weight_decay.py", 600, "epoch:200"),  # training scripts of 5-10 s
    ("ch06/overfit_dropout.py", 600, "Final Test Accuracy"),
]
SLOW = [
    ("ch05/gradient_check.py", 100, "b2:"),
    ("ch05/train_neuralnet.py", 1000, "0."),
    ("ch06/optimizer_compare_mnist.py", 500, "Adam:"),
    ("ch06/weight_init_compare.py", 500, "He:"),
    ("ch06/batch_norm_test.py", 1000, "epoch:19"),
    ("ch06/batch_norm_gradient_check.py", 100, "beta2:"),
    ("ch06/hyperparameter_optimization.py", 600, "Best-1"),
    ("ch07/train_convnet.py", 200, "Final Test Accuracy"),
    ("ch08/train_deepnet.py", 100, "Final Test Accuracy"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("script", "max_train", "shows"), QUICK)
def test_a_quick_script_runs_unedited(tmp_path, script, max_train, shows, backend):
    if backend == "torch":
        pytest.importorskip("torch", reason="the torch backend needs torch")
    if script not in ("ch05/buy_apple.py", "ch05/buy_apple_orange.py",
                      "ch06/optimizer_compare_naive.py", "ch07/gradient_check.py",
                      "ch07/visualize_filter.py", "ch07/apply_filter.py"):
        _needs_mnist()
    result = _run_book(tmp_path, script, backend, max_train)
    assert shows in result.stdout, result.stdout[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("script", "max_train", "shows"), SLOW)
def test_a_training_script_runs_unedited(tmp_path, script, max_train, shows, backend):
    if backend == "torch":
        pytest.importorskip("torch", reason="the torch backend needs torch")
    _needs_mnist()
    result = _run_book(tmp_path, script, backend, max_train)
    assert shows in result.stdout, result.stdout[-2000:]


def test_scripts_run_on_the_fake_cupy(tmp_path):
    """The CuPy code paths (``PYTHONPATH=tests/fakecupy``; the GPU check runs the real one)."""
    for script in ("ch07/gradient_check.py", "ch07/visualize_filter.py"):
        path = book_path(script)
        result = _xpnet("book", "--backend", "cupy", "--out", str(tmp_path / "out"), str(path),
                        cwd=tmp_path, env={"PYTHONPATH": str(ROOT / "tests" / "fakecupy")})
        assert result.returncode == 0, result.stderr[-3000:]


# ----------------------------------------------------------------------------- never the book's


def _copy_clone(tmp_path: Path) -> Path:
    source = book_path("common").parent
    copy = tmp_path / "book"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns(".git", "notebooks"))
    return copy


def test_the_books_own_code_never_runs(tmp_path):
    """Every module of the book a script could import raises on import; the scripts still run
    (and, as a check of the check, plain python fails on them)."""
    copy = _copy_clone(tmp_path)
    bomb = "raise RuntimeError('the book\\'s own code ran')\n"
    for path in [*copy.glob("common/*.py"), *copy.glob("dataset/*.py"),
                 *(copy / name for name in ("ch05/layer_naive.py", "ch05/two_layer_net.py",
                                            "ch07/simple_convnet.py", "ch08/deep_convnet.py"))]:
        path.write_text(bomb)
    files = sorted(copy.rglob("*"))
    for script in ("ch05/buy_apple.py", "ch06/optimizer_compare_naive.py",
                   "ch07/gradient_check.py", "ch07/visualize_filter.py"):
        result = _xpnet("book", "--out", str(tmp_path / "out"), str(copy / script),
                        cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        plain = subprocess.run([sys.executable, script.split("/")[1]], cwd=copy / script.split(
            "/")[0], capture_output=True, text=True, check=False,
            env={**os.environ, "MPLBACKEND": "Agg"})
        assert "the book's own code ran" in plain.stderr
    assert sorted(copy.rglob("*")) == files, "nothing is written into the clone"


# ----------------------------------------------------------------------------- same numbers


def _book_with_mnist(tmp_path: Path, n: int) -> Path:
    """A copy of the clone whose own ``dataset/mnist.py`` finds ``mnist.pkl``: the same IDX
    data as xpnet reads, cut as ``--max-train n`` cuts it."""
    import pickle

    from xpnet.datasets import load_mnist

    copy = _copy_clone(tmp_path)
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=False)
    n_test = -(-n * len(x_test) // len(x_train))
    data = {"train_img": x_train[:n], "train_label": t_train[:n],
            "test_img": x_test[:n_test], "test_label": t_test[:n_test]}
    with open(copy / "dataset" / "mnist.pkl", "wb") as handle:
        pickle.dump(data, handle)  # the book's own format, for the book's own loader
    return copy


def _book_original(copy: Path, script: str, seed: int) -> str:
    folder, name = script.split("/")
    code = (f"import sys, runpy, numpy as np; np.random.seed({seed}); "
            f"sys.path.insert(0, '.'); sys.argv = [{name!r}]; "
            f"runpy.run_path({name!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], cwd=copy / folder, capture_output=True,
                            text=True, check=False, timeout=900,
                            env={**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
                                 "OPENBLAS_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _numbers(text: str) -> list[list[float]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("xpnet book:"):
            continue
        fields = line.replace(":", " ").split()
        rows.append([float(f) for f in fields if f.replace(".", "").replace("e-", "")
                     .replace("-", "").isdigit()])
    return rows


def test_gradient_check_prints_the_books_numbers(tmp_path):
    _needs_mnist()
    copy = _book_with_mnist(tmp_path, 600)
    theirs = _numbers(_book_original(copy, "ch05/gradient_check.py", 0))
    ours = _numbers(_run_book(tmp_path, "ch05/gradient_check.py", "numpy", 600,
                              "--seed", "0").stdout)
    assert len(ours) == len(theirs) == 4
    np.testing.assert_allclose(np.array(ours), np.array(theirs), rtol=1e-6)


@pytest.mark.slow
def test_train_neuralnet_prints_the_books_accuracies(tmp_path):
    _needs_mnist()
    copy = _book_with_mnist(tmp_path, 600)
    theirs = _numbers(_book_original(copy, "ch05/train_neuralnet.py", 0))
    ours = _numbers(_run_book(tmp_path, "ch05/train_neuralnet.py", "numpy", 600,
                              "--seed", "0").stdout)
    assert len(ours) == len(theirs) > 100
    assert ours[:50] == theirs[:50]  # the first 300 steps: the same accuracies, exactly
