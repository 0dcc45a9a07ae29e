"""fake cupy.cuda.device: two devices, CuPy's current-device rules (see ``cupy/_core.py``)."""

from .. import _core


class Device:
    """CUDA device ``id`` (the fake has two: 0 and 1). ``Device()`` is the current one; as a
    context manager it makes itself current and restores the previous device on exit."""

    def __init__(self, device=None) -> None:
        if isinstance(device, Device):
            device = device.id
        self.id = _core.current_device() if device is None else int(device)
        if not 0 <= self.id < _core.DEVICE_COUNT:
            raise _core.CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
        self._previous: list[int] = []

    def __enter__(self):
        self._previous.append(_core.current_device())
        _core.set_device(self.id)
        return self

    def __exit__(self, *exc) -> None:
        _core.set_device(self._previous.pop())

    def use(self) -> None:
        _core.set_device(self.id)

    def synchronize(self) -> None:
        with self:
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
