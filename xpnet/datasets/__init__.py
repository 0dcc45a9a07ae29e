"""Datasets: MNIST, found, verified and cached (see :mod:`xpnet.datasets.mnist`)."""

from .idx import IDXError, parse_idx, read_idx, write_idx
from .loading import load_mnist
from .mnist import (
    ChecksumError,
    MNISTError,
    MNISTFile,
    MNISTUnavailableError,
    MNISTWarning,
    default_cache_dir,
    fetch_mnist,
    mnist_cache_dir,
    mnist_paths,
    verify_file,
)

__all__ = [
    "ChecksumError",
    "IDXError",
    "MNISTError",
    "MNISTFile",
    "MNISTUnavailableError",
    "MNISTWarning",
    "default_cache_dir",
    "fetch_mnist",
    "load_mnist",
    "mnist_cache_dir",
    "mnist_paths",
    "parse_idx",
    "read_idx",
    "verify_file",
    "write_idx",
]
