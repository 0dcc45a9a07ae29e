"""Tests of xpnet.cuda (the CUDA-graph step, the NVRTC compile check) and of every CuPy call
against the real package."""
