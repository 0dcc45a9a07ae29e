#!/usr/bin/env bash
# The GPU check: run from the repository root on a CUDA machine that has Python 3.12, CuPy,
# PyTorch, NumPy and pytest but no internet and no array-api-compat. Carry with the working
# tree (both made here by benchmarks/prepare_gpu.sh, both git-ignored):
#   .whl/        array-api-compat, array-api-strict, tqdm, threadpoolctl wheels
#   .gpu/mnist/  the four MNIST IDX files, gzipped
# Writes every log under $OUT/ (default ./gpu-out) and one PASS/FAIL line per step in
# $OUT/summary.txt; exits 1 if any step failed. Each step has its own time limit (they add up
# to 915 s; the steps themselves should take well under 8 minutes with a cold kernel cache).
#
# --dry-run: the same steps here, on the CPU: CuPy is the fake of tests/fakecupy (on
# PYTHONPATH), torch runs on the CPU instead of cuda:0, training runs are short. It tests the
# script itself before a device is lent (tests/test_gpu_check.py runs it).
set -u
cd "$(dirname "$0")/.."
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
if [ $DRY = 1 ]; then
    OUT=${OUT:-$(mktemp -d /tmp/xpnet-gpu-dry.XXXXXX)}
    TORCH_DEVICE=cpu
    ITERS=60
    SLOW=${XPNET_DRY_RUN_SLOW:-5}  # limits x5: a shared 2-core CPU, not the 16-core GPU host
    export PYTHONPATH=$PWD/tests/fakecupy:$PWD
else
    OUT=${OUT:-$PWD/gpu-out}
    TORCH_DEVICE=cuda:0
    ITERS=10000
    SLOW=1
    export PYTHONPATH=/tmp/site:$PWD
fi
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
T0=$(date +%s)
FAILED=0
PY=${PYTHON:-python3}

step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, log to $OUT/NAME.log
    local name=$1 limit=$(( $2 * SLOW ))
    shift 2
    local t
    t=$(date +%s)
    echo "== $name: $*"
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 3 "$OUT/$name.log"
    local verdict=PASS
    if [ $rc -ne 0 ]; then verdict=FAIL; FAILED=$((FAILED + 1)); fi
    [ $rc -eq 124 ] && verdict="FAIL (timed out after ${limit} s)"
    echo "$verdict $name: rc=$rc ($(( $(date +%s) - t )) s)  $(tail -n 1 "$OUT/$name.log" | cut -c1-140)" \
        | tee -a "$SUMMARY"
    return 0
}

# Install what the machine lacks, unless it is importable already (the dry run, a warm machine).
if $PY -c 'import array_api_compat, array_api_strict, tqdm' 2> /dev/null; then
    echo "SKIP install: array-api-compat, array-api-strict, tqdm importable" | tee -a "$SUMMARY"
else
    step install 30 $PY -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
fi
[ -d .gpu/mnist ] && export XPNET_MNIST_DIR=$PWD/.gpu/mnist
export XPNET_DATA=${XPNET_DATA:-/tmp/xpnet-data}
export PYTHONDONTWRITEBYTECODE=1

(nvidia-smi || true) > "$OUT/nvidia-smi.txt" 2>&1
step env 30 $PY -c '
from xpnet.backend import cuda_status
print("cuda_status:", cuda_status())
import sys, numpy, cupy, torch, array_api_compat, xpnet
print(sys.version.split()[0], "numpy", numpy.__version__, "cupy", cupy.__version__,
      "torch", torch.__version__, "cuda", torch.cuda.is_available(),
      "compat", array_api_compat.__version__, "xpnet", xpnet.__file__)'
step compare 45 $PY -m benchmarks.gpu_compare --iters $([ $DRY = 1 ] && echo 50 || echo 300)
step pytest_cupy 90 $PY -m pytest --backend cupy -q -p no:cacheprovider --maxfail=25
step pytest_torch 60 env XPNET_TEST_TORCH_DEVICE=$TORCH_DEVICE \
    $PY -m pytest --backend torch -q -p no:cacheprovider --maxfail=25 -m "not slow"
step gradcheck 30 $PY -m xpnet gradcheck --backend cupy --mode fast
step gradcheck_models 40 bash -c "$PY -m xpnet gradcheck --backend cupy --mode fast \
    --model mlp --hidden 40,30,20 --batchnorm --dropout 0.2 --weight-decay 0.1 && \
    $PY -m xpnet gradcheck --backend cupy --mode fast --model simple-convnet --samples 4"
step train 45 $PY -m xpnet train --backend cupy --iters $ITERS --no-plot --out "$OUT/train"
# Chapter 6 and 7 on the GPU: batch norm + Adam (2 epochs: about 0.97), SimpleConvNet (1 epoch:
# about 0.98); the full runs' accuracies are in the README (CPU).
if [ $DRY = 1 ]; then LENGTH="--iters 30"; else LENGTH="--epochs 2"; fi
step train_mlp 40 $PY -m xpnet train --backend cupy --model mlp --hidden 100,100,100,100 \
    --optimizer adam --lr 0.001 --batchnorm $LENGTH --no-plot --out "$OUT/train_mlp"
if [ $DRY = 1 ]; then LENGTH="--iters 10"; else LENGTH="--epochs 1"; fi
step train_cnn 60 $PY -m xpnet train --backend cupy --model simple-convnet --optimizer adam \
    $LENGTH --no-plot --out "$OUT/train_cnn"
step train_graph 45 $PY -c "
from xpnet import TwoLayerNet
from xpnet.datasets import load_mnist
from xpnet.train import train
(x, t), (xt, tt) = load_mnist()
for graph in (False, True):
    net = TwoLayerNet(784, 50, 10, xp='cupy', dtype='float32', seed=0)
    h = train(net, x, t, xt, tt, seed=0, iters=$ITERS, cuda_graph=graph)
    print(f'cuda_graph={graph}: {h.train_time:.2f} s training, test acc {h.final_test_acc:.4f}')"
# Chapter 8 on the GPU, the book's settings (issue 9 asks for >= 0.993): DeepConvNet, Adam 0.001,
# batch 100, 20 epochs. The dry run trains a few steps on 500 images through the same API (the
# fake CuPy would need minutes to evaluate all 70000 images).
if [ $DRY = 1 ]; then
    step train_deep 60 $PY -c "
from xpnet.datasets import load_mnist
from xpnet.nets import DeepConvNet
from xpnet.optim import Adam
from xpnet.train import train
(x, t), (xt, tt) = load_mnist(flatten=False)
net = DeepConvNet(xp='cupy', dtype='float32', seed=0)
h = train(net, x[:500], t[:500], xt[:200], tt[:200], seed=0, iters=3, batch_size=100,
          optimizer=Adam(lr=0.001))
print(f'test accuracy after iteration 3: {h.final_test_acc:.4f}')"
else
    step train_deep 240 $PY -m xpnet train --backend cupy --model deep-convnet --optimizer adam \
        --lr 0.001 --epochs 20 --no-plot --out "$OUT/train_deep"
fi
if [ $DRY = 1 ]; then  # the example's full 10000-step run is for the GPU; here: that it runs
    step example 40 $PY -c "
import runpy, xpnet.train as tr
full = tr.train
tr.train = lambda *a, **k: full(*a, **{**k, 'iters': $ITERS})
runpy.run_path('examples/train_on_gpu.py', run_name='__main__')"
    step bench 60 $PY -m benchmarks --config book --gpu --reps 1 --iters $ITERS \
        --step-block 20 --threads 2 --only cupy --json "$OUT/bench-gpu.json"
    step bench_convnet 60 $PY -m benchmarks.convnet --gpu --quick --models simple \
        --json "$OUT/convnet-gpu.json"
else
    step example 40 $PY examples/train_on_gpu.py
    step bench 60 $PY -m benchmarks --config book --gpu --reps 1 --threads 8 \
        --json "$OUT/bench-gpu.json"
    # Issue 9: the CuPy SimpleConvNet step against PyTorch CUDA eager (target <= 1.5x), and
    # DeepConvNet's.
    step bench_convnet 60 $PY -m benchmarks.convnet --gpu --models simple,deep \
        --json "$OUT/convnet-gpu.json"
fi
echo "total: $(( $(date +%s) - T0 )) s, $FAILED failed step(s), logs in $OUT" | tee -a "$SUMMARY"
[ $FAILED -eq 0 ]
