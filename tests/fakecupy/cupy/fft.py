"""fake cupy.fft: NumPy's fft as device routines."""

import numpy as _np

from ._array import launch as _launch

__all__ = [
    "fft",
    "fftfreq",
    "fftn",
    "fftshift",
    "hfft",
    "ifft",
    "ifftn",
    "ifftshift",
    "ihfft",
    "irfft",
    "irfftn",
    "rfft",
    "rfftfreq",
    "rfftn",
]


def _wrap(name):
    fn = getattr(_np.fft, name)
    return lambda *a, **k: _launch(name, fn, a, k)


fft = _wrap("fft")
fftfreq = _wrap("fftfreq")
fftn = _wrap("fftn")
fftshift = _wrap("fftshift")
hfft = _wrap("hfft")
ifft = _wrap("ifft")
ifftn = _wrap("ifftn")
ifftshift = _wrap("ifftshift")
ihfft = _wrap("ihfft")
irfft = _wrap("irfft")
irfftn = _wrap("irfftn")
rfft = _wrap("rfft")
rfftfreq = _wrap("rfftfreq")
rfftn = _wrap("rfftn")
