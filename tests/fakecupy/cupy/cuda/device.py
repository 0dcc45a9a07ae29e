"""fake cupy.cuda.device."""

from .. import _core


class Device:
    """CUDA device ``id`` (the fake has one: 0)."""

    def __init__(self, device=None) -> None:
        if isinstance(device, Device):
            device = device.id
        self.id = 0 if device is None else int(device)
        if self.id != 0:
            raise _core.CUDARuntimeError("cudaErrorInvalidDevice", "invalid device ordinal")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def use(self) -> None:
        pass

    def synchronize(self) -> None:
        _core.device_synchronize()

    @property
    def compute_capability(self) -> str:
        return "90"

    def __eq__(self, other) -> bool:
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self) -> int:
        return hash(("fake-cuda-device", self.id))

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"
