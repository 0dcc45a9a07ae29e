"""PyTorch's operations: the portable ones, with random numbers from a ``torch.Generator`` on
the tensors' device (no host round trip per draw)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import Array
from .base import Ops

__all__ = ["TorchOps", "TorchRandomStream"]


class TorchOps(Ops):
    """:class:`~xpnet.ops.base.Ops` whose random stream is PyTorch's own generator."""

    name = "torch"

    def random_stream(self, dev: Any, seq: np.random.SeedSequence) -> TorchRandomStream:
        return TorchRandomStream(dev, seq)

    def threads_line(self) -> str | None:
        import torch

        n = torch.get_num_threads()
        return f"{n} PyTorch intra-op thread{'' if n == 1 else 's'}"


class TorchRandomStream:
    """Uniform numbers from a seeded ``torch.Generator`` on ``dev``."""

    family = "torch"

    def __init__(self, dev: Any, seq: np.random.SeedSequence) -> None:
        import torch

        self._torch = torch
        self.device = dev
        self._gen = torch.Generator(device=dev or torch.device("cpu"))
        self._gen.manual_seed(int(seq.generate_state(1, np.uint64)[0]))

    def random(self, shape: tuple[int, ...], name: str) -> Array:
        torch = self._torch
        return torch.rand(shape, generator=self._gen, device=self._gen.device,
                          dtype=getattr(torch, name))

    def get_state(self) -> Any:
        return self._gen.get_state().tolist()  # a CPU uint8 tensor, on any device

    def set_state(self, state: Any) -> None:
        self._gen.set_state(self._torch.tensor(state, dtype=self._torch.uint8))
