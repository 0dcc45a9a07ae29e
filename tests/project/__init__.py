"""Tests of the project as a whole rather than of one module of xpnet: the README, the
examples, help texts, the import layering, the public API, the benchmarks and the GPU check, the
real-MNIST end-to-end runs, and the test suite's own tools (the fake CuPy, the pytest setup)."""
