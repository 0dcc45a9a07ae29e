"""The test suite's own setup (tests/helpers.py): tests that need the book's code say which
environment variable to set, and no test names a developer's folder. (The backend fixture and
the header: tests/test_testing.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..helpers import BOOK_ENV, book_path

TESTS = Path(__file__).resolve().parents[1]


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
