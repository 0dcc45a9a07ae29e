"""Benchmarks for xpnet: ``python -m benchmarks --help``.

Contenders run side by side in one process, interleaved round-robin for each repetition, so
that load from other processes hits them alike; the report quotes medians, spreads and ratios.
Every benchmark module runs on ``harness.py`` and takes the book's reference code from
``book.py``. See ``benchmarks/README.md``.
"""
