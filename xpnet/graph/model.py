"""What a graph is made of: nodes, edges and how a layer class appears (:class:`LayerSpec`).

The bottom of :mod:`xpnet.graph`: plain data, no imports from the rest of the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PLAIN_NUMBERS", "Edge", "LayerSpec", "Node", "is_plain_number"]

#: The Python number types drawn as numbers (and, inside ``MulLayer``/``AddLayer`` nodes, as
#: constants); NumPy scalars are not among them, being new objects per result.
PLAIN_NUMBERS: tuple[type, ...] = (int, float, bool, complex)


def is_plain_number(value: Any) -> bool:
    """Exactly a Python number (NumPy scalars, which are new objects per result, are not)."""
    return type(value) in PLAIN_NUMBERS


@dataclass(frozen=True)
class LayerSpec:
    """How a layer class appears in the graph.

    ``inputs`` are the names of ``forward``'s positional arguments that are graph inputs,
    ``grads`` those that ``backward`` returns gradients for, in its return order (a single
    gradient is returned bare, several as a tuple), and ``params`` holds
    ``(shown name, value attribute, gradient attribute)`` for parameters drawn as extra inputs
    (Affine's ``W``/``dW`` and ``b``/``db``).
    """

    label: str
    inputs: tuple[str, ...]
    grads: tuple[str, ...]
    params: tuple[tuple[str, str, str], ...] = ()
    shape: str = "circle"
    fold_constants: bool = False


@dataclass(eq=False)
class Node:
    """A node: a layer call (``kind="layer"``), a leaf input (``"input"``) or the end of an output
    that no traced layer took (``"output"``). ``label`` is what the node shows."""

    id: str
    kind: str
    label: str
    name: str | None = None
    layer: Any = None
    shape: str = "circle"


@dataclass(eq=False)
class Edge:
    """A value flowing from ``tail`` to ``head``: ``value`` forward and ``grad`` backward (the
    gradient ``head``'s backward returned for it; ``None`` when backward did not run or did not
    compute it). ``name`` is the name given to an intermediate value, if any."""

    tail: Node
    head: Node
    value: Any
    grad: Any = None
    name: str | None = None
