#!/usr/bin/env bash
# The book's own scripts, unedited, through `xpnet book` on CuPy (issue 19): part 2 of
# benchmarks/gpu_check.sh runs it as one step.
#   bash benchmarks/gpu_book.sh OUT [--dry-run]
# The clone: $XPNET_BOOK_DIR, else .gpu/book (benchmarks/prepare_gpu.sh copies it there from
# $XPNET_BOOK_DIR). Without one the step says so and passes (CI has no clone). The scripts that
# draw need matplotlib; where the machine lacks it they are left out, with a line saying so.
set -uo pipefail
OUT=${1:?usage: gpu_book.sh OUT [--dry-run]}
DRY=0; [ "${2:-}" = --dry-run ] && DRY=1
PY=${PYTHON:-python3}
BOOK=${XPNET_BOOK_DIR:-.gpu/book}
if [ ! -d "$BOOK/common" ]; then
    echo "no clone of the book at $BOOK: set XPNET_BOOK_DIR (or run prepare_gpu.sh with it); nothing run"
    exit 0
fi
run() {  # run SCRIPT MAX_TRAIN
    echo "== xpnet book --backend cupy --max-train $2 $1"
    start=$(date +%s.%N)
    $PY -m xpnet book --backend cupy --dtype float32 --seed 0 --max-train "$2" \
        --out "$OUT" "$BOOK/$1" 2>&1 | tail -n 4 || return 1
    [ "${PIPESTATUS[0]}" = 0 ] || return 1
    echo "   $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
}
status=0
run ch07/gradient_check.py 100 || status=1
if [ $DRY = 1 ]; then
    run ch05/buy_apple_orange.py 100 || status=1
else
    run ch05/train_neuralnet.py 1000 || status=1
fi
if $PY -c "import matplotlib" 2> /dev/null; then
    run ch07/train_convnet.py "$([ $DRY = 1 ] && echo 100 || echo 1000)" || status=1
    run ch08/misclassified_mnist.py 600 || status=1
else
    echo "matplotlib is not installed here: ch07/train_convnet.py and ch08/misclassified_mnist.py left out"
fi
exit $status
