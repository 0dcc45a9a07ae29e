"""xpnet.book.modules: every module and name the book's scripts import is xpnet's, and what
xpnet leaves out of the book's modules is exactly what it says it leaves out."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from xpnet.book import nets
from xpnet.book.modules import MODULES, BookImportError, DataSettings, _cut, make_module

from ..helpers import book_path

SCRIPTS = [
    "ch05/buy_apple.py", "ch05/buy_apple_orange.py", "ch05/gradient_check.py",
    "ch05/train_neuralnet.py", "ch06/optimizer_compare_naive.py",
    "ch06/optimizer_compare_mnist.py", "ch06/weight_init_compare.py", "ch06/batch_norm_test.py",
    "ch06/batch_norm_gradient_check.py", "ch06/overfit_weight_decay.py",
    "ch06/overfit_dropout.py", "ch06/hyperparameter_optimization.py", "ch07/gradient_check.py",
    "ch07/train_convnet.py", "ch07/visualize_filter.py", "ch07/apply_filter.py",
    "ch08/train_deepnet.py", "ch08/misclassified_mnist.py", "ch08/half_float_network.py",
]
# The book's modules' public names that xpnet does not provide (a script naming one is refused,
# naming it): the row-wise numerical gradient and the download machinery of dataset/mnist.py.
LEFT_OUT = {
    "common.gradient": {"numerical_gradient_2d"},
    "dataset.mnist": {"dataset_dir", "download_mnist", "init_mnist", "key_file", "save_file",
                      "url_base"},
}
BOOK_FILES = {**{f"common.{m}": f"common/{m}.py" for m in (
    "functions", "gradient", "layers", "multi_layer_net", "multi_layer_net_extend",
    "optimizer", "trainer", "util")},
    "dataset.mnist": "dataset/mnist.py", "layer_naive": "ch05/layer_naive.py",
    "two_layer_net": "ch05/two_layer_net.py", "simple_convnet": "ch07/simple_convnet.py",
    "deep_convnet": "ch08/deep_convnet.py"}
LOCAL = {"layer_naive", "two_layer_net", "simple_convnet", "deep_convnet"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_name_a_listed_script_imports_is_provided(script):
    tree = ast.parse(book_path(script).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and (
                node.module.partition(".")[0] in ("common", "dataset") or node.module in LOCAL):
            provided = MODULES[node.module][1]
            for alias in node.names:
                assert alias.name == "*" or alias.name in provided, (node.module, alias.name)


@pytest.mark.parametrize("module", sorted(BOOK_FILES))
def test_what_is_left_out_of_each_book_module_is_named_here(module):
    tree = ast.parse(book_path(BOOK_FILES[module]).read_text())
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))
             and not n.name.startswith("_")}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Name)}
    assert names - set(MODULES[module][1]) == LEFT_OUT.get(module, set())


def test_a_name_left_out_is_refused_naming_it():
    module = make_module("common.gradient")
    with pytest.raises(BookImportError, match=r"^common\.gradient\.numerical_gradient_2d is a "
                       r"name of the book's code that xpnet does not provide"):
        _ = module.numerical_gradient_2d
    with pytest.raises(AttributeError):
        _ = module.__wrapped__  # dunder lookups stay AttributeErrors (inspect, pickle ...)
    assert "np" in module.__all__  # star imports bring np along, as the book's do


def test_the_star_import_of_the_optimizers_gives_the_books_names():
    namespace: dict[str, object] = {}
    module = make_module("common.optimizer")
    for name in module.__all__:
        namespace[name] = getattr(module, name)
    assert set(namespace) == {"np", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"}
    opt = namespace["SGD"](lr=0.5)  # type: ignore[operator]
    params = {"x": -7.0}
    opt.update(params, {"x": 2.0})
    assert params == {"x": -8.0}


def test_the_optimizers_take_a_scripts_params_and_gradients():
    net = nets.TwoLayerNet(4, 3, 2)
    opt = make_module("common.optimizer").Adam(lr=0.01)
    before = np.array(net.params["b2"])  # its gradient, mean(y - t), is not 0: labels 0, 0
    grads = net.gradient(np.ones((2, 4)), np.array([0, 0]))
    opt.update(net.params, grads)
    assert not np.array_equal(before, np.asarray(net.net.params["b2"]))


def test_max_train_cuts_both_sets_in_proportion_and_says_so_once(capsys):
    arrays = ((np.zeros((600, 2)), np.zeros(600)), (np.zeros((100, 2)), np.zeros(100)))
    DataSettings.max_train, DataSettings.said = 90, False
    try:
        (x, _), (xt, _) = _cut(arrays)
        _cut(arrays)
    finally:
        DataSettings.max_train = None
    assert (len(x), len(xt)) == (90, 15)
    assert capsys.readouterr().out == ("xpnet book: --max-train 90: training on the first 90 "
                                       "of 600 images, testing on the first 15 of 100\n")
