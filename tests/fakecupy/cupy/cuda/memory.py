"""fake cupy.cuda.memory."""

from .._core import MemoryPointer, MemoryPool, using_allocator  # noqa: F401
