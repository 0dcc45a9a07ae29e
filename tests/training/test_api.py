"""``xpnet.train`` is the function (the package is ``xpnet.training``), with the signature users
know; the book's ``Trainer`` keeps its module name."""

from __future__ import annotations

import importlib
import importlib.util
import inspect

import xpnet

POSITIONAL = ["net", "x_train", "t_train", "x_test", "t_test"]
KEYWORDS = {"iters": 10_000, "batch_size": 100, "lr": None, "optimizer": None, "seed": 0,
            "eval_every": None, "eval_samples": None, "eval_at_end": True, "progress": False,
            "log": None, "cuda_graph": False, "checkpoint": None, "resume_from": None,
            "comm": None, "threads": None}


def test_xpnet_train_is_the_function_with_its_signature():
    from xpnet.training import train

    assert xpnet.train is train
    assert inspect.isfunction(xpnet.train)
    params = list(inspect.signature(xpnet.train).parameters.values())
    assert [p.name for p in params[:5]] == POSITIONAL
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params[:5])
    assert {p.name: p.default for p in params[5:]} == KEYWORDS
    assert all(p.kind is p.KEYWORD_ONLY for p in params[5:])
    assert importlib.util.find_spec("xpnet.train") is None  # no module of that name


def test_the_books_trainer_module_name_still_imports():
    trainer = importlib.import_module("xpnet.trainer")
    assert trainer.Trainer is xpnet.Trainer
    assert xpnet.Trainer is xpnet.training.Trainer
