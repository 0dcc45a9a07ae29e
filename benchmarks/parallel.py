"""Data parallelism over MPI: 1 vs N processes on the compute-bound MLP step, and the command.

``python -m benchmarks.parallel [--procs 1,2] [--json PATH]`` launches
``mpiexec -n P python -m benchmarks.parallel --worker`` for each process count (1 BLAS thread
per process), alternating the counts over ``--reps`` rounds; each run times ``--steps`` training
steps of the 784-4096-10 TwoLayerNet (NumPy float32, SGD) at global batch 4096, the
configuration of ``python -m benchmarks --config compute``, and the fused gradient allreduce
inside them. Reports the median step time, the speed-up and the scaling efficiency
``t1 / (P * tP)``, and the allreduce time per step.

``python -m benchmarks.parallel --cli [--epochs 2] [--reps 3] [--json PATH]`` times the README's
MPI command, ``xpnet train --model mlp --hidden 100,100 --optimizer adam --epochs E`` (real
MNIST), as a user runs it: one process, then ``mpiexec -n 2`` with xpnet's BLAS-thread choice
(no thread variable set), and ``mpiexec -n 2`` with every rank on all the cores (the behaviour
before issue 17: ``OMP_NUM_THREADS`` = cores, set as a user would), interleaved over the
rounds. Reports each contender's median training time (``history.json``: steps and
evaluations, no start-up) per 600 steps and its ratio to one process, and the median wall time
of the whole command (start-up and MNIST loading included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .harness import Column, print_table, write_json

ROOT = Path(__file__).resolve().parent.parent
SIZES, BATCH = (784, 4096, 10), 4096


def worker(steps: int, warmup: int) -> None:
    """One run under mpiexec: time ``steps`` steps; rank 0 prints one JSON line."""
    from mpi4py import MPI

    from xpnet import TwoLayerNet
    from xpnet.optim import SGD
    from xpnet.training.parallel import DataParallel

    comm = MPI.COMM_WORLD
    rng = np.random.default_rng(0)
    n = 2 * BATCH
    x = rng.random((n, SIZES[0]), dtype=np.float32)
    t = rng.integers(0, SIZES[2], n)
    net = TwoLayerNet(*SIZES, dtype="float32", seed=0)
    parallel = DataParallel(comm, batch_size=BATCH)
    step, context = parallel.make_step(net, np, x, t, SGD(lr=0.01))
    spent = [0.0]
    allreduce = parallel.comm.allreduce_

    def timed(buf: Any, what: str = "the gradient allreduce") -> Any:
        start = time.perf_counter()
        out = allreduce(buf, what)
        spent[0] += time.perf_counter() - start
        return out

    parallel.comm.allreduce_ = timed
    order = np.arange(BATCH)
    with context:
        for _ in range(warmup):
            step(order)
        comm.Barrier()
        spent[0] = 0.0
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            step(order)
            times.append(time.perf_counter() - start)
    # The slowest rank sets the pace.
    step_time = comm.allreduce(statistics.median(times), op=MPI.MAX)
    reduce_time = comm.allreduce(spent[0] / steps, op=MPI.MAX)
    if comm.rank == 0:
        print(json.dumps({"procs": comm.size, "step_s": step_time, "allreduce_s": reduce_time,
                          "buffer_mb": sum(v.size for v in net.params.values()) * 4 / 1e6}))


#: The README's MPI command (its --epochs comes from --epochs here).
CLI_COMMAND = ["train", "--model", "mlp", "--hidden", "100,100", "--optimizer", "adam"]
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")


def cli_contenders(mpiexec: str, cores: int) -> list[tuple[str, list[str], dict[str, str]]]:
    """``(name, command prefix, extra environment)`` of each contender of ``--cli``."""
    command = [sys.executable, "-m", "xpnet"]
    mpi = [mpiexec, "-n", "2"]
    return [
        ("1 process (default threads)", command, {}),
        ("2 processes (xpnet's choice)", [*mpi, *command], {}),
        (f"2 processes x {cores} threads (before)", [*mpi, *command],
         {"OMP_NUM_THREADS": str(cores)}),
    ]


def run_cli(mpiexec: str, epochs: int, reps: int, out: Path) -> list[dict[str, Any]]:
    """Time each contender ``reps`` times, interleaved; one row per contender."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    base_env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    base_env["PYTHONPATH"] = str(ROOT)
    contenders = cli_contenders(mpiexec, int(cores or 1))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in contenders}
    for rep in range(reps):
        for index, (name, prefix, extra) in enumerate(contenders):
            run_dir = out / f"rep{rep}-{index}"
            cmd = [*prefix, *CLI_COMMAND, "--epochs", str(epochs), "--out", str(run_dir),
                   "--no-plot"]
            started = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, env={**base_env, **extra}, capture_output=True,
                                  text=True, timeout=1800, check=False)
            wall = time.perf_counter() - started
            if proc.returncode != 0:
                msg = f"{name} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}"
                raise RuntimeError(msg)
            history = json.loads((run_dir / "history.json").read_text())
            line = next((x.strip() for x in proc.stdout.splitlines() if "data parallel" in x),
                        "")
            runs[name].append({"train_s": history["train_time"], "wall_s": wall,
                               "iterations": history["iterations"],
                               "test_acc": history["final_test_acc"], "note": line})
            print(f"  round {rep + 1}/{reps}: {name}: {history['train_time']:.2f} s training",
                  flush=True)
    rows = []
    base = None
    for name, _, extra in contenders:
        train_s = statistics.median(r["train_s"] for r in runs[name])
        per600 = train_s / runs[name][0]["iterations"] * 600
        base = per600 if base is None else base
        rows.append({"contender": name, "env": extra, "train_s": train_s,
                     "s_per_600_steps": per600, "vs_1_process": per600 / base,
                     "wall_s": statistics.median(r["wall_s"] for r in runs[name]),
                     "test_acc": runs[name][0]["test_acc"], "note": runs[name][0]["note"],
                     "runs_train_s": [r["train_s"] for r in runs[name]]})
    return rows


def main_cli(args: argparse.Namespace, mpiexec: str) -> int:
    """``--cli``: time the README's MPI command, print the table, write the JSON."""
    import tempfile

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"xpnet {' '.join(CLI_COMMAND)} --epochs {args.epochs} (real MNIST, NumPy float32), "
          f"{cores} cores; medians of {args.reps} rounds, interleaved; no thread variable set "
          "unless named")
    with tempfile.TemporaryDirectory(prefix="xpnet-bench-cli-") as tmp:
        rows = run_cli(mpiexec, args.epochs, args.reps, Path(tmp))
    width = max(len(r["contender"]) for r in rows)
    print_table([Column("contender", width, align="<"), Column("training s", 10, ".2f"),
                 Column("s / 600 steps", 13, ".3f"), Column("vs 1 process", 12, ".2f"),
                 Column("wall s", 6, ".1f"), Column("test acc", 8, ".4f")],
                [[r["contender"], r["train_s"], r["s_per_600_steps"], r["vs_1_process"],
                  r["wall_s"], r["test_acc"]] for r in rows], sep="  ")
    notes = sorted({r["note"] for r in rows if r["note"]})
    for note in notes:
        print(f"  ({note.removeprefix('data parallel: ')})")
    if args.json:
        report = {"config": {"command": ["xpnet", *CLI_COMMAND, "--epochs", str(args.epochs)],
                             "reps": args.reps},
                  "machine": {"host": platform.node(), "cpus": cores,
                              "python": platform.python_version(), "numpy": np.__version__},
                  "date": time.strftime("%Y-%m-%d"), "rows": rows}
        write_json(args.json, report)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.parallel``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--procs", default="1,2", help="process counts (default 1,2)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3, help="rounds over the process counts")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results")
    parser.add_argument("--cli", action="store_true",
                        help="time the README's MPI command instead (1 process vs 2)")
    parser.add_argument("--epochs", type=int, default=2, help="--cli: epochs per run")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.steps, args.warmup)
        return 0
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        print("mpiexec not found: pip install mpi4py mpich", file=sys.stderr)
        return 1
    if args.cli:
        return main_cli(args, mpiexec)
    procs = [int(p) for p in args.procs.split(",")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    runs: dict[int, list[dict[str, Any]]] = {p: [] for p in procs}
    for _ in range(args.reps):  # interleaved: machine noise hits every count alike
        for p in procs:
            cmd = [mpiexec, "-n", str(p), sys.executable, "-m", "benchmarks.parallel",
                   "--worker", "--steps", str(args.steps), "--warmup", str(args.warmup)]
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=600, check=True)
            runs[p].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    base = statistics.median(r["step_s"] for r in runs[procs[0]]) * procs[0]
    rows = []
    print(f"TwoLayerNet {'-'.join(map(str, SIZES))}, global batch {BATCH}, NumPy float32, SGD, "
          f"1 BLAS thread per process, {os.cpu_count()} cores; medians of {args.reps} runs x "
          f"{args.steps} steps")
    for p in procs:
        step = statistics.median(r["step_s"] for r in runs[p])
        reduce = statistics.median(r["allreduce_s"] for r in runs[p])
        row = {"procs": p, "step_ms": step * 1e3, "speedup": base / step,
               "efficiency": base / (p * step), "allreduce_ms": reduce * 1e3,
               "buffer_mb": runs[p][0]["buffer_mb"],
               "runs_step_ms": [r["step_s"] * 1e3 for r in runs[p]]}
        rows.append(row)
    print_table([Column("procs", 5), Column("step ms", 9, ".1f"), Column("speed-up", 9, ".2f"),
                 Column("efficiency", 10, ".2f"), Column("allreduce ms", 13, ".2f")],
                [[r["procs"], r["step_ms"], r["speedup"], r["efficiency"], r["allreduce_ms"]]
                 for r in rows])
    if args.json:
        import mpi4py

        report = {"config": {"sizes": list(SIZES), "batch_size": BATCH, "dtype": "float32",
                             "optimizer": "SGD", "steps": args.steps, "reps": args.reps,
                             "threads_per_process": 1},
                  "machine": {"host": platform.node(), "cpus": os.cpu_count(),
                              "python": platform.python_version(), "numpy": np.__version__,
                              "mpi4py": mpi4py.__version__},
                  "date": time.strftime("%Y-%m-%d"), "rows": rows}
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
