"""Assertions for the GPU check: CuPy against NumPy on the same seed, the CUDA graph against
eager steps. Prints one PASS/FAIL line per check and exits 1 if any failed.

- TwoLayerNet, SGD: CuPy eager vs NumPy float32 (parameters, losses); the CUDA graph vs eager
  steps with the same kernels (identical losses) and vs NumPy.
- The chapter-6 net (batch norm, dropout, Adam): the graph's running statistics, parameters
  and losses identical to eager steps with the same kernels (a rebound statistic would differ).
- Every fused kernel against NumPy: one SimpleConvNet gradient (im2col, col2im, max pooling,
  ReLU, softmax gradient) and one update of each optimizer, float32. CuPy compiles with
  ``-ftz=true`` (float32 denormals flush to zero), so the tolerances are relative, with an
  absolute floor far above float32's denormal range.

``python -m benchmarks.gpu_compare [--iters N] [--json PATH]`` (CuPy needed: real, or the fake
of ``tests/fakecupy`` for a dry run).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any

import numpy as np

import xpnet
from xpnet.backend import cuda_status, to_numpy
from xpnet.cuda.graph import graph_safe
from xpnet.optim import get_optimizer
from xpnet.training import train

RTOL, ATOL = 1e-3, 1e-6  # float32 vs float32 on two devices; far above ftz's 1.2e-38


def _run(xp: str, iters: int, cuda_graph: bool = False) -> tuple[list[float], dict]:
    rng = np.random.default_rng(7)
    x = rng.random((1000, 784), dtype=np.float32)
    t = rng.integers(0, 10, 1000)
    net = xpnet.TwoLayerNet(784, 50, 10, xp=xp, dtype="float32", seed=0)
    h = train(net, x, t, x[:200], t[:200], iters=iters, batch_size=100, seed=0,
              cuda_graph=cuda_graph)
    return h.loss, {k: to_numpy(v).astype(np.float64) for k, v in net.params.items()}


def _run_extend(iters: int, cuda_graph: bool) -> tuple[list[float], dict]:
    rng = np.random.default_rng(8)
    x = rng.random((1000, 784), dtype=np.float32)
    t = rng.integers(0, 10, 1000)
    net = xpnet.MultiLayerNetExtend(784, [100, 100], 10, use_batchnorm=True, use_dropout=True,
                                    dropout_ration=0.2, xp="cupy", dtype="float32", seed=0)
    h = train(net, x, t, x[:200], t[:200], iters=iters, batch_size=100, seed=0,
              optimizer=get_optimizer("adam"), cuda_graph=cuda_graph)
    arrays = {k: to_numpy(v) for k, v in {**dict(net.params), **net.buffers()}.items()}
    return h.loss, arrays


def _relative(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(a[k] - b[k]) / (np.abs(b[k]) + 1e-3))) for k in b)


def _kernels_vs_numpy() -> list[tuple[str, float]]:
    """``(what, worst relative difference)`` of each fused-kernel path against NumPy."""
    rng = np.random.default_rng(9)
    images = rng.random((8, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, 8)
    grads = {}
    for xp in ("numpy", "cupy"):
        net = xpnet.SimpleConvNet(xp=xp, dtype="float32", seed=0)
        x = xpnet.backend.asarray(images, net.xp, device=net.device)
        t = xpnet.backend.asarray(labels, net.xp, device=net.device)
        grads[xp] = {k: to_numpy(v).astype(np.float64) for k, v in net.gradient(x, t).items()}
    found = [("SimpleConvNet gradient (im2col, col2im, pooling, ReLU, softmax)",
              _relative(grads["cupy"], grads["numpy"]))]
    for name in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"):
        after = {}
        for xp in ("numpy", "cupy"):
            namespace = xpnet.backend.get_namespace(xp)
            params = {k: xpnet.backend.asarray(rng_copy, namespace)
                      for k, rng_copy in _param_problem().items()}
            opt = get_optimizer(name)
            for g in _grad_problem():
                opt.update(params, {k: xpnet.backend.asarray(v, namespace) for k, v in g.items()})
            after[xp] = {k: to_numpy(v).astype(np.float64) for k, v in params.items()}
        found.append((f"{name} update, 3 steps", _relative(after["cupy"], after["numpy"])))
    return found


def _param_problem() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(10)
    return {"W": rng.standard_normal((30, 20)).astype(np.float32),
            "b": rng.standard_normal(20).astype(np.float32)}


def _grad_problem() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    return [{"W": rng.standard_normal((30, 20)).astype(np.float32),
             "b": rng.standard_normal(20).astype(np.float32)} for _ in range(3)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--json", help="write the checks there")
    args = parser.parse_args()
    print("cuda_status:", cuda_status())
    warnings.simplefilter("error")  # a failed capture (a warning) is a failure here
    results: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str) -> None:
        results.append({"check": name, "ok": bool(ok), "detail": detail})
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)

    def finish() -> int:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
        return 0 if all(r["ok"] for r in results) else 1

    loss_np, p_np = _run("numpy", args.iters)
    loss_eager, p_eager = _run("cupy", args.iters)
    worst = _relative(p_eager, p_np)
    check("cupy eager vs numpy float32 (parameters)", worst < RTOL,
          f"{args.iters} steps, max relative difference {worst:.2e} (limit {RTOL:g})")
    gap = float(np.max(np.abs(np.array(loss_eager) - np.array(loss_np))))
    check("cupy eager vs numpy float32 (losses)", gap < RTOL, f"max difference {gap:.2e}")
    for what, worst in _kernels_vs_numpy():
        check(f"fused kernels vs numpy: {what}", worst < RTOL,
              f"max relative difference {worst:.2e} (limit {RTOL:g})")
    try:
        loss_graph, p_graph = _run("cupy", args.iters, cuda_graph=True)
    except Exception as exc:
        check("cuda graph runs", False, f"{type(exc).__name__}: {exc}")
        return finish()
    with graph_safe():
        loss_safe, _ = _run("cupy", args.iters)
    same = loss_graph == loss_safe
    pairs = enumerate(zip(loss_graph, loss_safe, strict=False))
    first = next((i for i, (a, b) in pairs if a != b), None)
    check("cuda graph vs eager with the same kernels (losses)", same,
          "identical" if same else f"first difference at step {first}")
    worst = _relative(p_graph, p_np)
    check("cuda graph vs numpy float32 (parameters)", worst < RTOL,
          f"max relative difference {worst:.2e} (limit {RTOL:g})")
    try:
        loss_bn_graph, bn_graph = _run_extend(args.iters, cuda_graph=True)
    except Exception as exc:
        check("cuda graph runs batch norm, dropout, Adam", False, f"{type(exc).__name__}: {exc}")
        return finish()
    with graph_safe():
        loss_bn_eager, bn_eager = _run_extend(args.iters, cuda_graph=False)
    differ = [k for k in bn_eager if not np.array_equal(bn_graph[k], bn_eager[k])]
    check("cuda graph vs eager, batch norm + dropout + Adam (running statistics, parameters)",
          not differ and loss_bn_graph == loss_bn_eager,
          "identical" if not differ else f"differ: {', '.join(differ)}")
    return finish()


if __name__ == "__main__":
    sys.exit(main())
