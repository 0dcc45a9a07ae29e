"""``python -m benchmarks.book_run``: one of the book's scripts through ``xpnet book``, end to
end, as a reader runs it: the wall time of the whole command (start-up, data, training, the
figure) and the script's last accuracy line.

Each run is a fresh process (``python -m xpnet book ... SCRIPT``). ``--baseline CHECKOUT`` runs
the ``xpnet`` package of another checkout (today's ``main``) on the same seeds, the two
interleaved run by run, so that load from other processes hits both alike; the report gives
the median wall time of each and their ratio.

    python -m benchmarks.book_run --book ~/deep-learning-from-scratch \\
        --script ch07/train_convnet.py --max-train 5000 --seeds 0,1,2 [--baseline DIR] \\
        [--json PATH]

The clone comes from ``--book`` or ``$XPNET_BOOK_DIR``; the MNIST files from xpnet's cache.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .harness import Column, machine, print_table, write_json

#: The last line of a book script that reports an accuracy (``test acc: 0.96...``, ``Best-1
#: (val acc:0.8) ...``, ``caluculate accuracy (float16)`` ...): its last number is the result.
ACCURACY = re.compile(r"acc", re.IGNORECASE)
NUMBER = re.compile(r"\d+\.\d+")


def run_once(book: Path, script: str, max_train: int, seed: int, checkout: Path | None,
             extra: list[str]) -> dict[str, Any]:
    """One ``xpnet book`` command in a fresh process: its wall time and last accuracy."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    if checkout is not None:  # that checkout's package first on the path
        env["PYTHONPATH"] = os.pathsep.join([str(checkout), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "xpnet", "book", "--max-train", str(max_train),
               "--seed", str(seed), "--out", out, *extra, str(book / script)]
        start = time.perf_counter()
        # Started in the output folder: a checkout as the working directory would come first
        # on the path (python -m puts it there) and shadow the package chosen.
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out,
                              check=False)
        wall = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if ACCURACY.search(line)
             and not line.startswith("epoch")]
    numbers = NUMBER.findall(lines[-1]) if lines else []
    return {"seed": seed, "wall_s": wall, "exit": done.returncode,
            "accuracy": float(numbers[-1]) if numbers else None,
            "error": done.stderr[-1000:] if done.returncode else None}


def main(argv: list[str] | None = None) -> int:
    """Run the script ``len(seeds)`` times (and as often with ``--baseline``), print a table,
    write the JSON."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.book_run",
                                description=__doc__.split("\n")[0])
    p.add_argument("--book", default=os.environ.get("XPNET_BOOK_DIR"),
                   help="the clone of the book's repository (default $XPNET_BOOK_DIR)")
    p.add_argument("--script", default="ch07/train_convnet.py")
    p.add_argument("--max-train", type=int, default=5000)
    p.add_argument("--seeds", default="0,1,2", help="comma-separated; one run each")
    p.add_argument("--baseline", default=None, metavar="CHECKOUT",
                   help="also run the xpnet package of another checkout, interleaved")
    p.add_argument("--json", default=None, metavar="PATH")
    p.add_argument("xpnet_args", nargs="*", metavar="ARG",
                   help="more options for xpnet book, after -- (e.g. -- --threads 1)")
    args = p.parse_args(argv)
    if not args.book or not (Path(args.book) / "common").is_dir():
        p.error("needs a clone of the book: --book DIR or $XPNET_BOOK_DIR")
    book = Path(args.book).resolve()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    contenders: dict[str, Path | None] = {"xpnet": Path(__file__).resolve().parents[1]}
    if args.baseline:
        contenders["xpnet-main"] = Path(args.baseline).resolve()
    report: dict[str, Any] = {
        "config": {"script": args.script, "max_train": args.max_train, "seeds": seeds,
                   "xpnet_args": args.xpnet_args, "baseline": args.baseline},
        "machine": machine(), "runs": {name: [] for name in contenders},
    }
    for seed in seeds:
        for name, checkout in contenders.items():
            result = run_once(book, args.script, args.max_train, seed, checkout,
                              args.xpnet_args)
            report["runs"][name].append(result)
            print(f"{name:11s} seed {seed}: {result['wall_s']:.1f} s, accuracy "
                  f"{result['accuracy']}" + (f", exit {result['exit']}" if result["exit"]
                                             else ""), flush=True)
    report["median_wall_s"] = {name: statistics.median(r["wall_s"] for r in runs)
                               for name, runs in report["runs"].items()}
    if "xpnet-main" in report["median_wall_s"]:
        med = report["median_wall_s"]
        report["ratio"] = {"xpnet/xpnet-main": med["xpnet"] / med["xpnet-main"]}
    report["load_average_at_end"] = list(os.getloadavg())
    rows = [[name, r["seed"], r["wall_s"], r["accuracy"]]
            for name, runs in report["runs"].items() for r in runs]
    print()
    print_table([Column("contender", 11, align="<"), Column("seed", 4),
                 Column("wall", 8, ".1f", unit=" s"), Column("accuracy", 9, ".4f")], rows)
    for name, value in report["median_wall_s"].items():
        print(f"  median wall {name}: {value:.1f} s")
    for key, value in report.get("ratio", {}).items():
        print(f"  {key}: {value:.2f}x")
    if args.json:
        print(f"wrote {write_json(args.json, report, indent=1)}")
    return 1 if any(r["exit"] for runs in report["runs"].values() for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
