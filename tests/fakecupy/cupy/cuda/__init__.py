"""fake cupy.cuda: streams, events, graphs, devices and memory pools (see ``cupy/_core.py``)."""

from .. import _core
from .._core import Event, Graph, MemoryPool, Stream, using_allocator
from . import device, graph, memory, nccl, runtime, stream  # noqa: F401
from .device import Device

__all__ = [
    "Device",
    "Event",
    "Graph",
    "MemoryPool",
    "Stream",
    "get_current_stream",
    "get_device_id",
    "is_available",
    "set_allocator",
    "using_allocator",
]


def get_current_stream(device_id: int = -1) -> Stream:
    return _core.current_stream()


def get_device_id() -> int:
    return _core.current_device()


def is_available() -> bool:
    return True


def set_allocator(allocator=None) -> None:
    _core._STATE.allocators[:] = [] if allocator is None else [allocator]
