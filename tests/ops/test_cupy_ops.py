"""The CuPy fast path without a GPU: CPU paths never import CuPy, and on the fake CuPy of
``tests/fakecupy`` (NumPy underneath, CuPy 14's stream-capture rules on top, kernel bodies
compiled with g++) the fused kernels, the layers' fused branches and the CUDA-graph step run end
to end and are checked against NumPy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import xpnet
from xpnet import backend
from xpnet.cuda.graph import graph_safe
from xpnet.layers import Affine, Relu, SoftmaxWithLoss
from xpnet.ops import CupyOps, NumpyOps, ops_for
from xpnet.training import train


def test_cpu_training_never_imports_cupy():
    code = (
        "import sys, numpy as np, xpnet\n"
        "from xpnet.training import train\n"
        "from xpnet.backend import get_namespace\n"
        "from xpnet.ops import NumpyOps, ops_for\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.random((200, 784), dtype=np.float32); t = rng.integers(0, 10, 200)\n"
        "net = xpnet.TwoLayerNet(784, 20, 10, dtype='float32', seed=0)\n"
        "train(net, x, t, x[:50], t[:50], iters=5, batch_size=20)\n"
        "assert type(ops_for(get_namespace('numpy'))) is NumpyOps\n"
        "assert 'cupy' not in sys.modules, 'cupy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fused_kernels_are_none_off_cupy(xp):
    ops = ops_for(xp.namespace)
    if backend.backend_name(xp.namespace) == "cupy":
        assert isinstance(ops, CupyOps)
    else:
        assert not isinstance(ops, CupyOps)  # the portable operations (torch: its own rng)


def test_fused_kernels_are_returned_on_cupy(any_cupy):
    import array_api_compat.cupy as xp

    kernels = ops_for(xp)
    assert isinstance(kernels, CupyOps)
    assert ops_for(xp) is kernels  # one instance per namespace
    assert type(ops_for(backend.get_namespace("numpy"))) is NumpyOps


def test_cuda_graph_needs_cupy():
    net = xpnet.TwoLayerNet(4, 3, 2, dtype="float32", seed=0)
    x = np.zeros((8, 4), dtype=np.float32)
    t = np.zeros(8, dtype=np.int64)
    with pytest.raises(ValueError, match="cupy"):
        train(net, x, t, x, t, iters=1, batch_size=2, cuda_graph=True)


# --- the kernels and the layers' fused branches, against NumPy -----------------------------

@pytest.fixture
def cupy_xp(any_cupy):
    import array_api_compat.cupy as cupy_xp

    return cupy_xp


def _dev(cupy_xp, host):
    return cupy_xp.asarray(np.array(host))


# CuPy compiles kernels with -ftz=true: float32 denormals (below 1.2e-38) read and write as 0.
# Comparisons with NumPy allow that much absolutely; exact ones hold for normal values only.
FTZ = float(np.finfo(np.float32).tiny)


def test_kernels_match_numpy(cupy_xp, rng):
    k = ops_for(cupy_xp)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    x[0, :2] = 0.0
    x[1, :2] = FTZ / 4, -FTZ / 4  # denormals: NumPy keeps them, a -ftz kernel reads 0
    y, m = k.relu_forward(_dev(cupy_xp, x))
    np.testing.assert_allclose(y.get(), np.maximum(x, 0), rtol=0, atol=FTZ)
    normal = np.abs(x) >= FTZ
    np.testing.assert_array_equal(m.get()[normal], (x <= 0)[normal])
    d = rng.standard_normal((6, 5)).astype(np.float32)
    np.testing.assert_array_equal(k.relu_backward(_dev(cupy_xp, d), m).get(),
                                  np.where(m.get(), 0, d))
    p = rng.standard_normal((6, 5)).astype(np.float32)
    pd = _dev(cupy_xp, p)
    params = {"p": pd}
    calls = k.calls
    k.sgd_update(params, "p", _dev(cupy_xp, d), 0.1)
    assert k.calls == calls + 1  # one kernel, in place
    assert params["p"] is pd
    np.testing.assert_allclose(pd.get(), p - np.float32(0.1) * d, rtol=1e-6, atol=FTZ)
    a = rng.standard_normal((7, 4)).astype(np.float32)
    b = rng.standard_normal((7, 3)).astype(np.float32)
    with graph_safe():  # xpnet's own kernel instead of cuBLAS
        got = k.matmul(_dev(cupy_xp, a).T, _dev(cupy_xp, b))  # a transposed (strided) operand
        np.testing.assert_allclose(got.get(), a.T.astype(np.float64) @ b, rtol=1e-5, atol=1e-6)
        with pytest.raises(ValueError, match="matmul"):
            k.matmul(_dev(cupy_xp, a), _dev(cupy_xp, b))


@pytest.mark.parametrize("labels", ["index", "rows"])
def test_softmax_grad_kernel_matches_numpy(cupy_xp, rng, labels):
    k = ops_for(cupy_xp)
    y = rng.random((4, 3)).astype(np.float32)
    t = np.array([2, 0, 1, 2])
    hot = np.eye(3, dtype=np.float32)[t]
    given = _dev(cupy_xp, t) if labels == "index" else _dev(cupy_xp, hot)
    got = k.softmax_grad(_dev(cupy_xp, y), given, None, 0.25, rows=labels == "rows")
    np.testing.assert_allclose(got.get(), (y - hot) * 0.25, rtol=1e-6)


def _softmax_loss_reference(x, hot):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    return -np.sum(hot * np.log(y)) / x.shape[0], y


def test_layers_fused_branches_on_cupy(cupy_xp, rng):
    kernels = ops_for(cupy_xp)
    before = kernels.calls
    x = rng.standard_normal((5, 4)).astype(np.float32)
    relu = Relu()
    out = relu.forward(_dev(cupy_xp, x))
    np.testing.assert_array_equal(out.get(), np.maximum(x, 0))
    d = rng.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_array_equal(relu.backward(_dev(cupy_xp, d)).get(), d * (x > 0))
    assert kernels.calls == before + 2  # both went through the fused kernels

    scores = rng.standard_normal((5, 3)).astype(np.float32)
    t = np.array([0, 2, 1, 1, 0])
    hot = np.eye(3, dtype=np.float32)[t]
    loss_ref, y_ref = _softmax_loss_reference(scores, hot)
    for given in (_dev(cupy_xp, t), _dev(cupy_xp, hot)):
        layer = SoftmaxWithLoss()
        loss = layer.forward(_dev(cupy_xp, scores), given)
        np.testing.assert_allclose(float(loss), loss_ref, rtol=1e-5)
        calls = kernels.calls
        np.testing.assert_allclose(layer.backward().get(), (y_ref - hot) / 5, rtol=1e-5,
                                   atol=1e-7)
        assert kernels.calls == calls + 1
        # An array dout takes the portable branch: same values times dout.
        dx = layer.backward(_dev(cupy_xp, np.float32(3.0)))
        np.testing.assert_allclose(dx.get(), 3.0 * (y_ref - hot) / 5, rtol=1e-5, atol=1e-7)


def test_affine_uses_own_matmul_only_when_graph_safe(cupy_xp, any_cupy, rng):
    x = rng.standard_normal((6, 4)).astype(np.float32)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    d = rng.standard_normal((6, 3)).astype(np.float32)
    results = []
    for safe in (False, True):
        layer = Affine(_dev(cupy_xp, w), _dev(cupy_xp, b))
        fake = getattr(any_cupy, "FAKE", False)  # the fake counts cuBLAS calls
        cublas = any_cupy._core.STATS["cublas"] if fake else 0
        with graph_safe() if safe else np.errstate():
            out = layer.forward(_dev(cupy_xp, x))
            dx = layer.backward(_dev(cupy_xp, d))
        if fake:
            assert (any_cupy._core.STATS["cublas"] == cublas) == safe
        results.append((out.get(), dx.get(), layer.dW.get(), layer.db.get()))
    want = (x.astype(np.float64) @ w + b, d.astype(np.float64) @ w.T, x.T.astype(np.float64) @ d,
            d.sum(axis=0))
    for got in results:
        for g, r in zip(got, want, strict=True):
            np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)
