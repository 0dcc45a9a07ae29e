"""fake cupy.cuda.stream."""

from .._core import Event, Stream  # noqa: F401
