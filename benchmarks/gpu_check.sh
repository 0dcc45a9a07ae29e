#!/usr/bin/env bash
# The GPU check: run from the repository root on a CUDA machine that has Python 3.12, CuPy,
# PyTorch, NumPy and pytest but no internet and no array-api-compat. Carry with the working
# tree (both made here by benchmarks/prepare_gpu.sh, both git-ignored):
#   .whl/        array-api-compat, array-api-strict, tqdm wheels
#   .gpu/mnist/  the four MNIST IDX files, gzipped
# Writes every log, the training history and the benchmark JSON under $OUT/ (default
# ./gpu-out) and a one-line-per-step summary in $OUT/summary.txt. Under 8 minutes in total:
# each step has its own time limit (the benchmark JSON is written after each repetition, so a
# cut-short benchmark still leaves what it measured).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
T0=$(date +%s)

note() { echo "$*" | tee -a "$SUMMARY"; }

step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, log to $OUT/NAME.log
    local name=$1 limit=$2
    shift 2
    local t=$(date +%s)
    echo "== $name: $*"
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 3 "$OUT/$name.log"
    note "$name: rc=$rc ($(( $(date +%s) - t )) s)  $(tail -n 1 "$OUT/$name.log" | cut -c1-160)"
    return 0
}

python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
    > "$OUT/pip.log" 2>&1 || note "pip install of .whl/ failed: see pip.log"
export PYTHONPATH=/tmp/site:$PWD
export XPNET_MNIST_DIR=$PWD/.gpu/mnist
export XPNET_DATA=/tmp/xpnet-data
export PYTHONDONTWRITEBYTECODE=1

(nvidia-smi || true) > "$OUT/nvidia-smi.txt" 2>&1
step env 30 python3 -c '
import sys, numpy, cupy, torch, array_api_compat, xpnet
from xpnet.backend import cuda_status
print(sys.version.split()[0], "numpy", numpy.__version__, "cupy", cupy.__version__,
      "torch", torch.__version__, "compat", array_api_compat.__version__)
print("cuda_status:", cuda_status())'
step pytest 100 python3 -m pytest --backend cupy -q -p no:cacheprovider --maxfail=25
step gradcheck 45 python3 -m xpnet gradcheck --backend cupy --mode fast
step train 60 python3 -m xpnet train --backend cupy --out "$OUT/train"
step train_graph 60 python3 -c '
import time
from xpnet import TwoLayerNet
from xpnet.datasets import load_mnist
from xpnet.train import train
(x, t), (xt, tt) = load_mnist()
for graph in (False, True):
    net = TwoLayerNet(784, 50, 10, xp="cupy", dtype="float32", seed=0)
    h = train(net, x, t, xt, tt, seed=0, cuda_graph=graph)
    print(f"cuda_graph={graph}: {h.train_time:.2f} s training, test acc {h.final_test_acc:.4f}")'
step bench 180 python3 -m benchmarks --config book --gpu --reps 2 --threads 8 \
    --json "$OUT/bench-gpu.json"
note "total: $(( $(date +%s) - T0 )) s"
