"""Fixtures of the network tests (``one_torch_thread``: the conv-net files ask for it)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """PyTorch on one thread for a module. The conv nets run thousands of tiny passes; on a
    busy 2-core machine PyTorch's second intra-op thread makes a 4x27 matmul take milliseconds
    instead of microseconds."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
