"""``python -m benchmarks.checkpoint``: what writing a checkpoint costs, against an epoch.

For each network (the chapter-5 TwoLayerNet 784-50-10 with SGD, the chapter-6 MLP
784-100x4-10 with batch norm and Adam) and dtype: the time of one epoch of training (60000
MNIST-shaped synthetic samples, batch 100, NumPy, no checkpoint), and the time of one
checkpoint write (``xpnet.checkpoint.save_checkpoint``: host copies, ``np.savez``, fsync,
``os.replace``; median of ``--writes``) into ``--dir`` (default: a temporary folder: the disk
matters, so point it at the run directory's disk). ``xpnet train`` writes one checkpoint per
epoch, so ``write / epoch`` is the share of the run spent on checkpoints.

    python -m benchmarks.checkpoint                    # prints a table
    python -m benchmarks.checkpoint --json out.json    # and writes the numbers
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .harness import Column, machine, pin_threads, print_table, write_json


def _net(model: str, dtype: str) -> tuple[Any, Any]:
    from xpnet.nets import MultiLayerNetExtend, TwoLayerNet
    from xpnet.optim import SGD, Adam

    if model == "two-layer":
        return TwoLayerNet(784, 50, 10, dtype=dtype, seed=0), SGD(lr=0.1)
    return (MultiLayerNetExtend(784, [100] * 4, 10, use_batchnorm=True, dtype=dtype, seed=0),
            Adam())


def measure(model: str, dtype: str, train_size: int, writes: int, folder: Path) -> dict:
    """One epoch's time and the median time of ``writes`` checkpoint writes into ``folder``."""
    from xpnet.checkpoint import save_checkpoint
    from xpnet.training import train

    rng = np.random.default_rng(0)
    x = rng.random((train_size, 784), dtype=np.float32)
    t = rng.integers(0, 10, train_size)
    net, opt = _net(model, dtype)
    batches = train_size // 100
    # One epoch, evaluated once at the end on 1000 samples (as the CLI's loop does per epoch,
    # on the whole sets: the epoch time here is a lower bound, the share an upper bound).
    began = time.perf_counter()
    history = train(net, x, t, x[:1000], t[:1000], iters=batches, batch_size=100, optimizer=opt,
                    eval_every=batches, eval_samples=1000)
    epoch = time.perf_counter() - began
    path = folder / f"{model}-{dtype}.npz"
    times = []
    for _ in range(writes):
        began = time.perf_counter()
        save_checkpoint(path, net=net, optimizer=opt, history=history,
                        rng=np.random.default_rng(0), order=rng.permutation(train_size),
                        order_used=1)
        times.append(time.perf_counter() - began)
    write = statistics.median(times)
    return {"model": model, "dtype": dtype, "train_size": train_size, "epoch_s": epoch,
            "write_s": write, "write_min_s": min(times), "bytes": path.stat().st_size,
            "share": write / epoch}


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.checkpoint``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.checkpoint",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-size", type=int, default=60_000)
    parser.add_argument("--writes", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp folder)")
    parser.add_argument("--json", default=None, metavar="PATH")
    args = parser.parse_args(argv)
    threads = pin_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for model in ("two-layer", "mlp-bn"):
            for dtype in ("float32", "float64"):
                rows.append(measure(model, dtype, args.train_size, args.writes, Path(folder)))
    print_table([Column("model", 10, align="<"), Column("dtype", 8, align="<"),
                 Column("size", 9, ".0f", unit="kB"), Column("write", 9, ".1f", unit="ms"),
                 Column("epoch", 8, ".2f", unit="s"), Column("share", 7, ".2%")],
                [[r["model"], r["dtype"], r["bytes"] / 1e3, r["write_s"] * 1e3, r["epoch_s"],
                  r["share"]] for r in rows])
    if args.json:
        write_json(args.json, {"machine": machine(), "threads": threads, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
