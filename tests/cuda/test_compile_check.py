"""``python -m xpnet.cuda --compile-only``: every kernel variant compiled by the real NVRTC.

The table of kernels (``xpnet/cuda/kernels.py``) must hold every variant xpnet launches: a run
on the fake CuPy records each launch (kernel, dtypes, which arguments are scalars) and each must
be one the compile check builds. The compile itself needs the real CuPy with NVRTC and the
CUDA headers but no GPU; CI runs it in its CuPy venv (``.ci/run``), and skips it elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
import xpnet.conv
from xpnet.cuda.compile_check import LAYOUTS, main, variants
from xpnet.cuda.graph import graph_safe
from xpnet.cuda.kernels import KERNELS, KernelSource
from xpnet.ops import CupyOps, ops_for
from xpnet.training import sgd_step, train

from ..helpers import skip_without_real_cupy as _skip

BROKEN = KernelSource("broken", "T x", "T y", "y = x + undefined_name;")


def _nvrtc() -> None:
    try:
        import cupy
    except Exception as exc:
        _skip(f"the real CuPy is not installed ({type(exc).__name__}); CI compiles in its "
                    "CuPy venv: pip install cupy-cuda12x nvidia-cuda-nvrtc-cu12 "
                    "nvidia-cuda-runtime-cu12")
    if getattr(cupy, "FAKE", False):
        _skip("cupy here is the fake of tests/fakecupy; NVRTC needs the real one")
    from xpnet.cuda.compile_check import compiler_options

    try:
        compiler_options("sm_90")
    except RuntimeError as exc:
        _skip(f"CuPy finds no CUDA headers for NVRTC: {exc}")


def test_a_broken_kernel_fails_the_command(capsys):
    _nvrtc()
    assert main(["--compile-only", "--arch", "sm_90"], kernels=[BROKEN]) == 1
    out = capsys.readouterr().out
    assert "FAIL sm_90  xpnet_broken" in out
    assert 'identifier "undefined_name" is undefined' in out
    assert f"{len(LAYOUTS) * 3} variants compiled" in out  # float16/32/64 x layouts
    assert f"0 ok, {len(LAYOUTS) * 3} failed" in out


def test_the_kernels_compile_for_both_architectures(capsys):
    """A sample here (the CI step compiles all of them): the ReLU pair and max pooling."""
    _nvrtc()
    chosen = ["--kernel", "relu_forward", "--kernel", "xpnet_max_pool_backward"]
    assert main(["--compile-only", "--arch", "sm_90", "--arch", "sm_80", *chosen]) == 0
    out = capsys.readouterr().out
    expected = 2 * 2 * 3 * len(LAYOUTS)
    assert f"{expected} variants compiled (2 kernels, 2 architectures): {expected} ok" in out


def test_an_unknown_kernel_name_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--compile-only", "--kernel", "relu_forwrd"])
    assert stop.value.code == 2
    assert "unknown kernel(s) relu_forwrd" in capsys.readouterr().err


def test_every_variant_xpnet_launches_is_in_the_compile_check(fake_cupy):
    """Each layer, optimizer, generator and graph-safe path xpnet runs on CuPy, on the fake:
    every launch must name a kernel of the table with dtypes the table lists and the same
    scalar arguments (the compile check builds scalars and arrays differently)."""
    launches = fake_cupy._core.KERNEL_LAUNCHES
    launches.clear()
    rng = np.random.default_rng(0)
    x, t = rng.random((120, 784), dtype=np.float32), rng.integers(0, 10, 120)
    for name in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"):
        for dtype in ("float32", "float64"):
            net = xpnet.MultiLayerNetExtend(784, [20], 10, use_batchnorm=True,
                                            use_dropout=True, xp="cupy", dtype=dtype, seed=0)
            train(net, x, t, x[:20], t[:20], iters=2, batch_size=60,
                  optimizer=xpnet.optim.get_optimizer(name))
    images = rng.random((4, 1, 28, 28), dtype=np.float32)
    conv = xpnet.SimpleConvNet(xp="cupy", dtype="float32", seed=0)
    train(conv, images, t[:4], images, t[:4], iters=1, batch_size=2, lr=0.01)
    strided = xpnet.conv.Convolution(fake_cupy.asarray(rng.random((3, 1, 3, 3))),
                                     fake_cupy.asarray(np.zeros(3)), stride=2, pad=1)
    out = strided.forward(fake_cupy.asarray(images.astype(np.float64)))
    strided.backward(out)  # stride 2: the input gradient goes through col2im
    two = xpnet.TwoLayerNet(784, 20, 10, xp="cupy", dtype="float32", seed=0)
    xs = fake_cupy.asarray(x[:8])
    for labels in (t[:8].astype(np.uint8), t[:8].astype(np.int32), np.eye(10)[t[:8]]):
        with graph_safe():
            grads = two.gradient(xs, fake_cupy.asarray(labels))
        sgd_step(two.params, grads, 0.1)
    half = xpnet.DeepConvNet(xp="cupy", dtype="float32", seed=0)
    import array_api_compat.cupy as xp

    fused = ops_for(xp)
    h = fake_cupy.asarray(images.astype(np.float16))
    for layer in half.layers.values():  # the book's half-precision inference
        if hasattr(layer, "W"):
            layer.W, layer.b = xp.astype(layer.W, xp.float16), xp.astype(layer.b, xp.float16)
        h = layer.forward(h, False) if "Dropout" in type(layer).__name__ else layer.forward(h)
    assert isinstance(fused, CupyOps)
    by_name = {k.name: k for k in KERNELS.values()}
    problems = []
    for name, types, scalars in sorted(launches):
        kernel = by_name.get(name)
        if kernel is None:
            problems.append(f"{name}: not in xpnet/cuda/kernels.py")
            continue
        for placeholder, dtype in types:
            if dtype not in kernel.types.get(placeholder, ()):
                problems.append(f"{name}: {placeholder}={dtype} is launched, not compiled")
        if set(scalars) != set(kernel.scalars):
            problems.append(f"{name}: scalars {scalars}, the table says {kernel.scalars}")
    assert not problems, "\n".join(problems)
    launched = {name for name, _, _ in launches}
    assert launched == set(by_name), f"never launched here: {set(by_name) - launched}"
    assert len(list(variants())) == sum(
        len(LAYOUTS) * int(np.prod([len(v) for v in k.types.values()])) for k in KERNELS.values())
