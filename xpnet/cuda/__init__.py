"""CuPy-only code: the CUDA sources of xpnet's kernels (:mod:`xpnet.cuda.kernels`), the
CUDA-graph training step (:mod:`xpnet.cuda.graph`) and the NVRTC compile check
(``python -m xpnet.cuda --compile-only``, :mod:`xpnet.cuda.compile_check`). Nothing here imports
CuPy at import time; :class:`xpnet.ops.cupy_ops.CupyOps` launches the kernels.
"""
