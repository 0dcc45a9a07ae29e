"""Micro-benchmark of the convolution blocks: one forward + backward of the conv stacks of
SimpleConvNet and DeepConvNet, the book's im2col code against xpnet (NumPy) and PyTorch eager.

    python -m benchmarks.conv [--threads 1] [--repeat 30] [--batch 100] [--json PATH]

Stacks (batch 100, 1x28x28 input, float32 unless named f64):

simple  conv 30x5x5 - relu - pool 2x2                       (SimpleConvNet)
deep    [conv3x3 - relu - conv3x3 - relu - pool] x 3,       (DeepConvNet; conv4 has pad 2)
        16-16-32-32-64-64 channels, pad 1

Contenders, interleaved round-robin in every repetition:

book-f64   the book's layers as ``benchmarks.book`` restates them (np.pad + im2col loop into a
           float64 buffer, col @ W, argmax pool, col2im): it runs in float64 whatever the
           input, because its buffers are float64
xpnet-f32  xpnet.conv + xpnet.layers.Relu on NumPy float32 (no dx for the first layer: the
           network's first convolution has input_grad=False)
xpnet-f64  the same in float64
torch-f32  torch.nn.functional conv2d/relu/max_pool2d with autograd (input needs no grad)

The report gives the median time per forward+backward, min/max, the ratio to torch-f32 and
to book-f64, and NumPy contenders' peak traced memory (tracemalloc, one untimed pass).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

import array_api_compat.numpy as xnp

from benchmarks import book
from xpnet.conv import Convolution, Pooling
from xpnet.layers import Relu

# (out channels, filter, stride, pad) per convolution, "pool" for a 2x2 max pool.
STACKS: dict[str, list[Any]] = {
    "simple": [(30, 5, 1, 0), "pool"],
    "deep": [(16, 3, 1, 1), (16, 3, 1, 1), "pool", (32, 3, 1, 1), (32, 3, 1, 2), "pool",
             (64, 3, 1, 1), (64, 3, 1, 1), "pool"],
}


# --- building the stacks ----------------------------------------------------------------

def _weights(stack, seed=0):
    rng = np.random.default_rng(seed)
    ws, c = [], 1
    for item in stack:
        if item == "pool":
            continue
        fn, f, _s, _p = item
        ws.append((rng.standard_normal((fn, c, f, f)) * np.sqrt(2.0 / (c * f * f)),
                   np.zeros(fn)))
        c = fn
    return ws


def _numpy_layers(stack, weights, kind, dtype):
    layers, k = [], 0
    for item in stack:
        if item == "pool":
            layers.append(book.Pooling(2, 2, 2) if kind == "book" else Pooling(2, 2, 2))
            continue
        W, b = (a.astype(dtype) for a in weights[k])
        _, _, s, p = item
        if kind == "book":
            layers += [book.Convolution(W, b, s, p), book.Relu()]
        else:
            layers += [Convolution(W, b, s, p, input_grad=k > 0), Relu()]
        k += 1
    return layers


def _numpy_step(layers, x, dout_of):
    def step():
        y = x
        for layer in layers:
            y = layer.forward(y)
        d = dout_of(y)
        for layer in reversed(layers):
            d = layer.backward(d)
    return step


def _torch_step(stack, weights, x_host):
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(x_host.astype(np.float32))
    params = [(torch.from_numpy(W.astype(np.float32)).requires_grad_(),
               torch.from_numpy(b.astype(np.float32)).requires_grad_()) for W, b in weights]

    def step():
        y, k = x, 0
        for item in stack:
            if item == "pool":
                y = F.max_pool2d(y, 2, 2)
                continue
            W, b = params[k]
            y = F.relu(F.conv2d(y, W, b, stride=item[2], padding=item[3]))
            k += 1
        y.backward(torch.ones_like(y))
        for W, b in params:
            W.grad = b.grad = None
    return step


def contenders(stack, batch):
    rng = np.random.default_rng(1)
    x = rng.random((batch, 1, 28, 28), dtype=np.float32)
    weights = _weights(stack)
    found: dict[str, Callable[[], None]] = {
        "book-f64": _numpy_step(_numpy_layers(stack, weights, "book", np.float64),
                                x.astype(np.float64), np.ones_like),
        "xpnet-f32": _numpy_step(_numpy_layers(stack, weights, "xpnet", np.float32), x,
                                 xnp.ones_like),
        "xpnet-f64": _numpy_step(_numpy_layers(stack, weights, "xpnet", np.float64),
                                 x.astype(np.float64), xnp.ones_like),
    }
    with contextlib.suppress(ImportError):
        found["torch-f32"] = _torch_step(stack, weights, x)
    return found


def _peak_mib(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def pin(threads: int) -> dict[str, Any]:
    from threadpoolctl import threadpool_info, threadpool_limits

    pin._keep = threadpool_limits(threads)  # type: ignore[attr-defined]
    info: dict[str, Any] = {"threads": threads,
                            "blas": [f"{p.get('internal_api')} {p.get('version')} "
                                     f"threads={p.get('num_threads')}"
                                     for p in threadpool_info()]}
    try:
        import torch

        torch.set_num_threads(threads)
        info["torch"] = f"{torch.__version__} threads={torch.get_num_threads()}"
    except ImportError:
        info["torch"] = "not installed"
    return info


def run(names, repeat, batch):
    report: dict[str, Any] = {}
    for name in names:
        found = contenders(STACKS[name], batch)
        for fn in found.values():  # warm up: first calls allocate and load kernels
            fn()
        times: dict[str, list[float]] = {k: [] for k in found}
        for _ in range(repeat):
            for key, fn in found.items():
                t0 = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows = {}
        for key, ts in times.items():
            rows[key] = {
                "median_ms": med[key] * 1e3, "min_ms": min(ts) * 1e3, "max_ms": max(ts) * 1e3,
                "vs_torch": med[key] / med["torch-f32"] if "torch-f32" in med else None,
                "vs_book": med[key] / med["book-f64"],
                "peak_mib": None if key.startswith("torch") else _peak_mib(found[key]),
            }
        report[name] = rows
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--stack", choices=[*STACKS, "all"], default="all")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    env = pin(args.threads)
    names = list(STACKS) if args.stack == "all" else [args.stack]
    report = run(names, args.repeat, args.batch)
    print(f"# conv blocks, batch {args.batch}, {args.repeat} interleaved repetitions, "
          f"{args.threads} thread(s); {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}, torch {env['torch']}")
    for name, rows in report.items():
        print(f"\n{name}: forward + backward of the conv stack")
        print(f"{'contender':<11} {'median ms':>10} {'min':>8} {'max':>8} {'x torch':>8} "
              f"{'x book':>7} {'peak MiB':>9}")
        for key, r in rows.items():
            vs_t = f"{r['vs_torch']:.2f}" if r["vs_torch"] is not None else "-"
            peak = f"{r['peak_mib']:.1f}" if r["peak_mib"] is not None else "-"
            print(f"{key:<11} {r['median_ms']:>10.2f} {r['min_ms']:>8.2f} {r['max_ms']:>8.2f} "
                  f"{vs_t:>8} {r['vs_book']:>7.3f} {peak:>9}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"env": env, "batch": args.batch, "repeat": args.repeat,
                   "machine": platform.platform(), "numpy": np.__version__, "results": report}
        args.json.write_text(json.dumps(payload, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
