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
import contextlib
import platform
import statistics
import sys
from collections.abc import Callable
from typing import Any

import array_api_compat.numpy as xnp
import numpy as np

from xpnet.conv import Convolution, Pooling
from xpnet.layers import Relu

from . import book
from .harness import Column, interleave, pin_threads, print_table, tracemalloc_mib, write_json

# (out channels, filter, stride, pad) per convolution, "pool" for a 2x2 max pool.
STACKS: dict[str, list[Any]] = {
    "simple": [(30, 5, 1, 0), "pool"],
    "deep": [(16, 3, 1, 1), (16, 3, 1, 1), "pool", (32, 3, 1, 1), (32, 3, 1, 2), "pool",
             (64, 3, 1, 1), (64, 3, 1, 1), "pool"],
}


# --- building the stacks ----------------------------------------------------------------

def _weights(stack: list[Any], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """He-initialised float64 filters and zero biases of each convolution of ``stack``."""
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


def _numpy_layers(stack: list[Any], weights: list[tuple[np.ndarray, np.ndarray]], kind: str,
                  dtype: Any) -> list[Any]:
    """The stack as the book's layers (``kind`` "book") or xpnet's, weights cast to ``dtype``."""
    layers: list[Any] = []
    k = 0
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


def _numpy_step(layers: list[Any], x: Any, dout_of: Callable[[Any], Any]) -> Callable[[], None]:
    def step() -> None:
        y = x
        for layer in layers:
            y = layer.forward(y)
        d = dout_of(y)
        for layer in reversed(layers):
            d = layer.backward(d)
    return step


def _torch_step(stack: list[Any], weights: list[tuple[np.ndarray, np.ndarray]],
                x_host: np.ndarray) -> Callable[[], None]:
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(x_host.astype(np.float32))
    params = [(torch.from_numpy(W.astype(np.float32)).requires_grad_(),
               torch.from_numpy(b.astype(np.float32)).requires_grad_()) for W, b in weights]

    def step() -> None:
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


def contenders(stack: list[Any], batch: int) -> dict[str, Callable[[], None]]:
    """One forward + backward of ``stack`` per contender (torch-f32 where torch imports)."""
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


def pin(threads: int) -> dict[str, Any]:
    """Pin BLAS and torch threads (``harness.pin_threads``); what runs, as this report words
    it (the ``env`` of the JSON)."""
    info = pin_threads(threads)
    env: dict[str, Any] = {"threads": threads,
                           "blas": [f"{p.get('internal_api')} {p.get('version')} "
                                    f"threads={p.get('num_threads')}"
                                    for p in info.get("pools", [])]}
    torch = sys.modules.get("torch")  # pin_threads imported it where it is installed
    env["torch"] = ("not installed" if torch is None
                    else f"{torch.__version__} threads={torch.get_num_threads()}")
    return env


def run(names: list[str], repeat: int, batch: int) -> dict[str, Any]:
    """Every stack of ``names``: its contenders interleaved, one call each per round."""
    report: dict[str, Any] = {}
    for name in names:
        found = contenders(STACKS[name], batch)
        for fn in found.values():  # warm up: first calls allocate and load kernels
            fn()
        times = interleave({key: (lambda i, fn=fn: fn()) for key, fn in found.items()},
                           reps=repeat, n_steps=1)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows = {}
        for key, ts in times.items():
            rows[key] = {
                "median_ms": med[key] * 1e3, "min_ms": min(ts) * 1e3, "max_ms": max(ts) * 1e3,
                "vs_torch": med[key] / med["torch-f32"] if "torch-f32" in med else None,
                "vs_book": med[key] / med["book-f64"],
                "peak_mib": None if key.startswith("torch") else tracemalloc_mib(found[key]),
            }
        report[name] = rows
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.conv``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--stack", choices=[*STACKS, "all"], default="all")
    ap.add_argument("--json", help="also write the results as JSON here")
    args = ap.parse_args(argv)
    env = pin(args.threads)
    names = list(STACKS) if args.stack == "all" else [args.stack]
    report = run(names, args.repeat, args.batch)
    print(f"# conv blocks, batch {args.batch}, {args.repeat} interleaved repetitions, "
          f"{args.threads} thread(s); {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}, torch {env['torch']}")
    for name, rows in report.items():
        print(f"\n{name}: forward + backward of the conv stack")
        print_table([Column("contender", 11, align="<"), Column("median ms", 10, ".2f"),
                     Column("min", 8, ".2f"), Column("max", 8, ".2f"),
                     Column("x torch", 8, ".2f", missing="-"), Column("x book", 7, ".3f"),
                     Column("peak MiB", 9, ".1f", missing="-")],
                    [[key, r["median_ms"], r["min_ms"], r["max_ms"], r["vs_torch"], r["vs_book"],
                      r["peak_mib"]] for key, r in rows.items()])
    if args.json:
        payload = {"env": env, "batch": args.batch, "repeat": args.repeat,
                   "machine": platform.platform(), "numpy": np.__version__, "results": report}
        print(f"\nwrote {write_json(args.json, payload)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
