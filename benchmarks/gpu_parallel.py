"""Data parallelism on the GPU with one rank (``MPI.COMM_SELF``): the gradients go through
NCCL's allreduce where CuPy has NCCL, else through host copies (whose note names the package to
install); either way the parameters equal those of the one-process run.

``python -m benchmarks.gpu_parallel [--json PATH]``; exits 1 if they differ or the run fails.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the result there")
    args = parser.parse_args()
    from mpi4py import MPI

    from xpnet import TwoLayerNet
    from xpnet.backend import to_numpy
    from xpnet.ops.cupy_ops import nccl_problem
    from xpnet.training import train

    problem = nccl_problem()
    print("nccl:", problem or "available", flush=True)
    rng = np.random.default_rng(0)
    x = rng.random((600, 784), dtype=np.float32)
    t = rng.integers(0, 10, 600)
    params = {}
    lines: list[str] = []
    for comm in (None, MPI.COMM_SELF):
        net = TwoLayerNet(784, 50, 10, xp="cupy", dtype="float64", seed=0)
        train(net, x, t, x[:100], t[:100], iters=50, batch_size=100, seed=1, comm=comm,
              log=lines.append if comm is not None else None)
        params["mpi" if comm is not None else "alone"] = {
            k: to_numpy(v) for k, v in net.params.items()}
    worst = max(float(np.max(np.abs(params["mpi"][k] - params["alone"][k])))
                for k in params["alone"])
    notes = [line for line in lines if line.startswith("note:")]
    result = {"nccl": problem or "available",
              "transport": "host copies" if problem else "nccl", "notes": notes,
              "max_abs_difference": worst}
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    ok = worst < 1e-10 and (problem is None or len(notes) == 1)
    print("PASS" if ok else "FAIL", f"one rank vs one process: max |difference| {worst:.1e}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
