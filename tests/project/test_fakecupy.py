"""The fake CuPy of ``tests/fakecupy`` is not kinder than CuPy: each rule here is one that the
real CuPy (or CUDA) enforces and that xpnet's CuPy paths must survive (see
``tests/fakecupy/cupy/_core.py`` for the sources)."""

from __future__ import annotations

import numpy as np
import pytest


def test_kernel_arguments_of_the_wrong_dtype_are_refused(fake_cupy):
    """CuPy's ``_decide_params_type_core``: no silent casts of array arguments."""
    cp = fake_cupy
    k = cp.ElementwiseKernel("T x, raw uint64 ctr", "T y, bool m", "y = x; m = true;", "k")
    x = cp.asarray(np.ones(3, dtype=np.float32))
    good = cp.zeros((), dtype=cp.uint64)
    y, m = k(x, good)
    assert y.dtype == np.float32
    assert m.dtype == np.bool_
    with pytest.raises(TypeError, match=r"Type is mismatched\. ctr int64 uint64"):
        k(x, cp.zeros((), dtype=cp.int64))  # a fixed-type raw parameter
    with pytest.raises(TypeError, match=r"Type is mismatched\. m uint8 bool"):
        k(x, good, cp.zeros(3, dtype=cp.float32), cp.zeros(3, dtype=cp.uint8))  # an output
    with pytest.raises(TypeError, match=r"Type is mismatched\. x float32 float64 T"):
        k(x, good, cp.zeros(3, dtype=cp.float64), cp.zeros(3, dtype=cp.bool_))  # T from y
    two = cp.ElementwiseKernel("T a, T b", "T c", "c = a + b;", "k2")
    with pytest.raises(TypeError, match=r"Type is mismatched\. b float64 float32 T"):
        two(x, cp.asarray(np.ones(3)))
    # Scalars never decide a type: they are cast to what the arrays decided.
    np.testing.assert_array_equal(two(x, np.float64(2.5)).get(), [3.5, 3.5, 3.5])
    with pytest.raises(KeyError, match="no array argument decides the type T"):
        cp.ElementwiseKernel("T a", "T b", "b = a;", "k3")(np.float32(1.0), size=3)


def test_float32_kernels_flush_denormals_float64_kernels_do_not(fake_cupy):
    """CuPy compiles with ``-ftz=true``: single precision flushes denormal inputs and results to
    zero; double precision keeps them. Comparisons with NumPy must allow for it."""
    cp = fake_cupy
    k = cp.ElementwiseKernel("T x", "T y, bool pos", "y = x * (T)0.5; pos = x > (T)0;", "ftz")
    tiny32 = np.float32(np.finfo(np.float32).tiny)  # the smallest normal float32
    y, pos = k(cp.asarray(np.array([tiny32, 4 * tiny32, tiny32 / 4], dtype=np.float32)))
    np.testing.assert_array_equal(y.get(), [0.0, 2 * tiny32, 0.0])  # NumPy: tiny/2, 2 tiny, tiny/8
    np.testing.assert_array_equal(pos.get(), [True, True, False])  # a denormal input reads as 0
    tiny64 = np.finfo(np.float64).tiny
    y64, pos64 = k(cp.asarray(np.array([tiny64, tiny64 / 4])))
    np.testing.assert_array_equal(y64.get(), [tiny64 / 2, tiny64 / 8])
    np.testing.assert_array_equal(pos64.get(), [True, True])
    # ... and NumPy on the host is unaffected afterwards.
    assert np.float32(tiny32) * np.float32(0.5) > 0


def test_freed_memory_is_reused_by_the_next_allocation_of_its_size(fake_cupy):
    cp = fake_cupy
    pool = cp.cuda.MemoryPool()
    with cp.cuda.using_allocator(pool.malloc):
        a = cp.zeros(100, dtype=cp.float32)
        where = a.data.ptr
        del a
        b = cp.ones(100, dtype=cp.float32)  # same rounded size: the same block
        c = cp.ones(1000, dtype=cp.float32)  # another size: a new block
    assert b.data.ptr == where
    assert c.data.ptr != where
    assert pool.n_reused == 1


def test_capture_computes_nothing_and_its_freed_memory_feeds_later_temporaries(fake_cupy):
    """While a stream captures nothing runs (new arrays hold garbage until a replay), and an
    array that the captured work rebinds is freed at capture: its memory goes to the next
    temporary of its size, which every replay then overwrites. This is why a step must update
    persistent state in place (xpnet's batch norm, optimizers and dropout counter do)."""
    cp = fake_cupy
    stream = cp.cuda.Stream(non_blocking=True)
    pool = cp.cuda.MemoryPool()
    state = {"kept": None, "rebound": None}
    with stream, cp.cuda.using_allocator(pool.malloc):
        state["kept"] = cp.zeros(4, dtype=cp.float32)
        state["rebound"] = cp.zeros(4, dtype=cp.float32)
        stream.begin_capture()
        state["kept"] += 1.0  # in place: the graph updates this memory
        out = state["kept"] * 2.0
        assert np.isnan(out._a).all()  # nothing computed yet (the fake's garbage is NaN)
        state["rebound"] = state["rebound"] + 1.0  # the old array is freed now ...
        scratch = cp.full(4, 7.0, dtype=cp.float32)  # ... and its block serves this one
        del scratch
        graph = stream.end_capture()
        for _ in range(3):
            graph.launch()
        stream.synchronize()
    np.testing.assert_array_equal(state["kept"].get(), [3, 3, 3, 3])
    np.testing.assert_array_equal(out.get(), [6, 6, 6, 6])
    # Each replay adds 1 to what it reads, which the scratch fill overwrote with 7: not 3.
    np.testing.assert_array_equal(state["rebound"].get(), [8, 8, 8, 8])


def test_two_devices_with_cupys_current_device_rules(fake_cupy):
    cp = fake_cupy
    assert cp.cuda.runtime.getDeviceCount() == 2
    on0 = cp.zeros(3, dtype=cp.float32)
    with cp.cuda.Device(1):
        on1 = cp.ones(3, dtype=cp.float32)
        assert cp.cuda.Device().id == 1
        stream1 = cp.cuda.Stream(non_blocking=True)
    assert on0.device == cp.cuda.Device(0)
    assert on1.device == cp.cuda.Device(1)
    assert cp.cuda.Device().id == 0  # restored
    with pytest.raises(ValueError, match=r"resides \(1\) is different from the current device"):
        on1 + 1.0  # current device 0
    with pytest.raises(ValueError, match="Peer access is unavailable"):
        on0 + on1
    with pytest.raises(RuntimeError, match=r"stream is created on \(1\) does not match"), \
            stream1:
        pass
    with cp.cuda.Device(1):
        np.testing.assert_array_equal((on1 + 1.0).get(), [2, 2, 2])
        with stream1:
            np.testing.assert_array_equal(cp.arange(2).get(), [0, 1])
    np.testing.assert_array_equal(on1.get(), [1, 1, 1])  # reads work from any current device
    import array_api_compat.cupy as xp

    moved = xp.asarray(np.arange(3.0), device=cp.cuda.Device(1))
    assert moved.device == cp.cuda.Device(1)
    # array-api-compat's creation functions ignore device= on CuPy: the current device wins.
    assert xp.zeros(3, device=cp.cuda.Device(1)).device == cp.cuda.Device(0)


def test_fake_nccl_is_the_real_one_without_libnccl(fake_cupy):
    from cupy.cuda import nccl

    assert nccl.available is False
    assert not hasattr(nccl, "get_unique_id")
