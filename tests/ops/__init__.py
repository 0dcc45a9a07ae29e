"""Tests of xpnet.ops: the CuPy operations (fused kernels, devices) on the fake CuPy."""
