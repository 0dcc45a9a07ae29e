"""Seeded random numbers on every backend's device (:mod:`xpnet.rng`)."""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest

from xpnet import backend
from xpnet.rng import random_generator


def test_random_generator_draws_on_the_device(xp):
    gen = random_generator(xp.namespace, xp.device, seed=7)
    for dtype in ("float32", "float64"):
        u = gen.random((200, 3), dtype)
        xp.assert_on(u, dtype, (200, 3))
        host = xp.to_numpy(u)
        assert host.min() >= 0.0
        assert host.max() < 1.0
        assert 0.4 < host.mean() < 0.6  # 600 uniforms: mean 0.5, sd 0.012
    xp.assert_on(gen.random(5, xp.float32), "float32", (5,))


def test_random_generator_same_seed_same_stream(xp):
    a, b = (random_generator(xp.namespace, xp.device, seed=11) for _ in range(2))
    first = [xp.to_numpy(a.random((4, 5), "float32")) for _ in range(3)]
    second = [xp.to_numpy(b.random((4, 5), "float32")) for _ in range(3)]
    for x, y in zip(first, second, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0], first[1])  # the stream moves on
    other = random_generator(xp.namespace, xp.device, seed=12)
    assert not np.array_equal(xp.to_numpy(other.random((4, 5), "float32")), first[0])


def test_random_generator_numpy_stream_is_numpys_default_rng():
    gen = random_generator("numpy", None, seed=5)
    want = np.random.default_rng(5)
    np.testing.assert_array_equal(gen.random((3, 4)), want.random((3, 4)))
    np.testing.assert_array_equal(gen.random(6, "float32"), want.random(6, dtype=np.float32))


def test_random_generator_restored_state_continues_the_stream(xp):
    import json

    gen = random_generator(xp.namespace, xp.device, seed=3)
    gen.random((2, 3), "float64")
    state = json.loads(json.dumps(gen.get_state()))  # plain host data survives JSON
    after = [xp.to_numpy(gen.random((2, 3), "float64")) for _ in range(2)]

    fresh = random_generator(xp.namespace, xp.device, seed=99)
    fresh.set_state(state)
    for want in after:
        np.testing.assert_array_equal(xp.to_numpy(fresh.random((2, 3), "float64")), want)
    gen.set_state(state)  # and back into the same generator
    np.testing.assert_array_equal(xp.to_numpy(gen.random((2, 3), "float64")), after[0])


def test_random_generator_errors(xp):
    with pytest.raises(ValueError, match="seed must be a non-negative integer or None, got -1"):
        random_generator(xp.namespace, xp.device, seed=-1)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        random_generator(xp.namespace, xp.device, seed=1.5)
    gen = random_generator(xp.namespace, xp.device, seed=0)
    with pytest.raises(TypeError, match="random numbers come as float32 or float64, got"):
        gen.random(3, "int32")
    with pytest.raises(ValueError, match="state given comes from 'elsewhere'"):
        gen.set_state({"backend": "elsewhere", "state": None})


def test_random_generator_default_device_is_the_backends(xp):
    gen = random_generator(xp.namespace, None, seed=1)
    u = gen.random(3)
    assert repr(array_api_compat.device(u)) == repr(backend.default_device(xp.namespace))
    assert repr(gen.device) == repr(array_api_compat.device(u))
