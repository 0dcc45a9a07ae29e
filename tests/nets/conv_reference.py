"""What the conv-net tests share (``test_simple_convnet.py``, ``test_deep_convnet.py``,
``test_convnet.py``): small configurations, NumPy float64 references (convolution by explicit
windows, 2x2 max pooling by reshape, the softmax loss) and random biases."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.nets import DeepConvNet, SimpleConvNet

# A DeepConvNet small enough for gradient checks: 12x12 images go 12 -> 6 -> 8 (pad 2) -> 4
# -> 2 through the book's six convolutions and three poolings.
SMALL_DEEP = {
    "input_dim": (1, 12, 12),
    **{f"conv_param_{i}": {"filter_num": n} for i, n in enumerate((2, 2, 3, 3, 4, 4), 1)},
    "hidden_size": 5,
    "output_size": 3,
}

SMALL_SIMPLE = {"input_dim": (1, 8, 8), "conv_param": {"filter_num": 3, "filter_size": 3},
                "hidden_size": 5, "output_size": 4}

BOOK_PADS = (1, 1, 1, 2, 1, 1)


def small_simple(xp, **kwargs):
    return SimpleConvNet(**{**SMALL_SIMPLE, **kwargs}, xp=xp.namespace, device=xp.device)


def small_deep(xp, **kwargs):
    return DeepConvNet(**{**SMALL_DEEP, **kwargs}, xp=xp.namespace, device=xp.device)


def random_biases(xp, net, rng, scale=0.1):
    """Zero biases put the pad-2 border of DeepConvNet's fourth convolution exactly on ReLU's
    kink (its output there is b4); random ones keep every check away from it."""
    for name in net.params:
        if name.startswith("b"):
            shape = tuple(net.params[name].shape)
            net.params[name] = xp.asarray(scale * rng.standard_normal(shape), "float64")


def random_biases_np(net, rng):
    for name in net.params:
        if name.startswith("b"):
            net.params[name] = 0.1 * rng.standard_normal(net.params[name].shape)


# --------------------------------------------------------------------------- NumPy reference


def conv_ref(x, w, b, stride=1, pad=0):
    n, _, h, wd = x.shape
    fn, _, fh, fw = w.shape
    xp_ = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - fh) // stride + 1, (wd + 2 * pad - fw) // stride + 1
    out = np.empty((n, fn, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp_[:, :, i * stride:i * stride + fh, j * stride:j * stride + fw]
            out[:, :, i, j] = np.einsum("nchw,fchw->nf", patch, w) + b
    return out


def pool_ref(x):
    """2x2 max pooling, stride 2; an odd last row or column is dropped (floored)."""
    n, c, h, w = x.shape
    x = x[:, :, :h // 2 * 2, :w // 2 * 2]
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def loss_ref(scores, labels):
    logp = scores - np.logaddexp.reduce(scores, axis=1, keepdims=True)
    return -np.mean(logp[np.arange(len(labels)), labels]), np.exp(logp)


def simple_ref(p, x, stride=1, pad=0):
    h = pool_ref(np.maximum(conv_ref(x, p["W1"], p["b1"], stride, pad), 0.0))
    h = np.maximum(h.reshape(len(x), -1) @ p["W2"] + p["b2"], 0.0)
    return h @ p["W3"] + p["b3"]


def deep_features(p, x, pads):
    h = x
    for i in range(1, 7):
        h = np.maximum(conv_ref(h, p[f"W{i}"], p[f"b{i}"], 1, pads[i - 1]), 0.0)
        if i % 2 == 0:
            h = pool_ref(h)
    return h.reshape(len(x), -1)


def mnist_test_images(n):
    from xpnet.datasets import load_mnist

    try:
        _, (x, t) = load_mnist(flatten=False, sources=["cache"])
    except Exception as exc:
        pytest.skip(f"MNIST is not in xpnet's cache ({type(exc).__name__}: {exc}); "
                    "run `xpnet data fetch mnist`")
    return x[:n], t[:n]
