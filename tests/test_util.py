"""xpnet.util: smooth_curve against a direct weighted average, shuffle_dataset keeps pairs and
devices, conv_output_size against counting window positions."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.util import conv_output_size, shuffle_dataset, smooth_curve

# --------------------------------------------------------------------------- smooth_curve


def _smooth_ref(values):
    """Each point as the Kaiser(11, beta 2)-weighted average of the 11 points around it, the
    curve mirrored at its ends as the book's: point -j is point j, point n-1+j is point n-j
    (the first point is not repeated, the last one is)."""
    n = len(values)
    i = np.arange(11) - 5
    beta = 2.0
    # Kaiser window from its definition: I0(beta * sqrt(1 - (2k/(M-1) - 1)^2)) / I0(beta)
    k = np.arange(11)
    w = np.i0(beta * np.sqrt(1 - (2 * k / 10 - 1) ** 2)) / np.i0(beta)
    w = w / w.sum()
    out = []
    for p in range(n):
        idx = p + i
        idx = np.where(idx < 0, -idx, idx)
        idx = np.where(idx > n - 1, 2 * n - 1 - idx, idx)
        out.append(np.dot(w, np.asarray(values)[idx]))
    return np.array(out)


def test_smooth_curve_against_a_direct_average(rng):
    values = list(np.cumsum(rng.standard_normal(40)))
    got = smooth_curve(values)
    assert got.shape == (40,)
    np.testing.assert_allclose(got, _smooth_ref(values), rtol=1e-12)
    np.testing.assert_allclose(smooth_curve(np.full(15, 2.5)), np.full(15, 2.5), rtol=1e-14)


def test_smooth_curve_takes_device_arrays(xp, rng):
    host = rng.standard_normal(30)
    np.testing.assert_allclose(smooth_curve(xp.asarray(host)), _smooth_ref(host), rtol=1e-12)


def test_smooth_curve_errors():
    with pytest.raises(ValueError, match=r"needs at least 11 points .* got 5"):
        smooth_curve([1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(ValueError, match=r"takes a 1-D curve, got shape \(3, 4\)"):
        smooth_curve(np.zeros((3, 4)))


# --------------------------------------------------------------------------- shuffle_dataset


@pytest.mark.parametrize(("xshape", "tshape"), [((12, 3), (12,)), ((12, 1, 2, 2), (12, 4))],
                         ids=["2d-labels", "4d-onehot"])
def test_shuffle_dataset_keeps_pairs_together(xp, rng, xshape, tshape):
    n = xshape[0]
    xh = np.arange(np.prod(xshape), dtype=np.float64).reshape(xshape)
    th = np.arange(n, dtype=np.int64) if len(tshape) == 1 else rng.random(tshape)
    xs, ts = shuffle_dataset(xp.asarray(xh), xp.asarray(th), seed=3)
    xp.assert_on(xs, "float64", xshape)
    xp.assert_on(ts, th.dtype.name, tshape)
    xs_h, ts_h = xp.to_numpy(xs), xp.to_numpy(ts)
    # every shuffled sample is one of the originals, each used once, paired as before
    order = [int(np.flatnonzero((xh == row).all(axis=tuple(range(1, len(xshape)))))[0])
             for row in xs_h]
    assert sorted(order) == list(range(n))
    assert order != list(range(n))
    np.testing.assert_array_equal(ts_h, th[order])


def test_shuffle_dataset_seed(xp):
    x, t = xp.asarray(np.arange(20.0)[:, None]), xp.asarray(np.arange(20))
    a = xp.to_numpy(shuffle_dataset(x, t, seed=1)[1])
    b = xp.to_numpy(shuffle_dataset(x, t, seed=1)[1])
    c = xp.to_numpy(shuffle_dataset(x, t, seed=2)[1])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(a, np.random.default_rng(1).permutation(20))


def test_shuffle_dataset_errors(xp):
    with pytest.raises(ValueError, match=r"same number of samples .* got shapes \(3, 2\) and"):
        shuffle_dataset(xp.asarray(np.zeros((3, 2))), xp.asarray(np.zeros(4)))
    other = np.zeros(3) if xp.name != "numpy" else (
        pytest.importorskip("array_api_strict").zeros(3))
    with pytest.raises(TypeError, match="different array libraries"):
        shuffle_dataset(xp.asarray(np.zeros((3, 2))), other)


# --------------------------------------------------------------------------- conv_output_size


def _count_positions(input_size, filter_size, stride, pad):
    """How many windows fit, counted one by one."""
    return sum(1 for start in range(0, input_size + 2 * pad - filter_size + 1, stride))


# Whole sizes, then sizes the stride does not divide (floored, as the layers do).
SIZES = [(28, 5, 1, 0), (28, 3, 1, 1), (7, 3, 2, 1), (4, 2, 2, 0), (1, 1, 1, 0), (32, 5, 3, 0),
         (28, 5, 2, 0), (8, 3, 2, 0), (10, 4, 3, 1), (5, 2, 2, 0), (9, 3, 4, 0)]


@pytest.mark.parametrize(("size", "flt", "stride", "pad"), SIZES)
def test_conv_output_size_counts_windows(size, flt, stride, pad):
    assert conv_output_size(size, flt, stride, pad) == _count_positions(size, flt, stride, pad)
    assert isinstance(conv_output_size(size, flt, stride, pad), int)


@pytest.mark.parametrize(("size", "flt", "stride", "pad"), SIZES)
def test_conv_output_size_is_what_torch_and_the_layers_give(size, flt, stride, pad):
    """The size that PyTorch's conv2d and xpnet's Convolution produce (both floor)."""
    torch = pytest.importorskip("torch", reason="PyTorch's conv2d is the reference")
    from xpnet.conv import Convolution

    x, w = np.zeros((1, 1, size, size)), np.zeros((1, 1, flt, flt))
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=stride,
                                      padding=pad).shape[-1]
    assert conv_output_size(size, flt, stride, pad) == want
    assert Convolution(w, np.zeros(1), stride, pad).forward(x).shape[-1] == want


@pytest.mark.parametrize(("size", "flt", "stride", "pad"), SIZES)
def test_conv_output_size_is_the_books_floored(book_common, size, flt, stride, pad):
    """The book's conv_output_size returns the float; its layers take ``1 + int(...)``."""
    book = book_common.util.conv_output_size(size, flt, stride, pad)
    assert conv_output_size(size, flt, stride, pad) == int(book)


def test_conv_output_size_defaults_are_the_books():
    assert conv_output_size(28, 5) == 24
    assert conv_output_size(28, 5, stride=2) == 12  # the book's function: 12.5


def test_conv_output_size_errors():
    with pytest.raises(ValueError, match="filter_size 7 is larger than the padded input 5"):
        conv_output_size(5, 7)
    with pytest.raises(ValueError, match="need input_size >= 1"):
        conv_output_size(5, 3, stride=0)
    with pytest.raises(TypeError, match=r"stride must be an integer, got 1\.5"):
        conv_output_size(5, 3, stride=1.5)
