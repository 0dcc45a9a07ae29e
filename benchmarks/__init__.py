"""Benchmarks for xpnet: ``python -m benchmarks --help``.

Contenders run side by side in one process, interleaved round-robin for each repetition, so
that load from other processes hits them alike; the report quotes medians, spreads and ratios.
See ``benchmarks/README.md``.
"""
