"""The version of xpnet (one place: the package, the records and the command read it)."""

__version__ = "0.1.0"
