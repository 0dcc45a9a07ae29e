"""xpnet.ops.numpy_ops: NumPy's operations split over threads give the portable operations'
results (to float32 tolerance), the networks' gradients with them equal the unthreaded ones,
and only NumPy takes that path."""

from __future__ import annotations

import threading

import array_api_compat.numpy as xnp
import numpy as np
import pytest

from xpnet import blas_threads
from xpnet.nets import DeepConvNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet
from xpnet.ops import NumpyOps, Ops, Workspace, numpy_ops, ops_for
from xpnet.optim import Adam

PORTABLE = Ops(xnp)
TOL = {"rtol": 1e-5, "atol": 1e-6}


@pytest.fixture
def split_small(monkeypatch):
    """Every array is split (the threshold down to 1 element); records how many pieces each
    call was cut into."""
    monkeypatch.setattr(numpy_ops, "MIN_SPLIT", 1)
    seen: list[int] = []
    run = numpy_ops._Pool.run

    def recording(self, fn, ranges):
        seen.append(len(ranges))
        return run(self, fn, ranges)

    monkeypatch.setattr(numpy_ops._Pool, "run", recording)
    before = blas_threads.get_threads()
    yield seen
    blas_threads.set_threads(before)


@pytest.fixture(params=[2, 3])
def threaded(request, split_small):
    blas_threads.set_threads(request.param)
    return NumpyOps(xnp), split_small


def test_spans_cover_the_range_in_near_equal_pieces():
    assert numpy_ops.spans(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert numpy_ops.spans(2, 4) == [(0, 1), (1, 2)]  # never an empty piece
    assert numpy_ops.spans(5, 1) == [(0, 5)]


def test_numpy_alone_takes_the_threaded_operations(xp):
    ops = ops_for(xp.namespace)
    assert isinstance(ops, NumpyOps) == (xp.name == "numpy"), (xp.name, ops)
    assert ops.threads_line() is None or xp.name in ("numpy", "torch")


def _rand(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def test_relu_forward_and_backward(threaded, rng):
    ops, seen = threaded
    x = np.transpose(_rand(rng, 6, 5, 7, 7), (1, 0, 2, 3))  # (N, C, H, W) over (C, N, ...)
    out, mask = ops.relu_forward(x)
    want, want_mask = PORTABLE.relu_forward(x)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(mask, want_mask)
    d = _rand(rng, *x.shape)
    np.testing.assert_array_equal(ops.relu_backward(d, mask), PORTABLE.relu_backward(d, mask))
    assert max(seen) > 1  # the work was cut for several threads


@pytest.mark.parametrize(("C", "fh", "stride", "pad"), [
    (1, 5, 1, 0),  # one channel: split over the batch
    (4, 3, 1, 1),  # the reused, zero-bordered buffer
    (4, 3, 2, 1),  # strided, padded copy
    (5, 2, 2, 0),
])
def test_im2col_and_col2im(threaded, rng, C, fh, stride, pad):
    ops, seen = threaded
    N, H = 4, 9
    oh = (H + 2 * pad - fh) // stride + 1
    xt = _rand(rng, C, N, H, H)
    args = (fh, fh, stride, pad, oh, oh)
    want = PORTABLE.im2col_t(xt, *args)
    for _ in range(2):  # the second time reuses the workspace's buffers
        got = ops.im2col_t(xt, *args, Workspace())
        np.testing.assert_array_equal(got, want)
    work = Workspace()
    ops.im2col_t(xt, *args, work)
    np.testing.assert_array_equal(ops.im2col_t(xt, *args, work), want)
    col = _rand(rng, *want.shape)
    np.testing.assert_allclose(ops.col2im_t(col, (C, N, H, H), *args),
                               PORTABLE.col2im_t(col, (C, N, H, H), *args), **TOL)
    assert max(seen) > 1


@pytest.mark.parametrize(("C", "FN", "stride", "pad"), [
    (4, 6, 1, 1),  # the full convolution of dout
    (1, 8, 1, 0),  # more filters than channels: col2im
    (3, 4, 2, 1),  # strided: col2im
])
def test_conv_input_grad(threaded, rng, C, FN, stride, pad):
    ops, _ = threaded
    N, H, f = 3, 8, 3
    oh = (H + 2 * pad - f) // stride + 1
    d2 = _rand(rng, FN, N * oh * oh)
    w2 = _rand(rng, FN, C * f * f)
    args = (d2, w2, (C, N, H, H), f, f, stride, pad, oh, oh)
    np.testing.assert_allclose(ops.conv_input_grad(*args, Workspace()),
                               PORTABLE.conv_input_grad(*args, Workspace()), **TOL)


@pytest.mark.parametrize(("shape", "window", "stride", "pad"), [
    ((4, 3, 8, 8), 2, 2, 0),  # the masks
    ((4, 3, 9, 7), 2, 2, 0),  # odd sizes: the last row and column are read by no window
    ((3, 2, 10, 11), 3, 3, 0),  # 3x3 tiles: three row and three column parts
    ((3, 2, 7, 7), 3, 2, 1),  # overlapping, padded: arg_max
])
def test_max_pooling(threaded, rng, shape, window, stride, pad):
    ops, seen = threaded
    xt = _rand(rng, *shape)
    xt[0, 0, :2, :2] = 1.0  # a tie: the first maximum takes the gradient
    oh = (shape[2] + 2 * pad - window) // stride + 1
    ow = (shape[3] + 2 * pad - window) // stride + 1
    args = (window, window, stride, pad, oh, ow)
    out, saved = ops.max_pool_forward(xt, *args)
    want, want_saved = PORTABLE.max_pool_forward(xt, *args)
    np.testing.assert_array_equal(out, want)
    assert saved[0] == want_saved[0]
    d = _rand(rng, *want.shape)
    np.testing.assert_array_equal(ops.max_pool_backward(d, saved, shape, *args),
                                  PORTABLE.max_pool_backward(d, want_saved, shape, *args))
    assert max(seen) > 1


@pytest.mark.parametrize("mkn", [(3, 5, 40), (40, 5, 3), (3, 40, 5)])  # cut n, m, k
def test_matmul_large_cut_along_each_dimension(threaded, rng, mkn):
    ops, seen = threaded
    m, k, n = mkn
    a, b = _rand(rng, m, k), _rand(rng, k, n)
    np.testing.assert_allclose(ops.matmul_large(a, b), a @ b, **TOL)
    np.testing.assert_allclose(ops.matmul_large(b.T, a.T), b.T @ a.T, **TOL)  # strided
    assert max(seen) > 1


def test_one_thread_runs_everything_on_the_calling_thread(split_small, rng):
    blas_threads.set_threads(1)
    ops = NumpyOps(xnp)
    ops.relu_forward(_rand(rng, 4, 4, 5, 5))
    ops.matmul_large(_rand(rng, 8, 8), _rand(rng, 8, 8))
    assert set(split_small) <= {1}


def test_the_pool_runs_pieces_on_its_workers_and_each_piece_once():
    seen: list[tuple[int, int, int]] = []
    barrier = threading.Barrier(3, timeout=10)

    def piece(a, b):
        barrier.wait()  # all three at once: each on a thread of its own
        seen.append((a, b, threading.get_ident()))
        return a

    assert numpy_ops._Pool().run(piece, [(0, 1), (1, 2), (2, 3)]) == [0, 1, 2]
    assert sorted(r[:2] for r in seen) == [(0, 1), (1, 2), (2, 3)]
    assert len({r[2] for r in seen}) == 3


def test_a_piece_no_worker_started_runs_on_the_calling_thread():
    pool = numpy_ops._Pool()
    release = threading.Event()
    pool.run(lambda a, b: None, [(0, 1), (1, 2)])  # makes the one worker
    where: list[int] = []
    busy = pool._executor.submit(release.wait, 10)  # holds the only worker
    try:
        pool.run(lambda a, b: where.append(threading.get_ident()), [(0, 1), (1, 2)])
    finally:
        release.set()
        busy.result()
    assert where == [threading.get_ident()] * 2


def test_small_arrays_are_not_split(rng):
    before = blas_threads.set_threads(2)
    try:
        ops = NumpyOps(xnp)
        assert ops._parts(numpy_ops.MIN_SPLIT - 1, 100) == 1
        assert ops._parts(4 * numpy_ops.MIN_SPLIT, 100) == 2
        assert ops._parts(4 * numpy_ops.MIN_SPLIT, 1) == 1  # nothing to cut along
    finally:
        blas_threads.set_threads(before)


# --------------------------------------------------------------------------- whole networks

def _gradients(make, x, t, threads: int) -> dict[str, np.ndarray]:
    blas_threads.set_threads(threads)
    net = make()
    return {k: np.array(v) for k, v in net.gradient(x, t).items()}


NETS = {
    "SimpleConvNet": (lambda: SimpleConvNet(seed=0, dtype="float32"), (1, 28, 28)),
    "DeepConvNet": (lambda: DeepConvNet(seed=0, dtype="float32"), (1, 28, 28)),
    "MLP": (lambda: MultiLayerNetExtend(784, [100, 100, 100], 10, use_batchnorm=True,
                                        use_dropout=True, seed=0, dtype="float32"), (784,)),
    "TwoLayerNet": (lambda: TwoLayerNet(784, 50, 10, seed=0, dtype="float32"), (784,)),
}


@pytest.mark.parametrize("name", list(NETS))
@pytest.mark.parametrize("split_everything", [False, True])
def test_threaded_gradients_equal_the_unthreaded_ones(name, split_everything, rng,
                                                       monkeypatch):
    if split_everything:  # the small networks' arrays too
        monkeypatch.setattr(numpy_ops, "MIN_SPLIT", 64)
    make, shape = NETS[name]
    x = rng.random((40, *shape), dtype=np.float32)
    t = rng.integers(0, 10, 40)
    before = blas_threads.get_threads()
    try:
        one = _gradients(make, x, t, 1)
        for threads in (2, 3):
            many = _gradients(make, x, t, threads)
            for key, value in one.items():
                scale = float(np.max(np.abs(value))) or 1.0
                np.testing.assert_allclose(many[key], value, rtol=1e-4, atol=1e-6 * scale,
                                           err_msg=f"{name} {key} at {threads} threads")
    finally:
        blas_threads.set_threads(before)


def test_a_threaded_training_step_changes_the_weights_as_an_unthreaded_one(rng):
    x = rng.random((30, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, 30)
    before = blas_threads.get_threads()
    weights = []
    try:
        for threads in (1, 2):
            blas_threads.set_threads(threads)
            net, opt = SimpleConvNet(seed=1, dtype="float32"), Adam(lr=0.01)
            for _ in range(3):
                opt.update(net.params, net.gradient(x, t))
            weights.append({k: np.array(v) for k, v in net.params.items()})
    finally:
        blas_threads.set_threads(before)
    for key in weights[0]:  # Adam moves each weight by up to lr = 0.01 per step
        np.testing.assert_allclose(weights[1][key], weights[0][key], rtol=1e-4, atol=1e-5)


def test_adam_update_in_pieces_equals_the_portable_update(threaded, rng, monkeypatch):
    monkeypatch.setattr(numpy_ops, "MIN_SPLIT_UPDATE", 1)
    ops, seen = threaded
    arrays = {name: _rand(rng, 37, 11) for name in ("p", "g", "m")}
    arrays["v"] = np.abs(_rand(rng, 37, 11))
    mine = {k: v.copy() for k, v in arrays.items()}
    theirs = {k: v.copy() for k, v in arrays.items()}
    rate = np.float32(0.003)
    args = (1, 0.001, 0.9, 0.999, 1e-7, lambda: rate)
    ops.adam_update(mine, "p", mine["g"], mine["m"], mine["v"], *args)
    PORTABLE.adam_update(theirs, "p", theirs["g"], theirs["m"], theirs["v"], *args)
    for key in arrays:
        np.testing.assert_array_equal(mine[key], theirs[key])
    assert max(seen) > 1


def test_a_wide_affine_product_is_cut_and_a_small_one_is_not(monkeypatch, rng):
    before = blas_threads.set_threads(2)
    calls: list[int] = []
    run = numpy_ops._Pool.run
    monkeypatch.setattr(numpy_ops._Pool, "run",
                        lambda self, fn, ranges: calls.append(len(ranges)) or run(self, fn,
                                                                                  ranges))
    try:
        ops = NumpyOps(xnp)
        a, b = _rand(rng, 100, 4320), _rand(rng, 4320, 100)  # SimpleConvNet's Affine1
        np.testing.assert_allclose(ops.matmul(a, b), a @ b, rtol=1e-4, atol=1e-3)
        assert calls == [2]
        ops.matmul(_rand(rng, 100, 784), _rand(rng, 784, 100))  # the book's MLP
        assert calls == [2]
    finally:
        blas_threads.set_threads(before)
