"""The test suite's own setup (tests/conftest.py): the header names the backends that run, and
tests that need the book's code say which environment variable to set."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from xpnet import backend

from ..conftest import _SELECTED, BOOK_ENV, book_path, pytest_report_header

TESTS = Path(__file__).resolve().parents[1]


def test_header_lists_only_the_backends_that_run_here(request):
    """`xpnet backends:` names the backends whose tests run; each other selected backend gets
    its own line with the reason its tests skip (no CuPy listed where CuPy is not usable)."""
    lines = pytest_report_header(request.config)
    selected = request.config.stash[_SELECTED]
    assert lines[0].startswith("xpnet backends: ")
    listed = [n for n in lines[0].removeprefix("xpnet backends: ").split(", ") if n != "none"]
    skipped = [line.split()[2] for line in lines[1:]]
    assert all(line.startswith("xpnet backend ") and " skipped: " in line for line in lines[1:])
    assert sorted(listed + skipped) == sorted(selected)
    if "cupy" in selected:
        usable, why = backend.cuda_status()
        assert ("cupy" in listed) == usable
        if not usable:
            assert f"xpnet backend cupy skipped: no usable CUDA device: {why}" in lines
    if "torch" in selected and "XPNET_TEST_TORCH_DEVICE" not in os.environ:
        assert ("torch" in listed) == (importlib.util.find_spec("torch") is not None)
    if "numpy" in selected:
        assert "numpy" in listed


def test_book_tests_skip_naming_the_variable_to_set(monkeypatch, tmp_path):
    monkeypatch.delenv(BOOK_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        book_path("ch07/params.pkl")
    reason = str(skipped.value)
    assert reason == ("needs the book's code: set XPNET_BOOK_DIR to a clone of "
                      "https://github.com/oreilly-japan/deep-learning-from-scratch")
    # Set, but to the wrong folder: a broken setup fails (it would hide the comparison).
    monkeypatch.setenv(BOOK_ENV, str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match=rf"XPNET_BOOK_DIR={tmp_path} has no "
                                                    r"ch07/params\.pkl"):
        book_path("ch07/params.pkl")


def test_no_test_names_a_developers_folder():
    """Skip reasons and paths come from XPNET_BOOK_DIR, not from one machine's folders."""
    fixed = "/work" + "/"  # the folders of the machine these tests were first written on
    found = [f"{p.name}:{i}" for p in sorted(TESTS.rglob("*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1) if fixed in line]
    assert found == []
