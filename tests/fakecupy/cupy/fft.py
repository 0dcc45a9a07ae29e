"""fake cupy.fft: NumPy's fft as device routines."""

import numpy as _np

from ._array import launch as _launch

__all__ = ["fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft", "ihfft",
           "fftfreq", "rfftfreq", "fftshift", "ifftshift"]


def _wrap(name):
    fn = getattr(_np.fft, name)
    return lambda *a, **k: _launch(name, fn, a, k)


for _n in __all__:
    globals()[_n] = _wrap(_n)
