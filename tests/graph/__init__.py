"""Tests of xpnet.graph, one file per module of the package."""
