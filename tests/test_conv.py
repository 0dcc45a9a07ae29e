"""xpnet.conv: im2col/col2im against loops written here, Convolution and Pooling against PyTorch,
gradients against central differences (float64), the fast pooling path against the general one,
dtype/device kept, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.conv import Convolution, Pooling, col2im, im2col

# --------------------------------------------------------------------------- NumPy references


def _ref_im2col(x, fh, fw, stride, pad):
    """Row (n, y, x) = window (y, x) of image n, in (c, i, j) order: plain loops."""
    n_, c_, h, w = x.shape
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    img = np.zeros((n_, c_, h + 2 * pad, w + 2 * pad))
    img[:, :, pad:pad + h, pad:pad + w] = x
    rows = []
    for n in range(n_):
        for y in range(oh):
            for xx in range(ow):
                win = img[n, :, y * stride:y * stride + fh, xx * stride:xx * stride + fw]
                rows.append(win.ravel())
    return np.array(rows)


def _ref_col2im(col, shape, fh, fw, stride, pad):
    n_, c_, h, w = shape
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    img = np.zeros((n_, c_, h + 2 * pad, w + 2 * pad))
    r = 0
    for n in range(n_):
        for y in range(oh):
            for xx in range(ow):
                img[n, :, y * stride:y * stride + fh, xx * stride:xx * stride + fw] += (
                    col[r].reshape(c_, fh, fw))
                r += 1
    return img[:, :, pad:pad + h, pad:pad + w]


def _ref_pool(x, ph, pw, stride, pad):
    """Max pool with zero padding (the book's), plus the first-max gradient routing matrix."""
    n_, c_, h, w = x.shape
    img = np.zeros((n_, c_, h + 2 * pad, w + 2 * pad))
    img[:, :, pad:pad + h, pad:pad + w] = x
    oh, ow = (h + 2 * pad - ph) // stride + 1, (w + 2 * pad - pw) // stride + 1
    out = np.empty((n_, c_, oh, ow))
    for n in range(n_):
        for c in range(c_):
            for y in range(oh):
                for xx in range(ow):
                    out[n, c, y, xx] = img[n, c, y * stride:y * stride + ph,
                                           xx * stride:xx * stride + pw].max()
    return out


def _distinct(rng, shape):
    """Values 0.1 apart in random order: no ties, no max switch within a 1e-4 step."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.1 - size * 0.05).reshape(shape)


# --------------------------------------------------------------------------- im2col / col2im

SHAPES = [  # (N, C, H, W, FH, FW, stride, pad)
    (2, 1, 5, 5, 3, 3, 1, 0),
    (2, 3, 5, 5, 3, 3, 2, 1),
    (1, 2, 6, 4, 2, 2, 2, 0),
    (3, 2, 4, 6, 3, 1, 1, 1),
    # stride does not divide (size + 2*pad - window): the output size is floored
    (2, 2, 8, 9, 3, 3, 2, 0),
    (1, 3, 7, 10, 4, 2, 3, 1),
]


@pytest.mark.parametrize("case", SHAPES, ids=str)
def test_im2col_col2im_match_loops(xp, rng, case):
    n, c, h, w, fh, fw, stride, pad = case
    x = rng.standard_normal((n, c, h, w))
    col = im2col(xp.asarray(x), fh, fw, stride, pad)
    want = _ref_im2col(x, fh, fw, stride, pad)
    xp.assert_on(col, "float64", want.shape)
    xp.assert_close(col, want)
    g = rng.standard_normal(want.shape)
    img = col2im(xp.asarray(g), (n, c, h, w), fh, fw, stride, pad)
    xp.assert_on(img, "float64", (n, c, h, w))
    xp.assert_close(img, _ref_col2im(g, (n, c, h, w), fh, fw, stride, pad), rtol=1e-12,
                    atol=1e-12)


def test_im2col_matches_the_book_on_mnist_shape(rng):
    x = rng.standard_normal((3, 1, 28, 28))
    np.testing.assert_array_equal(np.asarray(im2col(x, 5, 5)), _ref_im2col(x, 5, 5, 1, 0))


# --------------------------------------------------------------------------- against PyTorch

torch_cases = [(1, 0, 1), (2, 1, 3), (1, 1, 2), (2, 0, 1)]  # (stride, pad, channels)


@pytest.mark.parametrize(("stride", "pad", "channels"), torch_cases)
def test_convolution_matches_torch(xp, rng, stride, pad, channels):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for conv2d")
    x = rng.standard_normal((3, channels, 7, 7))
    W = rng.standard_normal((4, channels, 3, 3))
    b = rng.standard_normal(4)
    out = Convolution(xp.asarray(W), xp.asarray(b), stride, pad).forward(xp.asarray(x))
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(W),
                                      torch.from_numpy(b), stride=stride, padding=pad).numpy()
    xp.assert_on(out, "float64", want.shape)
    xp.assert_close(out, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("pool", "stride", "pad"), [(2, 2, 0), (3, 3, 0), (3, 1, 0), (2, 1, 1),
                                                     (3, 2, 1)])
def test_pooling_matches_torch(xp, rng, pool, stride, pad):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for max_pool2d")
    size = 6 if (6 + 2 * pad - pool) % stride == 0 else 7
    x = rng.standard_normal((2, 3, size, size))
    out = Pooling(pool, pool, stride, pad).forward(xp.asarray(x))
    # The book pads with zeros that take part in the maximum; torch pads with -inf, so pad
    # with zeros first and let torch pool without padding.
    padded = torch.nn.functional.pad(torch.from_numpy(x), (pad, pad, pad, pad))
    want = torch.nn.functional.max_pool2d(padded, pool, stride).numpy()
    xp.assert_on(out, "float64", want.shape)
    xp.assert_close(out, want)
    np.testing.assert_array_equal(want, _ref_pool(x, pool, pool, stride, pad))


# --------------------------------------------------------------------------- floored sizes

# (N, C, H, W, FN, FH, FW, stride, pad) where stride does not divide H + 2*pad - FH (or the
# width's): PyTorch's conv2d and the book's layers floor the output size, and the rows and
# columns no window reaches get zero gradient.
FLOOR_CONV = [
    (2, 3, 8, 9, 4, 3, 3, 2, 0),    # height 2.5 -> 3 windows (width whole: 4)
    (2, 2, 10, 8, 3, 3, 2, 2, 1),   # width (8 + 2 - 2) / 2 whole, height 4.5 -> 5
    (1, 2, 10, 7, 2, 4, 3, 3, 1),   # both: (10 + 2 - 4) / 3 -> 3, (7 + 2 - 3) / 3 = 2 -> 3
    (2, 1, 12, 12, 2, 5, 5, 3, 0),  # 7 / 3 -> 3 windows; the last row and column dropped
    (3, 2, 9, 9, 5, 3, 3, 4, 0),    # 6 / 4 -> 2 windows; the last 2 rows and columns dropped
]


def _read_rows(size, field, stride, pad):
    """Which input rows (0..size-1) some window reads, counted window by window."""
    out = (size + 2 * pad - field) // stride + 1
    return {o * stride + k - pad for o in range(out) for k in range(field)} & set(range(size))


@pytest.mark.parametrize("case", FLOOR_CONV, ids=str)
def test_convolution_floors_its_output_like_torch(xp, rng, case):
    """Forward, dx, dW and db against PyTorch for sizes the stride does not divide; the input
    rows and columns that no window reads get exactly zero gradient."""
    torch = pytest.importorskip("torch", reason="PyTorch autograd is the reference")
    n, c, h, w, fn, fh, fw, stride, pad = case
    x, W, b = (rng.standard_normal((n, c, h, w)), rng.standard_normal((fn, c, fh, fw)),
               rng.standard_normal(fn))
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(W, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    y = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=pad)
    r = rng.standard_normal(tuple(y.shape))
    (y * torch.from_numpy(r)).sum().backward()
    layer = Convolution(xp.asarray(W), xp.asarray(b), stride, pad)
    out = layer.forward(xp.asarray(x))
    xp.assert_on(out, "float64", tuple(y.shape))
    xp.assert_close(out, y.detach().numpy(), rtol=1e-12, atol=1e-12)
    dx = layer.backward(xp.asarray(r))
    xp.assert_on(dx, "float64", x.shape)
    xp.assert_close(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    xp.assert_close(layer.dW, wt.grad.numpy(), rtol=1e-12, atol=1e-12)
    xp.assert_close(layer.db, bt.grad.numpy(), rtol=1e-12, atol=1e-12)
    rows, cols = _read_rows(h, fh, stride, pad), _read_rows(w, fw, stride, pad)
    unread = np.ones((h, w), dtype=bool)
    unread[np.ix_(sorted(rows), sorted(cols))] = False
    got = xp.to_numpy(dx)
    if unread.any():
        assert np.all(got[:, :, unread] == 0.0)
    assert np.all(got[:, :, ~unread] != 0.0)  # everything read has a gradient here


# (H, W, pool, stride, pad): the 2x2 stride-2 mask path on odd sizes, the general path.
FLOOR_POOL = [(5, 7, 2, 2, 0), (7, 6, 2, 2, 0), (5, 5, 3, 3, 0), (6, 8, 3, 2, 0),
              (6, 6, 3, 2, 1), (6, 5, 2, 2, 1), (9, 7, 3, 4, 1)]


@pytest.mark.parametrize("case", FLOOR_POOL, ids=str)
def test_pooling_floors_its_output_like_torch(xp, rng, case):
    torch = pytest.importorskip("torch", reason="PyTorch autograd is the reference")
    h, w, pool, stride, pad = case
    x = _distinct(rng, (2, 3, h, w))  # no ties: one maximum per window
    xt = torch.tensor(x, requires_grad=True)
    # The book pads with zeros that take part in the maximum; torch pads with -inf: pad with
    # zeros first, then pool without padding.
    y = torch.nn.functional.max_pool2d(torch.nn.functional.pad(xt, (pad, pad, pad, pad)),
                                       pool, stride)
    r = rng.standard_normal(tuple(y.shape))
    (y * torch.from_numpy(r)).sum().backward()
    layer = Pooling(pool, pool, stride, pad)
    out = layer.forward(xp.asarray(x))
    xp.assert_on(out, "float64", tuple(y.shape))
    xp.assert_close(out, y.detach().numpy(), rtol=0)
    dx = layer.backward(xp.asarray(r))
    xp.assert_on(dx, "float64", x.shape)
    xp.assert_close(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-15)  # overlaps: sums in any order
    if (h + 2 * pad - pool) % stride and not pad:
        assert layer.fast == (pool == stride)
        assert np.all(xp.to_numpy(dx)[:, :, (h + 2 * pad - pool) // stride * stride + pool:,
                                      :] == 0.0)


@pytest.mark.parametrize("case", FLOOR_CONV[:3], ids=str)
def test_floored_convolution_matches_the_books_layer(xp, rng, book_common, case):
    """The book's own ``common.layers.Convolution`` (and its im2col/col2im) on the same
    floored shapes: forward, dx, dW, db."""
    n, c, h, w, fn, fh, fw, stride, pad = case
    x, W, b = (rng.standard_normal((n, c, h, w)), rng.standard_normal((fn, c, fh, fw)),
               rng.standard_normal(fn))
    book = book_common.layers.Convolution(W, b, stride, pad)
    want = book.forward(x)
    r = rng.standard_normal(want.shape)
    want_dx = book.backward(r)
    layer = Convolution(xp.asarray(W), xp.asarray(b), stride, pad)
    xp.assert_close(layer.forward(xp.asarray(x)), want, rtol=1e-12, atol=1e-12)
    xp.assert_close(layer.backward(xp.asarray(r)), want_dx, rtol=1e-12, atol=1e-12)
    xp.assert_close(layer.dW, book.dW, rtol=1e-12, atol=1e-12)
    xp.assert_close(layer.db, book.db, rtol=1e-12, atol=1e-12)
    col = book_common.util.im2col(x, fh, fw, stride, pad)
    xp.assert_close(im2col(xp.asarray(x), fh, fw, stride, pad), col, rtol=0)
    g = rng.standard_normal(col.shape)
    xp.assert_close(col2im(xp.asarray(g), x.shape, fh, fw, stride, pad),
                    book_common.util.col2im(g, x.shape, fh, fw, stride, pad), rtol=1e-12,
                    atol=1e-12)


@pytest.mark.parametrize("case", [p for p in FLOOR_POOL if p[4] == 0], ids=str)
def test_floored_pooling_matches_the_books_layer(xp, rng, book_common, case):
    """The book's ``common.layers.Pooling`` (unpadded: its output size leaves out ``pad``)."""
    h, w, pool, stride, _ = case
    x = _distinct(rng, (2, 3, h, w))
    book = book_common.layers.Pooling(pool, pool, stride)
    want = book.forward(x)
    r = rng.standard_normal(want.shape)
    layer = Pooling(pool, pool, stride)
    xp.assert_close(layer.forward(xp.asarray(x)), want, rtol=0)
    xp.assert_close(layer.backward(xp.asarray(r)), book.backward(r), rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- gradients


def _numeric(f, x, h=1e-5):
    """Central differences of the scalar f(x) for host float64 x."""
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = old + h
        up = f(x)
        x[idx] = old - h
        down = f(x)
        x[idx] = old
        g[idx] = (up - down) / (2 * h)
    return g


GRAD_CASES = [(s, p, c) for s in (1, 2) for p in (0, 1) for c in (1, 3)]


@pytest.mark.parametrize(("stride", "pad", "channels"), GRAD_CASES)
def test_convolution_gradients(xp, rng, stride, pad, channels):
    x = rng.standard_normal((2, channels, 5, 5))
    W = rng.standard_normal((2, channels, 3, 3))
    b = rng.standard_normal(2)
    layer = Convolution(xp.asarray(W), xp.asarray(b), stride, pad)
    out = layer.forward(xp.asarray(x))
    r = rng.standard_normal(tuple(out.shape))  # loss = sum(out * r), so dout = r
    dx = layer.backward(xp.asarray(r))
    for got in (dx, layer.dW, layer.db):
        xp.assert_on(got, "float64")

    def loss(x_, W_, b_):
        y = Convolution(xp.asarray(W_), xp.asarray(b_), stride, pad).forward(xp.asarray(x_))
        return float(np.sum(xp.to_numpy(y) * r))

    xp.assert_close(dx, _numeric(lambda v: loss(v, W, b), x), rtol=1e-6, atol=1e-8)
    xp.assert_close(layer.dW, _numeric(lambda v: loss(x, v, b), W), rtol=1e-6, atol=1e-8)
    xp.assert_close(layer.db, _numeric(lambda v: loss(x, W, v), b), rtol=1e-6, atol=1e-8)


# (filters, channels, filter size, stride, pad): the stride-1 input gradient as a full
# convolution (FN <= 2C, pad < F, pad 2 as DeepConvNet's conv4), its col2im fallback (FN > 2C,
# pad >= F) and stride 2.
BACKWARD_CASES = [(2, 3, 3, 1, 0), (4, 2, 3, 1, 1), (3, 3, 3, 1, 2), (5, 1, 3, 1, 1),
                  (2, 2, 3, 1, 3), (3, 2, 5, 1, 2), (2, 3, 3, 2, 1)]


@pytest.mark.parametrize(("fn", "channels", "size", "stride", "pad"), BACKWARD_CASES)
def test_convolution_backward_matches_torch_across_batches(xp, rng, fn, channels, size,
                                                           stride, pad):
    """dx, dW and db against PyTorch autograd, for two batches of different data and one of
    another size through the same layer (whose buffers are reused between steps)."""
    torch = pytest.importorskip("torch", reason="PyTorch autograd is the reference")
    W = rng.standard_normal((fn, channels, size, size))
    b = rng.standard_normal(fn)
    layer = Convolution(xp.asarray(W), xp.asarray(b), stride, pad)
    for n in (3, 3, 2):
        x = rng.standard_normal((n, channels, 9, 9))
        xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(W, requires_grad=True)
        bt = torch.tensor(b, requires_grad=True)
        y = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=pad)
        r = rng.standard_normal(tuple(y.shape))
        (y * torch.from_numpy(r)).sum().backward()
        out = layer.forward(xp.asarray(x))
        xp.assert_close(out, y.detach().numpy(), rtol=1e-12, atol=1e-12)
        dx = layer.backward(xp.asarray(r))
        xp.assert_on(dx, "float64", x.shape)
        xp.assert_close(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
        xp.assert_close(layer.dW, wt.grad.numpy(), rtol=1e-12, atol=1e-12)
        xp.assert_close(layer.db, bt.grad.numpy(), rtol=1e-12, atol=1e-12)


POOL_CASES = [(2, 2, 0, 1), (2, 2, 0, 3), (3, 3, 0, 2), (3, 1, 0, 2), (2, 1, 1, 1), (3, 2, 1, 3),
              (2, 2, 1, 2)]


@pytest.mark.parametrize(("pool", "stride", "pad", "channels"), POOL_CASES)
def test_pooling_gradient(xp, rng, pool, stride, pad, channels):
    size = 6 if (6 + 2 * pad - pool) % stride == 0 else 5
    x = _distinct(rng, (2, channels, size, size))
    layer = Pooling(pool, pool, stride, pad)
    out = layer.forward(xp.asarray(x))
    r = rng.standard_normal(tuple(out.shape))
    dx = layer.backward(xp.asarray(r))
    xp.assert_on(dx, "float64", x.shape)
    want = _numeric(lambda v: float(np.sum(_ref_pool(v, pool, pool, stride, pad) * r)), x)
    xp.assert_close(dx, want, rtol=1e-6, atol=1e-8)


def test_pooling_backward_takes_first_maximum_like_the_book(xp):
    # Windows full of ties: the book's argmax sends each gradient to the window's first maximum.
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, :] = 1.0  # second row of each top window ties at 1
    for pool, stride in ((2, 2), (2, 1)):
        size = (4 - pool) // stride + 1
        layer = Pooling(pool, pool, stride)
        layer.forward(xp.asarray(x))
        dout = np.arange(1.0, size * size + 1).reshape(1, 1, size, size)
        want = np.zeros_like(x)
        for y in range(size):
            for xx in range(size):
                win = x[0, 0, y * stride:y * stride + pool, xx * stride:xx * stride + pool]
                i, j = np.unravel_index(np.argmax(win), win.shape)
                want[0, 0, y * stride + i, xx * stride + j] += dout[0, 0, y, xx]
        xp.assert_close(layer.backward(xp.asarray(dout)), want)


def test_fast_pooling_agrees_with_general_path(xp, rng, monkeypatch):
    # Small integers: many ties, so the first-maximum rule is exercised.
    x = rng.integers(-2, 3, size=(3, 4, 8, 8)).astype(np.float64)
    dout = rng.standard_normal((3, 4, 4, 4))
    results = []
    for fast in (True, False):
        monkeypatch.setattr(Pooling, "fast", property(lambda self, f=fast: f))
        layer = Pooling(2, 2, 2)
        out = layer.forward(xp.asarray(x))
        results.append((xp.to_numpy(out), xp.to_numpy(layer.backward(xp.asarray(dout)))))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_convolution_input_grad_false_skips_dx(xp, rng):
    layer = Convolution(xp.asarray(rng.standard_normal((2, 1, 3, 3))),
                        xp.asarray(np.zeros(2)), input_grad=False)
    out = layer.forward(xp.asarray(rng.standard_normal((2, 1, 5, 5))))
    assert layer.backward(xp.asarray(np.ones(tuple(out.shape)))) is None
    xp.assert_on(layer.dW, "float64", (2, 1, 3, 3))


# --------------------------------------------------------------------------- dtypes, devices


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_and_device_kept(xp, rng, dtype):
    x = xp.asarray(rng.standard_normal((2, 2, 6, 6)), dtype)
    conv = Convolution(xp.asarray(rng.standard_normal((3, 2, 3, 3)), dtype),
                       xp.asarray(rng.standard_normal(3), dtype), 1, 1)
    pool = Pooling(2, 2, 2)
    general = Pooling(3, 3, 1, 1)
    y = pool.forward(conv.forward(x))
    xp.assert_on(y, dtype, (2, 3, 3, 3))
    xp.assert_on(general.forward(x), dtype, (2, 2, 6, 6))
    xp.assert_on(general.backward(xp.asarray(np.ones((2, 2, 6, 6)), dtype)), dtype)
    dx = conv.backward(pool.backward(xp.asarray(np.ones((2, 3, 3, 3)), dtype)))
    xp.assert_on(dx, dtype, (2, 2, 6, 6))
    xp.assert_on(conv.dW, dtype, (3, 2, 3, 3))
    xp.assert_on(conv.db, dtype, (3,))


def test_mixed_dtypes_promote_like_numpy(xp, rng):
    x = rng.standard_normal((2, 1, 5, 5)).astype(np.float32)
    W, b = rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2)
    layer = Convolution(xp.asarray(W), xp.asarray(b))
    out = layer.forward(xp.asarray(x))
    xp.assert_on(out, "float64", (2, 2, 3, 3))
    want = Convolution(W, b).forward(x.astype(np.float64))
    xp.assert_close(out, want, rtol=1e-12)
    layer.backward(xp.asarray(np.ones((2, 2, 3, 3)), "float32"))
    xp.assert_on(layer.dW, "float64", W.shape)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_number_as_bias_is_every_filters_bias(xp, rng, dtype):
    # The book's ch07/apply_filter.py: Convolution(w, 0).
    x = xp.asarray(rng.standard_normal((2, 1, 6, 6)), dtype)
    W = xp.asarray(rng.standard_normal((3, 1, 3, 3)), dtype)
    for number in (0, 1.5):
        out = Convolution(W, number, pad=1).forward(x)
        xp.assert_on(out, dtype, (2, 3, 6, 6))
        want = Convolution(W, xp.asarray(np.full(3, number), dtype), pad=1).forward(x)
        xp.assert_close(out, xp.to_numpy(want), rtol=0)


# --------------------------------------------------------------------------- errors


def test_clear_errors(xp, rng):
    W = xp.asarray(rng.standard_normal((2, 3, 3, 3)))
    b = xp.asarray(np.zeros(2))
    with pytest.raises(ValueError, match=r"shape \(N, C, H, W\)"):
        Convolution(W, b).forward(xp.asarray(np.zeros((3, 5, 5))))
    with pytest.raises(ValueError, match="3 input channels"):
        Convolution(W, b).forward(xp.asarray(np.zeros((1, 2, 5, 5))))
    with pytest.raises(ValueError, match="does not fit"):
        Convolution(W, b).forward(xp.asarray(np.zeros((1, 3, 2, 2))))
    with pytest.raises(TypeError, match="floating"):
        Convolution(W, b).forward(xp.asarray(np.zeros((1, 3, 5, 5)), "int32"))
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        Convolution(W, b, stride=0)
    with pytest.raises(ValueError, match="Pooling \\(width\\): a window of 3 does not fit"):
        Pooling(3, 3).forward(xp.asarray(np.zeros((1, 1, 5, 2))))
    with pytest.raises(ValueError, match=r"shape \(N, C, H, W\)"):
        Pooling(2, 2).forward(xp.asarray(np.zeros((4, 4))))
    with pytest.raises(ValueError, match="col must have shape"):
        col2im(xp.asarray(np.zeros((4, 5))), (1, 1, 3, 3), 2, 2)


# --------------------------------------------------------------------------- edges
# Found unguarded by mutation testing (tools/mutants.py).


@pytest.mark.parametrize(("ph", "pw", "stride"), [(2, 3, 2), (3, 2, 2), (2, 3, 3), (3, 2, 3),
                                                  (1, 2, 2), (2, 1, 1)])
def test_non_square_pooling_windows(xp, rng, ph, pw, stride):
    """Non-square windows whose stride equals one side: they must take the general path, not
    the square fast path (guards `ph == pw == s` there and in Pooling.fast); forward and
    gradient against the loops."""
    x = _distinct(rng, (2, 3, 7, 8))
    layer = Pooling(ph, pw, stride)
    assert not layer.fast
    out = layer.forward(xp.asarray(x))
    xp.assert_close(out, _ref_pool(x, ph, pw, stride, 0), rtol=0)
    r = rng.standard_normal(tuple(out.shape))
    want = _numeric(lambda v: float(np.sum(_ref_pool(v, ph, pw, stride, 0) * r)), x)
    xp.assert_close(layer.backward(xp.asarray(r)), want, rtol=1e-6, atol=1e-8)


def test_pooling_refuses_integer_input_bad_settings_and_a_wrong_dout(xp):
    """Pooling's own refusals: integer input (guards its float check), window, stride and
    padding out of range, and a dout of another shape than the forward output."""
    with pytest.raises(TypeError, match="Pooling needs floating input, got dtype"):
        Pooling(2, 2).forward(xp.asarray(np.zeros((1, 1, 4, 4)), "int32"))
    for kwargs, name in [({"pool_h": 0, "pool_w": 2}, "pool_h"), ({"pool_h": 2, "pool_w": 0},
                         "pool_w"), ({"pool_h": 2, "pool_w": 2, "stride": 0}, "stride")]:
        with pytest.raises(ValueError, match=f"{name} must be an integer >= 1"):
            Pooling(**kwargs)
    with pytest.raises(ValueError, match="pad must be an integer >= 0"):
        Pooling(2, 2, pad=-1)
    Pooling(1, 1, stride=1, pad=0)  # the smallest allowed
    layer = Pooling(2, 2)
    layer.forward(xp.asarray(np.zeros((1, 2, 4, 4))))
    with pytest.raises(ValueError, match=r"dout must have the forward output's shape "
                                         r"\(1, 2, 2, 2\), got \(1, 2, 2, 3\)"):
        layer.backward(xp.asarray(np.zeros((1, 2, 2, 3))))


@pytest.mark.parametrize("n", [1, 2])
def test_convolution_with_a_one_by_one_output(xp, rng, n):
    """A window as large as the input (output 1x1, stride 1): N*OH*OW is then at most 2C, so
    choosing the input gradient's path by the rows of dout instead of the filters would take
    the full-convolution path with the wrong filter count."""
    x = rng.standard_normal((n, 2, 3, 3))
    W = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    layer = Convolution(xp.asarray(W), xp.asarray(b))
    out = layer.forward(xp.asarray(x))
    xp.assert_on(out, "float64", (n, 3, 1, 1))
    r = rng.standard_normal((n, 3, 1, 1))
    dx = layer.backward(xp.asarray(r))
    # out[n, f] = sum(W[f] * x[n]) + b[f], so dx[n] = sum_f r[n, f] * W[f]
    xp.assert_close(dx, np.einsum("nf,fchw->nchw", r[:, :, 0, 0], W), rtol=1e-12)


@pytest.mark.parametrize("pool", [3, 4])
def test_fast_pooling_of_wider_windows_agrees_with_the_general_path(xp, rng, monkeypatch, pool):
    """Windows of 3 and 4 columns or rows: the first maximum among more than two parts (the
    masks must exclude every earlier hit), with many ties from small integers."""
    x = rng.integers(-1, 2, size=(2, 3, 4 * pool, 3 * pool)).astype(np.float64)
    dout = rng.standard_normal((2, 3, 4, 3))
    results = []
    for fast in (True, False):
        monkeypatch.setattr(Pooling, "fast", property(lambda self, f=fast: f))
        layer = Pooling(pool, pool, pool)
        out = layer.forward(xp.asarray(x))
        results.append((xp.to_numpy(out), xp.to_numpy(layer.backward(xp.asarray(dout)))))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
