"""fake cupy.cuda.stream."""

from .._core import Event, Stream  # noqa: F401
from .._core import current_stream as get_current_stream  # noqa: F401
