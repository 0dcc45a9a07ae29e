"""Plain helpers that several test files share (fixtures are in ``conftest.py``).

A module rather than ``conftest.py``: test files import these by name, and the data-parallel
tests import them in processes that pytest does not run (``python -m tests.training.test_parallel``
under ``mpiexec``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

# --------------------------------------------------------------------------- data


def clusters(rng: np.random.Generator | int, n: int, features: int = 20, classes: int = 3, *,
             spread: float = 3.0, noise: float = 0.5, dtype: Any = np.float32,
             label_dtype: Any = np.uint8) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """``n`` points around ``classes`` Gaussian centers: a small problem any working trainer
    solves (well separated by default; ``noise`` against ``spread`` sets how much the classes
    overlap).

    ``rng`` is a generator (its numbers are drawn: centers, labels, then noise) or a seed for a
    new one. Returns points ``(n, features)`` of ``dtype`` and labels ``(n,)`` of
    ``label_dtype``."""
    rng = np.random.default_rng(rng)
    centers = rng.normal(0.0, spread, (classes, features))
    labels = rng.integers(0, classes, n).astype(label_dtype)
    x = centers[labels] + rng.normal(0.0, noise, (n, features))
    return x.astype(dtype), labels


def fake_mnist(normalize: bool = True, flatten: bool = True, one_hot_label: bool = False,
               **kwargs: Any) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """600 + 100 images of 784 pixels in 10 separable classes, shaped like load_mnist's (the
    ``mnist`` fixture puts it in place of ``xpnet.datasets.load_mnist``)."""
    rng = np.random.default_rng(7)
    centers = rng.random((10, 784)).astype(np.float32)

    def part(n: int) -> tuple[Any, Any]:
        t = rng.integers(0, 10, n).astype(np.uint8)
        x = np.clip(centers[t] + rng.normal(0, 0.1, (n, 784)), 0, 1).astype(np.float32)
        return x, (np.eye(10, dtype=np.float32)[t] if one_hot_label else t)

    return part(600), part(100)


def host_params(xp: Any, net: Any) -> dict[str, npt.NDArray[np.float64]]:
    """``net``'s parameters as host float64 arrays, read back through the ``xp`` fixture."""
    return {k: xp.to_numpy(v).astype(np.float64) for k, v in net.params.items()}


# --------------------------------------------------------------------------- the book's code

#: The environment variable that names a clone of the book's repository
#: (https://github.com/oreilly-japan/deep-learning-from-scratch): tests that compare with the
#: book's own code or read its weight files skip, naming it, when it is not set.
BOOK_ENV = "XPNET_BOOK_DIR"
BOOK_URL = "https://github.com/oreilly-japan/deep-learning-from-scratch"


def book_path(relative: str) -> Path:
    """``relative`` inside the book's repository named by ``$XPNET_BOOK_DIR``.

    Skips the test when the variable is not set (saying what to set); fails when it is set but
    the file is not there (a wrong folder is a broken setup, not a reason to skip)."""
    root = os.environ.get(BOOK_ENV)
    if not root:
        pytest.skip(f"needs the book's code: set {BOOK_ENV} to a clone of {BOOK_URL}")
    path = Path(root) / relative
    if not path.exists():
        pytest.fail(f"{BOOK_ENV}={root} has no {relative}: point it at a clone of {BOOK_URL}")
    return path


# --------------------------------------------------------------------------- what a test needs

#: The real-MNIST tests: marked, and skipped unless ``XPNET_TEST_MNIST=1``.
REAL_MNIST = [
    pytest.mark.mnist,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("XPNET_TEST_MNIST") != "1",
                       reason="real MNIST runs: set XPNET_TEST_MNIST=1 (needs the data, ~1 min)"),
]

MPIEXEC = shutil.which("mpiexec")
try:
    import mpi4py  # noqa: F401
except ImportError:
    HAVE_MPI4PY = False
else:
    HAVE_MPI4PY = True



def _mpiexec_is_open_mpi() -> bool:
    """Whether the ``mpiexec`` on PATH is Open MPI's (the lent GPU machine has one on PATH)."""
    if MPIEXEC is None:
        return False
    try:
        done = subprocess.run([MPIEXEC, "--version"], capture_output=True, text=True, timeout=20,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return "Open MPI" in done.stdout + done.stderr


#: Skips a test that launches ``mpiexec`` where MPI is missing, or where it is Open MPI: these
#: tests are written for MPICH (the ``mpi`` extra's ``mpich`` wheel; its PMI_* variables, its
#: abort behaviour). On the first GPU machine Open MPI's mpiexec ran them: 4 failed, one hung.
needs_mpi = pytest.mark.skipif(
    not (HAVE_MPI4PY and MPIEXEC) or _mpiexec_is_open_mpi(),
    reason=("needs mpi4py and MPICH's mpiexec (pip install mpi4py mpich); "
            + ("the mpiexec on PATH is Open MPI's" if MPIEXEC else "no mpiexec on PATH")))


def skip_without_real_cupy(reason: str) -> None:
    """Skip a test that needs the real CuPy (not the fake, with NVRTC) for ``reason``; under
    ``XPNET_REQUIRE_REAL_CUPY=1`` (CI's CuPy venv) fail instead: no silent skip there."""
    if os.environ.get("XPNET_REQUIRE_REAL_CUPY") == "1":
        pytest.fail(f"XPNET_REQUIRE_REAL_CUPY=1 but {reason}")
    pytest.skip(reason)
