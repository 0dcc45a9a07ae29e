"""fake cupy.linalg: NumPy's linalg as device routines."""

import numpy as _np

from ._array import launch as _launch

__all__ = ["cholesky", "det", "eigh", "inv", "lstsq", "matrix_power", "norm", "pinv", "qr",
           "slogdet", "solve", "svd", "vector_norm", "matrix_norm"]


def _wrap(name):
    fn = getattr(_np.linalg, name)
    return lambda *a, **k: _launch(name, fn, a, k)


for _n in __all__:
    globals()[_n] = _wrap(_n)
