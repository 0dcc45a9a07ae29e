"""``python -m benchmarks.mlp``: the chapter-6 MLP step, xpnet against PyTorch eager.

784-100-100-100-100-10 with batch normalization after every hidden affine layer, ReLU, Adam
(lr 0.001), batch 100, float32, on MNIST-shaped data: the network of
``xpnet train --model mlp --hidden 100,100,100,100 --optimizer adam --lr 0.001 --batchnorm``.

Contenders, interleaved round-robin in one process (blocks of ``--steps`` steps, ``--reps``
repetitions, medians reported):

xpnet-numpy     ``MultiLayerNetExtend(use_batchnorm=True)`` + ``xpnet.optim.Adam`` on NumPy,
                through the training loop's own step (``xpnet.training.make_step``)
torch-eager     ``nn.Linear``/``nn.BatchNorm1d``/``relu``, ``cross_entropy``, ``loss.backward()``
                and ``torch.optim.Adam``: what a PyTorch user writes

Both start from the same He-initialised weights and draw batches by the same per-epoch
permutation. Threads are pinned (``--threads``, default 1) for BLAS and torch alike.

    python -m benchmarks.mlp                  # prints a table
    python -m benchmarks.mlp --json out.json  # and writes the numbers
    python -m benchmarks.mlp --save           # to benchmarks/results/mlp-cpu-1thread.json
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np

from .harness import (
    RESULTS,
    Column,
    block_ratios,
    epoch_order,
    interleave,
    machine,
    pin_threads,
    prepare,
    print_table,
    spread,
    train_images,
    write_json,
)

SIZES = (784, 100, 100, 100, 100, 10)
LR = 0.001


def he_weights(seed: int) -> list[np.ndarray]:
    """The initial weights both contenders start from (He: std sqrt(2 / fan_in))."""
    rng = np.random.default_rng(seed)
    return [np.sqrt(2.0 / n_in) * rng.standard_normal((n_in, n_out))
            for n_in, n_out in itertools.pairwise(SIZES)]


def xpnet_step(x: np.ndarray, t: np.ndarray, batch: int, seed: int,
               pkg: Any = None) -> Callable[[int], Any]:
    """``MultiLayerNetExtend`` with batch norm and Adam, through the training loop's step
    (``pkg``: another copy of the ``xpnet`` package, e.g. ``main``'s, to compare with)."""
    if pkg is None:
        import xpnet as pkg
    Adam = pkg.optim.Adam
    _make_step = pkg.training.make_step

    net = pkg.MultiLayerNetExtend(SIZES[0], list(SIZES[1:-1]), SIZES[-1],
                                    weight_init_std="relu", use_batchnorm=True,
                                    dtype="float32", seed=seed)
    for k, w in enumerate(he_weights(seed), start=1):
        net.params[f"W{k}"][...] = net.xp.asarray(w, dtype=net.dtype)
    xp = net.xp
    # As xpnet.train does: data on the device once, labels checked once (not per step),
    # then the loop's own step function.
    net.last_layer.check_labels = False
    step_on, _ = _make_step(net, xp, xp.asarray(x), xp.asarray(t), Adam(lr=LR), batch,
                            cuda_graph=False)
    order = epoch_order(x.shape[0], batch, seed)

    def step(i: int) -> Any:
        return step_on(xp.asarray(order(i)))
    return step


def torch_step(x: np.ndarray, t: np.ndarray, batch: int, seed: int) -> Callable[[int], Any]:
    """The same network in ``torch.nn`` with ``torch.optim.Adam``."""
    import torch

    layers: list[Any] = []
    for k, w in enumerate(he_weights(seed)):
        lin = torch.nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.astype(np.float32)))
            lin.bias.zero_()
        layers.append(lin)
        if k < len(SIZES) - 2:
            # The book's BatchNormalization: momentum 0.9 (torch counts 1 - that), eps 1e-7.
            layers.append(torch.nn.BatchNorm1d(w.shape[1], momentum=0.1, eps=1e-7))
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    xt = torch.from_numpy(x)
    tt = torch.from_numpy(t.astype(np.int64))
    order = epoch_order(x.shape[0], batch, seed)

    def step(i: int) -> Any:
        idx = torch.from_numpy(order(i))
        loss = torch.nn.functional.cross_entropy(model(xt.index_select(0, idx)),
                                                 tt.index_select(0, idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()
    return step


CONTENDERS = {"xpnet-numpy": xpnet_step, "torch-eager": torch_step}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both contenders' step blocks, interleaved; the report (JSON fields of the results)."""
    threads = pin_threads(args.threads)
    # Random data: 2000 rows for --quick, else MNIST (60000 random rows where it cannot load).
    x, t, source = train_images(args.quick, flatten=True, n_random=2000 if args.quick else 60_000)
    steps, skipped = prepare({name: functools.partial(make, x, t, args.batch, args.seed)
                              for name, make in CONTENDERS.items()}, args.warmup)
    times = interleave(steps, args.reps, args.steps, start=args.warmup)
    medians = {name: statistics.median(v) for name, v in times.items()}
    report: dict[str, Any] = {
        "config": {"sizes": list(SIZES), "batch": args.batch, "optimizer": "adam", "lr": LR,
                   "batchnorm": True, "dtype": "float32", "data": source,
                   "steps_per_block": args.steps, "reps": args.reps, "warmup": args.warmup},
        "machine": machine(), "threads": threads,
        "step_ms": {name: {**spread(times[name], 1e3), "blocks": [1e3 * v for v in times[name]]}
                    for name in medians},
        "skipped": skipped,
        "load_average_at_end": list(os.getloadavg()),
    }
    if "xpnet-numpy" in medians and "torch-eager" in medians:
        report["ratio_xpnet_over_torch"] = medians["xpnet-numpy"] / medians["torch-eager"]
        # Block by block (each pair ran back to back): the spread of the ratio under load.
        report["ratio_per_block"] = block_ratios(times["xpnet-numpy"], times["torch-eager"])
    return report


def print_report(report: dict[str, Any]) -> None:
    """The table of step times and the ratio."""
    cfg = report["config"]
    print(f"\nMLP {'-'.join(map(str, cfg['sizes']))}, batch norm, Adam {cfg['lr']}, batch "
          f"{cfg['batch']}, float32, {cfg['data']} data, threads {report['threads']['requested']}")
    print_table([Column("contender", 14, align="<"), Column("step ms (median)", 17, ".3f"),
                 Column("min", 8, ".3f"), Column("max", 8, ".3f")],
                [[name, s["median"], s["min"], s["max"]] for name, s in report["step_ms"].items()])
    if "ratio_xpnet_over_torch" in report:
        blocks = report["ratio_per_block"]
        print(f"xpnet / torch step time: {report['ratio_xpnet_over_torch']:.2f}x "
              f"(per block {blocks['min']:.2f} to {blocks['max']:.2f}; target <= 1.0x)")
    start, end = report["machine"]["load_average_at_start"], report["load_average_at_end"]
    print(f"load average (1 min) at start {start[0]:.2f}, at end {end[0]:.2f}")


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.mlp``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.mlp", description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--steps", type=int, default=200, help="steps per timed block")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="small random data, few steps")
    p.add_argument("--json", default=None, metavar="PATH")
    p.add_argument("--save", action="store_true",
                   help="write the JSON to benchmarks/results/mlp-cpu-<threads>thread.json")
    args = p.parse_args(argv)
    if args.save and args.json is None:
        args.json = str(RESULTS / f"mlp-cpu-{args.threads}thread.json")
    if args.quick:
        args.steps, args.reps, args.warmup = 20, 2, 3
    report = run(args)
    print_report(report)
    if args.json:
        print(f"wrote {write_json(args.json, report)}")
    return 0 if not report["skipped"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
