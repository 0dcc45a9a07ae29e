"""Tests of xpnet.nets, one file per network class (and one for the shared base)."""
