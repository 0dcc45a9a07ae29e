"""fake cupy.cuda.nccl: as the real CuPy without libnccl, the module holds only
``available = False`` (``from cupy.cuda import nccl`` succeeds; ``nccl.get_unique_id`` is an
``AttributeError``)."""

available = False
