"""fake cupy.cuda.stream."""

from .._core import Event, Stream, current_stream as get_current_stream  # noqa: F401
