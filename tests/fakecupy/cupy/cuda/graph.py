"""fake cupy.cuda.graph."""

from .._core import Graph  # noqa: F401
