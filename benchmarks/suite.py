"""``python -m benchmarks``: interleaved benchmarks of xpnet against the book's loop and PyTorch.

Configurations (``--config``):

book     784-50-10, batch 100, SGD lr 0.1, 10000 steps, train and test accuracy every epoch:
         full-run wall time, time per training step, final test accuracy, peak memory, for
         every contender; plus the two-matmul floor of one step.
compute  784-4096-10, batch 4096: a compute-bound step against the measured matmul GFLOP/s.
sweep    step time over batch size x hidden size (xpnet NumPy float32), plotted to PNG.
all      all three.

Contenders are interleaved round-robin within each repetition; the report quotes medians,
min/max and ratios against the reference (the book's float64 loop).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import contenders as C
from .harness import (
    RESULTS,
    Column,
    Failures,
    best_time,
    json_writer,
    machine,
    peak_memory,
    pin_threads,
    print_table,
    step_time,
    summary,
    timed,
)

REFERENCE = "book-f64 (reference)"


# --- the two-matmul floor ------------------------------------------------------------------

def matmul_floor(batch: int, d_in: int, hidden: int, dtype: Any = np.float32,
                 reps: int = 2000) -> float:
    """Seconds for the step's two necessary first-layer matmuls: ``(B x D) @ (D x H)`` and
    ``(D x B) @ (B x H)`` (``x.T @ dout``, as the backward computes it)."""
    rng = np.random.default_rng(0)
    x = rng.random((batch, d_in), dtype=np.float32).astype(dtype)
    w = rng.random((d_in, hidden), dtype=np.float32).astype(dtype)
    d = rng.random((batch, hidden), dtype=np.float32).astype(dtype)

    def two_matmuls() -> None:
        x @ w
        x.T @ d

    return best_time(two_matmuls, number=reps, warmup=20)


# --- configurations -------------------------------------------------------------------------

def load_data(quick: bool) -> tuple[C.Data, str]:
    """MNIST flattened, float32, uint8 labels; random data only for ``--quick``."""
    try:
        from xpnet.datasets import load_mnist

        (x, t), (xt, tt) = load_mnist()
        x = np.ascontiguousarray(x.reshape(x.shape[0], -1), dtype=np.float32)
        xt = np.ascontiguousarray(xt.reshape(xt.shape[0], -1), dtype=np.float32)
        data = C.Data(x, t.astype(np.uint8), xt, tt.astype(np.uint8))
        source = "MNIST"
    except Exception as exc:  # no cached copy and no network: synthetic stand-in
        if not quick:
            raise
        print(f"  (MNIST unavailable: {exc}; using random data)")
        data, source = C.synthetic_data(60_000, 10_000, 784), "synthetic"
    return data, source


def book_contenders(data: C.Data, args: argparse.Namespace) -> tuple[list, list[str]]:
    """The book config's contenders (those ``--only`` keeps) and why others are left out."""
    sizes, b, seed = (784, 50, 10), 100, args.seed
    out: list[C.Contender] = []
    skipped: list[str] = []
    out.append(C.BookLoop(data, sizes, b, seed, np.float64))
    out.append(C.BookLoop(data, sizes, b, seed, np.float32))
    out.append(C.XpnetContender(data, sizes, b, seed, "numpy", "float64"))
    out.append(C.XpnetContender(data, sizes, b, seed, "numpy", "float32"))
    ok, why = C.torch_available()
    if ok:
        out.append(C.TorchEager(data, sizes, b, seed))
    else:
        skipped.append(f"torch-cpu eager f32: {why}")
    gpu, why_not = C.gpu_contenders(data, sizes, b, seed)
    out += gpu
    skipped += why_not
    if args.only:
        keep = [c for c in out if any(s in c.name for s in args.only)]
        skipped += [f"{c.name}: not selected (--only)" for c in out if c not in keep]
        out = keep
    return out, skipped


def run_book(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """The book config: load the data, build the contenders, measure them."""
    data, source = load_data(args.quick)
    cons, skipped = book_contenders(data, args)
    for s in skipped:
        print(f"  skipped {s}")
    print(f"book config: 784-50-10, batch 100, lr {C.LR}, {args.iters} iterations, "
          f"{args.reps} reps, {source}; step blocks of {args.step_block} steps")
    measure_book(cons, data, args, report, skipped, source)


def measure_book(cons: list[C.Contender], data: C.Data, args: argparse.Namespace,
                 report: dict[str, Any], skipped: list[str], source: str) -> None:
    """The book config's measurements of ``cons``: ``report["book_partial"]`` is updated and
    written (``args.checkpoint``) after every measurement, ``report["book"]`` at the end; a
    contender that raises is skipped from then on, with its reason in ``book["failed"]``."""
    iters, reps, block = args.iters, args.reps, args.step_block
    failures = Failures()
    walls: dict[str, list[float]] = {c.name: [] for c in cons}
    steps: dict[str, list[float]] = {c.name: [] for c in cons}
    floor: list[float] = []
    accs: dict[str, float] = {}
    mem: dict[str, Any] = {}
    launches: dict[str, Any] = {}

    def checkpoint(stage: str) -> None:
        # What is measured so far, in case the run is cut short (a time limit, a crash).
        report["book_partial"] = {"stage": stage, "wall_s": walls, "step_s": steps,
                                  "final_test_acc": accs, "two_matmul_floor_s": floor,
                                  "peak_memory": mem, "launches": launches,
                                  "failed": failures.reasons}
        args.checkpoint(report)

    for rep in range(reps):
        for c in cons:  # full runs, round-robin
            ok, out = failures.run(c, f"full run (rep {rep + 1})",
                                   lambda c=c: timed(lambda: c.full_run(iters)))
            if ok:
                seconds, params = out
                walls[c.name].append(seconds)
                accs[c.name] = C.host_accuracy(params, data.x_test, data.t_test)
                print(f"  rep {rep + 1}/{reps}  {c.name:24s} full run {seconds:7.2f} s  "
                      f"test acc {accs[c.name]:.4f}", flush=True)
            checkpoint(f"rep {rep + 1}: full runs")
        for c in cons:  # step blocks, round-robin, with the matmul floor among them
            ok, seconds = failures.run(c, f"step block (rep {rep + 1})",
                                       lambda c=c: step_time(c, block))
            if ok:
                steps[c.name].append(seconds)
        floor.append(matmul_floor(100, 784, 50, reps=block))
        checkpoint(f"rep {rep + 1}: step blocks")
    for c in cons:  # untimed: tracemalloc slows Python down
        ok, out = failures.run(c, "peak memory pass",
                               lambda c=c: peak_memory(lambda: c.full_run(min(iters, 601))))
        if ok:
            mem[c.name] = out
    checkpoint("peak memory")
    for c in cons:
        if "cupy" in c.name or "cuda" in c.name:
            ok, out = failures.run(c, "launch count", lambda c=c: _launches(c))
            if ok:
                launches[c.name] = out
    checkpoint("launch counts")
    results = {}
    ok_cons = [c for c in cons if c.name not in failures.reasons]
    ref = REFERENCE if REFERENCE in walls and REFERENCE not in failures.reasons else None
    floor_s = statistics.median(floor)
    for c in ok_cons:
        w, s = summary(walls[c.name]), summary(steps[c.name])
        r = {"description": c.description, "dtype": c.dtype, "wall_s": w, "step_ms": {
            k: ([v * 1e3 for v in val] if isinstance(val, list) else val * 1e3)
            for k, val in s.items()}, "final_test_acc": accs[c.name],
            "peak_memory": mem[c.name], "step_over_two_matmuls": s["median"] / floor_s}
        if ref:
            r["wall_vs_reference"] = w["median"] / statistics.median(walls[ref])
        if c.name in launches:
            r["launches"] = launches[c.name]
        results[c.name] = r
    report.pop("book_partial", None)
    report["book"] = {"sizes": [784, 50, 10], "batch_size": 100, "lr": C.LR, "iters": iters,
                      "reps": reps, "step_block": block, "data": source,
                      "two_matmul_floor_ms": summary([f * 1e3 for f in floor]),
                      "results": results, "skipped": skipped, "failed": failures.reasons,
                      "targets": targets(results)}
    args.checkpoint(report)
    print_book(report["book"])


def _launches(c: C.Contender) -> dict[str, Any]:
    fused_before = _fused_calls()
    per, how = C.count_launches(c, steps=20)  # 5 warm-up steps + 20 profiled
    fused_after = _fused_calls()
    graph = getattr(c, "_graph_step", None)
    return {"per_step": per, "how": how,
            "fused_kernel_calls_per_step": (None if fused_before is None or fused_after is None
                                            else (fused_after - fused_before) / 25),
            "graph_launches_of_25_steps": getattr(graph, "launches", None)}


def _fused_calls() -> int | None:
    """Calls of xpnet's fused CuPy kernels so far (``None`` where xpnet does not count them)."""
    from xpnet.backend import cuda_available, get_namespace
    from xpnet.ops import ops_for

    if not cuda_available():
        return None
    return getattr(ops_for(get_namespace("cupy")), "calls", None)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets for xpnet NumPy float32, each with its measured ratio."""
    me = results.get("xpnet numpy-f32")
    if me is None:
        return []
    wall = me["wall_s"]["median"]
    out = []
    for other, limit in ((REFERENCE, 0.15), ("numpy-f32 book-style", 0.5),
                         ("torch-cpu eager f32", 0.4)):
        if other in results:
            ratio = wall / results[other]["wall_s"]["median"]
            out.append({"target": f"full run <= {limit}x {other}", "ratio": ratio,
                        "met": ratio <= limit})
    out.append({"target": "final test acc >= 0.965", "value": me["final_test_acc"],
                "met": me["final_test_acc"] >= 0.965})
    out.append({"target": "step <= 1.5x two 784x50 matmuls", "ratio": me["step_over_two_matmuls"],
                "met": me["step_over_two_matmuls"] <= 1.5})
    return out


def _wall(w: dict[str, Any]) -> str:
    return f"{w['median']:7.2f} ({w['min']:.2f}-{w['max']:.2f})"


def print_book(book: dict[str, Any]) -> None:
    """The book config's table, the floor, launch counts, targets and failures."""
    floor = book["two_matmul_floor_ms"]["median"]
    print()
    nan = float("nan")
    print_table(
        [Column("contender", 24, align="<"), Column("wall s (min-max)", 20),
         Column("vs ref", 7, ".3f"), Column("step ms", 8, ".3f"), Column("/2mm", 5, ".2f"),
         Column("test acc", 8, ".4f"), Column("peak MiB", 9, ".1f")],
        [[name, _wall(r["wall_s"]), r.get("wall_vs_reference", nan), r["step_ms"]["median"],
          r["step_over_two_matmuls"], r["final_test_acc"],
          r["peak_memory"].get("tracemalloc_peak_mib", nan)]
         for name, r in book["results"].items()])
    print(f"two-matmul floor (100x784 @ 784x50 + 784x100 @ 100x50, f32): {floor:.4f} ms")
    for name, r in book["results"].items():
        if "launches" in r:
            la = r["launches"]
            print(f"  {name}: {la['per_step']} device launches per step ({la['how']}); "
                  f"fused-kernel calls per step {la['fused_kernel_calls_per_step']}; "
                  f"graph launches {la['graph_launches_of_25_steps']}")
    for t in book["targets"]:
        val = t.get("ratio", t.get("value"))
        print(f"  target {t['target']:45s} {val:7.3f}  {'met' if t['met'] else 'NOT met'}")
    for name, reason in book.get("failed", {}).items():
        print(f"  FAILED {name}: {reason}")


def run_compute(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """784-4096-10, batch 4096: step GFLOP/s against the measured matmul GFLOP/s."""
    d_in, hidden, d_out, batch = 784, 4096, 10, 4096
    steps = 5 if args.quick else args.compute_steps
    data = C.synthetic_data(batch * 4, 100, d_in)
    sizes = (d_in, hidden, d_out)
    cons: list[C.Contender] = [C.XpnetContender(data, sizes, batch, args.seed, "numpy",
                                                "float32")]
    ok, _ = C.torch_available()
    if ok and not args.quick:
        cons.append(C.TorchEager(data, sizes, batch, args.seed))
    # Matmul FLOPs of one step: forward x@W1, h@W2; backward h.T@d2, d2@W2.T, x.T@d1.
    flops = 2 * batch * (d_in * hidden + hidden * d_out) + 2 * batch * (hidden * d_out * 2
                                                                          + d_in * hidden)
    rng = np.random.default_rng(0)
    x = rng.random((batch, d_in), dtype=np.float32)
    w = rng.random((d_in, hidden), dtype=np.float32)
    d = rng.random((batch, hidden), dtype=np.float32)
    mm_flops = 2 * 2 * batch * d_in * hidden

    def two_matmuls() -> None:
        x @ w
        x.T @ d

    def big_matmuls() -> float:
        return mm_flops / best_time(two_matmuls, number=1, warmup=1) / 1e9

    gf: dict[str, list[float]] = {c.name: [] for c in cons}
    mm: list[float] = []
    print(f"compute config: {d_in}-{hidden}-{d_out}, batch {batch}, {steps} steps x "
          f"{args.reps} reps, {flops / 1e9:.1f} matmul GFLOP per step")
    failures = Failures()
    for _ in range(args.reps):
        mm.append(big_matmuls())
        for c in cons:
            ok, seconds = failures.run(c, "step block", lambda c=c: step_time(c, steps, warmup=2))
            if ok:
                gf[c.name].append(flops / seconds / 1e9)
        report["compute_partial"] = {"gflops": gf, "matmul_gflops": mm,
                                     "failed": failures.reasons}
        args.checkpoint(report)
    report.pop("compute_partial", None)
    peak = statistics.median(mm)
    res = {}
    for c in cons:
        if c.name in failures.reasons:
            continue
        s = summary(gf[c.name])
        res[c.name] = {"gflops": s, "fraction_of_matmul": s["median"] / peak,
                       "met_80pct": s["median"] / peak >= 0.8}
        print(f"  {c.name:24s} {s['median']:7.1f} GFLOP/s = {s['median'] / peak:5.1%} of the "
              f"measured matmul {peak:.1f} GFLOP/s")
    report["compute"] = {"sizes": list(sizes), "batch_size": batch, "steps": steps,
                         "flops_per_step": flops, "matmul_gflops": summary(mm), "results": res,
                         "failed": failures.reasons}


def run_sweep(args: argparse.Namespace, report: dict[str, Any], stem: str) -> None:
    """Step time of xpnet NumPy float32 over batch x hidden size, with its floor; a plot."""
    batches = [32, 100, 256] if args.quick else [16, 32, 64, 100, 256, 512, 1024]
    hiddens = [50, 256] if args.quick else [50, 100, 256, 1024]
    data = C.synthetic_data(8192, 100, 784)
    budget = 0.05 if args.quick else 0.4  # seconds per point (at least 10 steps)
    rows = []
    print(f"sweep: batch {batches} x hidden {hiddens}, xpnet numpy-f32 step time")
    for h in hiddens:
        for b in batches:
            c = C.XpnetContender(data, (784, h, 10), b, args.seed, "numpy", "float32")
            probe = step_time(c, 5, warmup=3)
            n = max(10, int(budget / probe))
            t = min(step_time(c, n, warmup=3) for _ in range(2))
            mmf = matmul_floor(b, 784, h, reps=max(10, n))
            flops = 2 * b * (784 * h + h * 10) + 2 * b * (h * 10 * 2 + 784 * h)
            rows.append({"batch": b, "hidden": h, "step_ms": t * 1e3,
                         "two_matmul_ms": mmf * 1e3, "gflops": flops / t / 1e9,
                         "us_per_sample": t / b * 1e6})
            print(f"  hidden {h:5d} batch {b:5d}: {t * 1e3:8.3f} ms/step  "
                  f"{t * 1e3 / (mmf * 1e3):5.2f}x two matmuls  {flops / t / 1e9:6.1f} GFLOP/s")
    png = None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
        for h in hiddens:
            pts = [r for r in rows if r["hidden"] == h]
            a1.plot([r["batch"] for r in pts], [r["step_ms"] for r in pts], "o-",
                    label=f"hidden {h}")
            a2.plot([r["batch"] for r in pts], [r["gflops"] for r in pts], "o-",
                    label=f"hidden {h}")
        for a, lab in ((a1, "ms per training step"), (a2, "matmul GFLOP/s of the step")):
            a.set_xscale("log")
            a.set_xlabel("batch size")
            a.set_ylabel(lab)
            a.grid(True, which="both", alpha=0.3)
            a.legend()
        a1.set_yscale("log")
        fig.suptitle(f"xpnet NumPy float32 step, 784-H-10 ({report['threads']['requested']} "
                     f"BLAS thread(s), {report['machine']['cpu']})", fontsize=9)
        fig.tight_layout()
        png = Path(f"{stem}-sweep.png")
        fig.savefig(png, dpi=110)
        plt.close(fig)
        print(f"  plot: {png}")
    except ImportError:
        print("  matplotlib is not installed: no plot (pip install 'xpnet[bench]')")
    report["sweep"] = {"rows": rows, "png": str(png) if png else None}


# --- entry point ----------------------------------------------------------------------------

def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line; ``--quick`` and ``--gpu`` narrow it."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=("book", "compute", "sweep", "all"), default="book")
    p.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    p.add_argument("--iters", type=int, default=10_000, help="steps of a full run (10000)")
    p.add_argument("--step-block", type=int, default=2000,
                   help="steps per block when timing the step alone (2000)")
    p.add_argument("--compute-steps", type=int, default=30,
                   help="steps per block in the compute config (30)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS and torch threads (default 1: steadiest on a shared 2-core box)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gpu", action="store_true",
                   help="GPU run: the reference, xpnet numpy-f32 and the GPU contenders only")
    p.add_argument("--only", action="append", default=[], metavar="TEXT",
                   help="keep contenders whose name contains TEXT (repeatable)")
    p.add_argument("--json", default=None, metavar="PATH",
                   help="default benchmarks/results/<host>-<date>.json (-quick.json with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run (< 30 s): 300 steps, 1 rep, small blocks and sweep")
    args = p.parse_args(argv)
    if args.quick:
        args.iters, args.reps = min(args.iters, 300), 1
        args.step_block = min(args.step_block, 100)
    if args.gpu:
        args.only = args.only or [REFERENCE, "xpnet numpy-f32", "cupy", "cuda"]
    if args.reps < 1 or args.iters < 1 or args.step_block < 1:
        p.error("--reps, --iters and --step-block must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks``: pin threads, run the configurations, write the JSON."""
    args = parse(argv)
    threads = pin_threads(args.threads)
    import xpnet  # noqa: F401  (after pinning: versions for the record)

    date = _dt.date.today().isoformat()
    host = socket.gethostname().split(".")[0] or "host"
    suffix = "-quick" if args.quick else ""  # a smoke run never overwrites real results
    json_path = Path(args.json) if args.json else RESULTS / f"{host}-{date}{suffix}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)  # the sweep's plot may come first
    stem = str(json_path.with_suffix(""))
    report: dict[str, Any] = {"date": date, "machine": machine(), "threads": threads,
                              "command": "python -m benchmarks " + " ".join(
                                  sys.argv[1:] if argv is None else argv)}
    pools = threads.get("pools", [])
    print(f"threads: {args.threads} (BLAS: "
          + ", ".join(f"{p['internal_api']} {p['architecture']} x{p['num_threads']}"
                      for p in pools) + f"; torch: {threads.get('torch_threads', '-')})")
    write = json_writer(json_path)
    args.checkpoint = write
    t0 = time.perf_counter()
    if args.config in ("book", "all"):
        run_book(args, report)
    if args.config in ("compute", "all"):
        run_compute(args, report)
    if args.config in ("sweep", "all"):
        run_sweep(args, report, stem)
    report["machine"]["versions"] = machine()["versions"]
    report["seconds"] = time.perf_counter() - t0
    write(report)
    print(f"wrote {json_path} ({report['seconds']:.0f} s)")
    return 0
