"""``train(cuda_graph=True)`` and :class:`~xpnet.cuda.graph.CudaGraphStep` on the fake CuPy, which
enforces CuPy 14's stream-capture rules (see ``tests/fakecupy/cupy/_core.py``): a cuBLAS call,
a host sync, work on the legacy stream or a default-pool allocation inside the captured step, or
an unordered use of an array across streams, makes these tests fail."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
import xpnet.ops.cupy_ops
from xpnet.backend import to_numpy
from xpnet.cuda.graph import CudaGraphStep, graph_safe
from xpnet.training import train

ITERS = 8


def _data():
    rng = np.random.default_rng(3)
    x = rng.random((300, 784), dtype=np.float32)
    t = rng.integers(0, 10, 300)
    return x, t


def _run(xp, cuda_graph, spy=None, **kw):
    x, t = _data()
    net = xpnet.TwoLayerNet(784, 50, 10, xp=xp, dtype="float32", seed=0)
    h = train(net, x, t, x[:50], t[:50], iters=ITERS, batch_size=100, cuda_graph=cuda_graph,
              **kw)
    return h, {k: to_numpy(v) for k, v in net.params.items()}


def _run_extend(xp, cuda_graph, **kw):
    """The chapter-6 network (batch norm, dropout) with Adam: state that a step updates in
    place (optimizer moments, step count, dropout counter, running statistics)."""
    x, t = _data()
    net = xpnet.MultiLayerNetExtend(784, [40, 30], 10, use_batchnorm=True, use_dropout=True,
                                    dropout_ration=0.2, xp=xp, dtype="float32", seed=0)
    h = train(net, x, t, x[:50], t[:50], iters=ITERS, batch_size=100, cuda_graph=cuda_graph,
              optimizer=xpnet.optim.Adam(lr=0.001), **kw)
    return net, h


@pytest.fixture
def graph_steps(monkeypatch):
    """The CudaGraphStep objects train() makes, for inspection (its GraphStep asks the CuPy
    operations for one: :meth:`CupyOps.graph_step`)."""
    made = []
    real = xpnet.ops.cupy_ops.CupyOps.graph_step

    def spy(self, *args, **kwargs):
        step = real(self, *args, **kwargs)
        made.append(step)
        return step

    monkeypatch.setattr(xpnet.ops.cupy_ops.CupyOps, "graph_step", spy)
    return made


def test_graph_training_matches_numpy_and_eager(any_cupy, graph_steps):
    h_np, p_np = _run("numpy", False)
    _h_eager, p_eager = _run("cupy", False)
    h_graph, p_graph = _run("cupy", True)
    (step,) = graph_steps
    assert step.error is None
    assert step.eager_calls == 3
    assert step.launches == ITERS - 3
    if hasattr(step.graph, "launches"):  # the fake counts what ran; CuPy's Graph keeps no count
        assert step.graph.launches == ITERS - 3
    for key in p_np:
        np.testing.assert_allclose(p_eager[key], p_np[key], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(p_graph[key], p_np[key], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(h_graph.loss, h_np.loss, rtol=1e-5)
    # The graph replays compute exactly what eager steps with the same kernels compute.
    with graph_safe():
        h_safe, p_safe = _run("cupy", False)
    assert h_graph.loss == h_safe.loss
    for key in p_safe:
        np.testing.assert_array_equal(p_graph[key], p_safe[key])


def _inject(monkeypatch, what, cupy):
    """Make the network's step do ``what`` (a rule violation) on every call."""
    real = xpnet.TwoLayerNet.gradient

    def gradient(self, x, t, **kw):
        grads = real(self, x, t, **kw)
        if what == "cublas":
            self.params["W1"] @ self.params["W2"]
        elif what == "host_sync":
            float(self.last_loss)
        elif what == "blocking_stream":  # a step that hops to a blocking stream of its own
            with cupy.cuda.Stream():
                cupy.zeros(2, dtype=cupy.float32) * 2.0
        elif what == "stream_sync":
            cupy.cuda.get_current_stream().synchronize()
        return grads

    monkeypatch.setattr(xpnet.TwoLayerNet, "gradient", gradient)


@pytest.mark.parametrize(("what", "error"), [
    ("cublas", "NotImplementedError: calling cuBLAS API during stream capture"),
    ("host_sync", "RuntimeError: the current stream is capturing, so D2H"),
    ("blocking_stream", "RuntimeError: fake cupy: work queued on"),
    ("stream_sync", "CUDARuntimeError: cudaErrorStreamCaptureUnsupported"),
])
def test_a_rule_broken_in_the_step_fails_the_capture(any_cupy, graph_steps, monkeypatch, what,
                                                     error):
    if what == "blocking_stream" and not getattr(any_cupy, "FAKE", False):
        pytest.skip("CUDA runs other-stream work beside a capture; only the fake refuses it")
    h_ref, p_ref = _run("cupy", False)
    _inject(monkeypatch, what, any_cupy)
    with pytest.warns(RuntimeWarning, match="capture failed") as caught:
        h, p = _run("cupy", True)
    assert len(caught) == 1  # one warning, no second capture
    assert error in str(caught[0].message)  # the first error, not "invalidated"
    (step,) = graph_steps
    assert step.graph is None
    assert step.launches == 0
    assert step.eager_calls == ITERS
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-5)  # eager fallback: same steps
    for key in p_ref:
        np.testing.assert_allclose(p[key], p_ref[key], rtol=1e-4, atol=1e-6)


def test_legacy_stream_work_in_a_captured_step_runs_once_outside_the_graph(any_cupy):
    """CUDA's rule, modelled exactly: while a non-blocking stream captures (as the graph step's
    does), work on the legacy stream is not refused: it runs once, at capture, and is not part
    of the graph, so the replays silently skip it. xpnet must never depend on it (next test)."""
    cp = any_cupy
    acc = cp.zeros(1, dtype=cp.float32)
    legacy = cp.zeros(1, dtype=cp.float32)

    def fn():
        acc[...] += 1.0
        with cp.cuda.Stream.null:
            legacy[...] += 1.0  # runs now, on the legacy stream, outside the graph
        return acc

    step = CudaGraphStep(fn, warmup=1, cupy=cp)
    fake = getattr(cp, "FAKE", False)
    before = cp._core.STATS["outside_graph"] if fake else 0
    for _ in range(5):
        with step.stream:
            step()
    step.stream.synchronize()
    assert step.error is None
    assert step.launches == 4
    assert acc.get()[0] == 5  # warm-up + 4 replays
    assert legacy.get()[0] == 2  # warm-up + the capture itself; no replay runs it
    if fake:
        assert cp._core.STATS["outside_graph"] > before  # counted: it ran outside the graph


def test_legacy_stream_work_fails_a_blocking_capture(fake_cupy):
    cp = fake_cupy
    s = cp.cuda.Stream()  # blocking: ordered with the legacy stream
    a = cp.zeros(2, dtype=cp.float32)
    s.wait_event(cp.cuda.Stream.null.record())
    with s:
        s.begin_capture()
        with pytest.raises(cp.cuda.runtime.CUDARuntimeError,
                           match="cudaErrorStreamCaptureImplicit"), cp.cuda.Stream.null:
            a + 1
        with pytest.raises(cp.cuda.runtime.CUDARuntimeError,
                           match="cudaErrorStreamCaptureInvalidated"):
            s.end_capture()


@pytest.mark.parametrize("model", ["two_layer", "batchnorm_dropout_adam"])
def test_graph_training_does_no_work_outside_the_graph(fake_cupy, graph_steps, model):
    """Nothing of xpnet's captured step runs on the legacy stream (it would run once, at
    capture, and never in a replay)."""
    before = fake_cupy._core.STATS["outside_graph"]
    if model == "two_layer":
        _run("cupy", True)
    else:
        _run_extend("cupy", True)
    (step,) = graph_steps
    assert step.error is None
    assert step.launches > 0
    assert fake_cupy._core.STATS["outside_graph"] == before


def test_graph_step_without_graph_safe_matmul_fails(any_cupy, graph_steps, monkeypatch):
    monkeypatch.setattr(xpnet.ops.cupy_ops, "graph_safe_active", lambda: False)
    with pytest.warns(RuntimeWarning, match="cuBLAS"):
        _run("cupy", True)


def test_default_pool_allocation_during_capture_raises(fake_cupy):
    s = fake_cupy.cuda.Stream(non_blocking=True)
    with s:
        a = fake_cupy.zeros(3, dtype=fake_cupy.float32)
        s.begin_capture()
        with pytest.raises(RuntimeError, match="default memory pool"):
            a + 1
        s.end_capture()
        pool = fake_cupy.cuda.MemoryPool()
        s.begin_capture()
        with fake_cupy.cuda.using_allocator(pool.malloc):
            b = a + 1
        g = s.end_capture()
        g.launch()
        np.testing.assert_array_equal(b.get(), [1, 1, 1])
        assert pool.n_allocs == 1


def test_arrays_made_on_the_legacy_stream_need_ordering(fake_cupy):
    a = fake_cupy.zeros(3, dtype=fake_cupy.float32)  # legacy stream
    s = fake_cupy.cuda.Stream(non_blocking=True)
    with s, pytest.raises(RuntimeError, match="no ordering"):
        a + 1
    s.wait_event(fake_cupy.cuda.Stream.null.record())
    with s:
        b = a + 1
    with pytest.raises(RuntimeError, match="no ordering"):
        b.get()  # written on s, read on the legacy stream
    s.synchronize()
    np.testing.assert_array_equal(b.get(), [1, 1, 1])


def test_graph_step_orders_its_inputs_and_replays(any_cupy):
    cp = any_cupy
    x = cp.arange(4, dtype=cp.float32)  # legacy stream, before the step exists
    acc = cp.zeros(4, dtype=cp.float32)

    def fn():
        acc[...] += x
        return acc * 2.0

    step = CudaGraphStep(fn, warmup=1, cupy=cp)
    outs = []
    for _ in range(4):
        with step.stream:
            outs.append(cp.asarray(step(), dtype=cp.float32).copy())
    step.stream.synchronize()
    assert step.eager_calls == 1
    assert step.launches == 3
    np.testing.assert_array_equal(acc.get(), 4 * np.arange(4))
    for k, out in enumerate(outs, start=1):
        np.testing.assert_array_equal(out.get(), 2 * k * np.arange(4))


def test_capture_failure_reports_the_first_error_and_never_recaptures(any_cupy):
    cp = any_cupy
    calls = {"n": 0}

    def fn():
        calls["n"] += 1
        out = cp.ones(2, dtype=cp.float32)
        cp.cuda.get_current_stream().synchronize()  # invalidates the capture
        return out

    step = CudaGraphStep(fn, warmup=0, cupy=cp)
    with pytest.warns(RuntimeWarning, match="cudaErrorStreamCaptureUnsupported"):
        step()
    assert isinstance(step.error, cp.cuda.runtime.CUDARuntimeError)
    assert not step.stream.is_capturing()
    step()
    step()
    assert step.graph is None
    assert calls["n"] == 4


def test_graph_batchnorm_running_statistics_match_eager(any_cupy, graph_steps):
    """Batch norm's running mean and variance accumulate over every replayed step, as in eager
    steps with the same kernels (they must be updated in place: a captured step that rebinds
    them keeps reading the warm-up arrays, whose memory later temporaries reuse)."""
    with graph_safe():
        eager, h_eager = _run_extend("cupy", False)
    graph, h_graph = _run_extend("cupy", True)
    (step,) = graph_steps
    assert step.error is None
    assert step.launches == ITERS - 3
    stats_eager, stats_graph = eager.buffers(), graph.buffers()
    assert stats_eager  # running_mean1, running_var1, ...
    for name, value in stats_eager.items():
        np.testing.assert_array_equal(to_numpy(stats_graph[name]), to_numpy(value), err_msg=name)
    for key in eager.params:
        np.testing.assert_array_equal(to_numpy(graph.params[key]), to_numpy(eager.params[key]),
                                      err_msg=key)
    assert h_graph.loss == h_eager.loss
