"""Assertions for the GPU check: CuPy against NumPy on the same seed, the CUDA graph against
eager steps. Prints one PASS/FAIL line per check and exits 1 if any failed.

``python -m benchmarks.gpu_compare [--iters N]`` (CuPy needed: real, or the fake of
``tests/fakecupy`` for a dry run).
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

import xpnet
from xpnet.backend import cuda_status, to_numpy
from xpnet.cuda import graph_safe
from xpnet.train import train


def _run(xp: str, iters: int, cuda_graph: bool = False) -> tuple[list[float], dict]:
    rng = np.random.default_rng(7)
    x = rng.random((1000, 784), dtype=np.float32)
    t = rng.integers(0, 10, 1000)
    net = xpnet.TwoLayerNet(784, 50, 10, xp=xp, dtype="float32", seed=0)
    h = train(net, x, t, x[:200], t[:200], iters=iters, batch_size=100, seed=0,
              cuda_graph=cuda_graph)
    return h.loss, {k: to_numpy(v).astype(np.float64) for k, v in net.params.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iters", type=int, default=200)
    args = parser.parse_args()
    print("cuda_status:", cuda_status())
    warnings.simplefilter("error")  # a failed capture (a warning) is a failure here
    failed = 0

    def check(name: str, ok: bool, detail: str) -> None:
        nonlocal failed
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")

    loss_np, p_np = _run("numpy", args.iters)
    loss_eager, p_eager = _run("cupy", args.iters)
    worst = max(float(np.max(np.abs(p_eager[k] - p_np[k]) / (np.abs(p_np[k]) + 1e-3)))
                for k in p_np)
    check("cupy eager vs numpy float32 (parameters)", worst < 1e-3,
          f"{args.iters} steps, max relative difference {worst:.2e} (limit 1e-3)")
    try:
        loss_graph, p_graph = _run("cupy", args.iters, cuda_graph=True)
    except Exception as exc:
        check("cuda graph runs", False, f"{type(exc).__name__}: {exc}")
        return 1
    with graph_safe():
        loss_safe, _ = _run("cupy", args.iters)
    same = loss_graph == loss_safe
    pairs = enumerate(zip(loss_graph, loss_safe, strict=False))
    first = next((i for i, (a, b) in pairs if a != b), None)
    check("cuda graph vs eager with the same kernels (losses)", same,
          "identical" if same else f"first difference at step {first}")
    worst = max(float(np.max(np.abs(p_graph[k] - p_np[k]) / (np.abs(p_np[k]) + 1e-3)))
                for k in p_np)
    check("cuda graph vs numpy float32 (parameters)", worst < 1e-3,
          f"max relative difference {worst:.2e} (limit 1e-3)")
    gap = float(np.max(np.abs(np.array(loss_eager) - np.array(loss_np))))
    check("cupy eager vs numpy float32 (losses)", gap < 1e-3, f"max difference {gap:.2e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
