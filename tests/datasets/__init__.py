"""Tests of xpnet.datasets, one file per module."""
