"""fake cupy.cuda.runtime."""

from .._core import CUDARuntimeError  # noqa: F401

streamCaptureModeGlobal = 0  # noqa: N816
streamCaptureModeThreadLocal = 1  # noqa: N816
streamCaptureModeRelaxed = 2  # noqa: N816
is_hip = False
_is_hip_environment = False


def getDeviceCount() -> int:  # noqa: N802
    return 1


def runtimeGetVersion() -> int:  # noqa: N802
    return 13000


def driverGetVersion() -> int:  # noqa: N802
    return 13000


def getDeviceProperties(device: int) -> dict:  # noqa: N802
    return {"name": b"fake CUDA device (NumPy on the CPU)", "totalGlobalMem": 2**34}


def deviceSynchronize() -> None:  # noqa: N802
    from .._core import device_synchronize

    device_synchronize()
