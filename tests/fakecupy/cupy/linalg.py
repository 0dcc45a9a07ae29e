"""fake cupy.linalg: NumPy's linalg as device routines."""

import numpy as _np

from ._array import launch as _launch

__all__ = [
    "cholesky",
    "det",
    "eigh",
    "inv",
    "lstsq",
    "matrix_power",
    "norm",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "svd",
]


def _wrap(name):
    fn = getattr(_np.linalg, name)
    return lambda *a, **k: _launch(name, fn, a, k)


cholesky = _wrap("cholesky")
det = _wrap("det")
eigh = _wrap("eigh")
inv = _wrap("inv")
lstsq = _wrap("lstsq")
matrix_power = _wrap("matrix_power")
norm = _wrap("norm")
pinv = _wrap("pinv")
qr = _wrap("qr")
slogdet = _wrap("slogdet")
solve = _wrap("solve")
svd = _wrap("svd")
