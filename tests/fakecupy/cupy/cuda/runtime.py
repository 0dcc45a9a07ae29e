"""fake cupy.cuda.runtime."""

from .._core import CUDARuntimeError  # noqa: F401

streamCaptureModeGlobal = 0
streamCaptureModeThreadLocal = 1
streamCaptureModeRelaxed = 2
is_hip = False
_is_hip_environment = False


def getDeviceCount() -> int:
    from .._core import DEVICE_COUNT

    return DEVICE_COUNT


def getDevice() -> int:
    from .._core import current_device

    return current_device()


def setDevice(device: int) -> None:
    from .._core import set_device

    set_device(int(device))


def runtimeGetVersion() -> int:
    return 13000


def driverGetVersion() -> int:
    return 13000


def getDeviceProperties(device: int) -> dict:
    return {"name": b"fake CUDA device (NumPy on the CPU)", "totalGlobalMem": 2**34}


def deviceSynchronize() -> None:
    from .._core import device_synchronize

    device_synchronize()
