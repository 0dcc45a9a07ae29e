#!/usr/bin/env bash
# The GPU check, in parts that each fit one device command of at most 5 minutes (their step
# limits add up to under 300 s), most valuable first:
#   part 1: CUDA status and versions, the CuPy test suite, CuPy-vs-NumPy and graph-vs-eager
#           comparisons (batch norm included), the torch backend on cuda:0, a short MNIST run,
#           the MLP GPU benchmark
#   part 2: conv nets: gradient checks, a short SimpleConvNet run, eager vs CUDA graph, the
#           conv-net GPU benchmark, the book's own scripts on CuPy (xpnet book), data
#           parallelism with one rank (NCCL, or its fallback)
#   part 3: long runs for a later device: DeepConvNet's 20 epochs, examples/train_on_gpu.py
#
#   bash benchmarks/gpu_check.sh [--dry-run] [--part 1|2|3|all]     (default: --part all = 1,2)
#
# Run from the repository root on a CUDA machine with Python 3.12, CuPy, PyTorch, NumPy and
# pytest but no internet and no array-api-compat. Carry with the working tree (both made here
# by benchmarks/prepare_gpu.sh, both git-ignored):
#   .whl/        array-api-compat, array-api-strict, tqdm, threadpoolctl wheels; .whl/mpi/:
#                mpi4py and the mpich wheel (for the data-parallel step)
#   .gpu/mnist/  the four MNIST IDX files, gzipped
# Writes every log under $OUT/ (default ./gpu-out): $OUT/report.json, extended by each step as
# soon as it ends (benchmarks/gpu_report.py), and one PASS/FAIL line per step in
# $OUT/summary.txt; exits 1 if any step failed. A pytest step that ran no test fails.
#
# --dry-run: the same steps here, on the CPU: CuPy is the fake of tests/fakecupy (on
# PYTHONPATH), torch runs on the CPU instead of cuda:0, training runs are short, and the limits
# are multiplied by XPNET_DRY_RUN_SLOW (default 5: a shared 2-core CPU, not the GPU host).
set -u
cd "$(dirname "$0")/.."
DRY=0
PART=all
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --part) PART=${2:?--part needs 1, 2, 3 or all}; shift ;;
        *) echo "usage: $0 [--dry-run] [--part 1|2|3|all]" >&2; exit 2 ;;
    esac
    shift
done
case "$PART" in 1|2|3|all) ;; *) echo "--part: 1, 2, 3 or all, not $PART" >&2; exit 2 ;; esac
if [ $DRY = 1 ]; then
    OUT=${OUT:-$(mktemp -d /tmp/xpnet-gpu-dry.XXXXXX)}
    TORCH_DEVICE=cpu
    SLOW=${XPNET_DRY_RUN_SLOW:-5}
    export PYTHONPATH=$PWD/tests/fakecupy:$PWD
else
    OUT=${OUT:-$PWD/gpu-out}
    TORCH_DEVICE=cuda:0
    SLOW=1
    export PYTHONPATH=/tmp/site:$PWD
    export CUPY_CACHE_DIR=${CUPY_CACHE_DIR:-/tmp/cupy-kernel-cache}  # kept while warm
    # The lent machine runs as root with Open MPI's mpiexec on PATH, which refuses root unless
    # told (the first device run: every mpiexec test failed on that alone).
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
REPORT=$OUT/report.json
touch "$SUMMARY"
T0=$(date +%s)
FAILED=0
PY=${PYTHON:-python3}
CURRENT_PART=0
dry() { [ $DRY = 1 ]; }

step() {  # step NAME LIMIT_S [--junit|--result] COMMAND...: run it, log to $OUT/NAME.log
    local name=$1 limit=$(( $2 * SLOW )) extra=()
    shift 2
    case "${1:-}" in
        --junit) extra=(--junit "$OUT/$name.xml"); shift ;;
        --result) extra=(--result "$OUT/$name.json"); shift ;;
    esac
    local t
    t=$(date +%s)
    echo "== part $CURRENT_PART, $name (limit ${limit} s): $*"
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 3 "$OUT/$name.log"
    local line
    line=$(python3 benchmarks/gpu_report.py add "$REPORT" --name "$name" --part "$CURRENT_PART" \
        --rc $rc --seconds $(( $(date +%s) - t )) --limit "$limit" --log "$OUT/$name.log" \
        "${extra[@]}") || FAILED=$((FAILED + 1))
    echo "$line" | tee -a "$SUMMARY"
    return 0
}

install() {  # what the machine lacks, unless it is importable already (dry run, warm machine)
    if $PY -c 'import array_api_compat, array_api_strict, tqdm' 2> /dev/null; then
        echo "SKIP install: array-api-compat, array-api-strict, tqdm importable" | tee -a "$SUMMARY"
    else
        step install 20 $PY -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    fi
    # Tests start subprocesses with a PYTHONPATH of their own: a .pth file in the interpreter's
    # site-packages makes the wheels and this checkout importable there too (the first device
    # run lost 14 tests to "No module named 'array_api_compat'").
    if ! dry; then
        local site
        site=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        printf '%s\n%s\n' /tmp/site "$PWD" > "$site/xpnet-gpu-check.pth" 2> /dev/null \
            || echo "note: $site is not writable; subprocesses of the tests see PYTHONPATH only"
    fi
    [ -d .gpu/mnist ] && export XPNET_MNIST_DIR=$PWD/.gpu/mnist
    export XPNET_DATA=${XPNET_DATA:-/tmp/xpnet-data}
    export PYTHONDONTWRITEBYTECODE=1
}

part1() {
    CURRENT_PART=1
    (nvidia-smi || true) > "$OUT/nvidia-smi.txt" 2>&1
    step env 15 --result $PY -m benchmarks.gpu_env --json "$OUT/env.json"
    # The CuPy suite: every backend test on CuPy, plus the CuPy-only tests of the graph step,
    # the fused kernels against NumPy and (with two GPUs) the device rules.
    # tests/project (the README, examples, packaging) runs in CPU CI and is no backend's test.
    step pytest_cupy 110 --junit $PY -m pytest --backend cupy -q -p no:cacheprovider \
        --ignore=tests/project \
        --maxfail=25 -m "not slow" --junitxml="$OUT/pytest_cupy.xml"
    step compare 20 --result $PY -m benchmarks.gpu_compare --iters "$(dry && echo 30 || echo 300)" \
        --json "$OUT/compare.json"
    step pytest_torch 70 --junit env XPNET_TEST_TORCH_DEVICE=$TORCH_DEVICE \
        $PY -m pytest --backend torch -q -p no:cacheprovider --ignore=tests/project --maxfail=25 -m "not slow" \
        --junitxml="$OUT/pytest_torch.xml"
    step train 15 $PY -m xpnet train --backend cupy --iters "$(dry && echo 60 || echo 2000)" \
        --no-plot --out "$OUT/train"
    if dry; then
        step bench 40 $PY -m benchmarks --config book --gpu --reps 1 --iters 60 \
            --step-block 20 --threads 2 --only cupy --json "$OUT/bench-gpu.json"
    else
        step bench 40 $PY -m benchmarks --config book --gpu --reps 1 --iters 3000 --threads 8 \
            --json "$OUT/bench-gpu.json"
    fi
}

part2() {
    CURRENT_PART=2
    step gradcheck 45 bash -c "$PY -m xpnet gradcheck --backend cupy --mode fast && \
        $PY -m xpnet gradcheck --backend cupy --mode fast --model mlp --hidden 40,30,20 \
            --batchnorm --dropout 0.2 --weight-decay 0.1 && \
        $PY -m xpnet gradcheck --backend cupy --mode fast --model simple-convnet --samples 4"
    # SimpleConvNet on the GPU, Adam (1 epoch: about 0.98; the 20-epoch accuracy is in the
    # README).
    # The dry run evaluates 1,000 images per epoch and the test set at the end: the fake's
    # kernels run single-threaded C loops, where the whole 70,000 took minutes on a loaded CPU.
    step train_cnn 55 $PY -m xpnet train --backend cupy --model simple-convnet --optimizer adam \
        $(dry && echo "--iters 10 --eval-samples 1000" || echo "--epochs 1") --no-plot \
        --out "$OUT/train_cnn"
    step train_graph 40 $PY -c "
from xpnet import TwoLayerNet
from xpnet.datasets import load_mnist
from xpnet.training import train
(x, t), (xt, tt) = load_mnist()
for graph in (False, True):
    net = TwoLayerNet(784, 50, 10, xp='cupy', dtype='float32', seed=0)
    h = train(net, x, t, xt, tt, seed=0, iters=$(dry && echo 60 || echo 10000), cuda_graph=graph)
    print(f'cuda_graph={graph}: {h.train_time:.2f} s training, test acc {h.final_test_acc:.4f}')"
    # The CuPy SimpleConvNet step against PyTorch CUDA eager (issue 9: <= 1.5x), DeepConvNet's.
    if dry; then
        step bench_convnet 60 $PY -m benchmarks.convnet --gpu --quick --models simple \
            --json "$OUT/bench_convnet.json"
    else
        step bench_convnet 60 $PY -m benchmarks.convnet --gpu --models simple,deep \
            --json "$OUT/bench_convnet.json"
    fi
    # The book's own scripts, unedited, on CuPy (issue 19; benchmarks/gpu_book.sh).
    step book 45 bash benchmarks/gpu_book.sh "$OUT/book" $(dry && echo --dry-run)
    # Data parallelism with one rank: NCCL where the machine has it, else the host fallback
    # (its note names the package); either way the result equals the one-process run.
    step mpi_one_rank 30 --result env LD_LIBRARY_PATH="/tmp/mpi/lib:${LD_LIBRARY_PATH:-}" \
        PYTHONPATH="$PYTHONPATH:$(mpi_site)" $PY -m benchmarks.gpu_parallel \
        --json "$OUT/mpi_one_rank.json"
}

mpi_site() {  # where part 2's mpi4py and mpich go (a prefix: mpich's libraries need lib/)
    if ! dry && ! $PY -c 'import mpi4py' 2> /dev/null && [ -d .whl/mpi ]; then
        $PY -m pip install -q --no-index --no-deps --prefix /tmp/mpi .whl/mpi/*.whl > /dev/null 2>&1
    fi
    $PY -c 'import sysconfig; print(sysconfig.get_path("purelib", vars={"base": "/tmp/mpi"}))'
}

part3() {
    CURRENT_PART=3
    # Chapter 8 on the GPU, the book's settings (issue 9 asks for >= 0.993): DeepConvNet,
    # Adam 0.001, batch 100, 20 epochs. The dry run trains a few steps on 500 images.
    if dry; then
        step train_deep 60 $PY -c "
from xpnet.datasets import load_mnist
from xpnet.nets import DeepConvNet
from xpnet.optim import Adam
from xpnet.training import train
(x, t), (xt, tt) = load_mnist(flatten=False)
net = DeepConvNet(xp='cupy', dtype='float32', seed=0)
h = train(net, x[:500], t[:500], xt[:200], tt[:200], seed=0, iters=3, batch_size=100,
          optimizer=Adam(lr=0.001))
print(f'test accuracy after iteration 3: {h.final_test_acc:.4f}')"
        step example 40 $PY -c "
import runpy, xpnet as tr
full = tr.train
tr.train = lambda *a, **k: full(*a, **{**k, 'iters': 60})
runpy.run_path('examples/train_on_gpu.py', run_name='__main__')"
    else
        step train_deep 240 $PY -m xpnet train --backend cupy --model deep-convnet \
            --optimizer adam --lr 0.001 --epochs 20 --no-plot --out "$OUT/train_deep"
        step example 40 $PY examples/train_on_gpu.py
    fi
}

install
case "$PART" in
    1) part1 ;;
    2) part2 ;;
    3) part3 ;;
    all) part1; part2; dry && part3 ;;
esac
echo "total: $(( $(date +%s) - T0 )) s, $FAILED failed step(s), report $REPORT" | tee -a "$SUMMARY"
[ $FAILED -eq 0 ]
