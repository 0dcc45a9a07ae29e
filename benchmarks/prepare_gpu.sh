#!/usr/bin/env bash
# Prepare what benchmarks/gpu_check.sh needs on a CUDA machine without internet, here:
#   .whl/        wheels for Python 3.12 that the GPU machine lacks (array-api-compat,
#                array-api-strict, tqdm, threadpoolctl; --no-deps: all pure Python)
#   .whl/mpi/    mpi4py and the mpich wheel for CPython 3.12 (the data-parallel step of part 2)
#   .gpu/mnist/  the four MNIST IDX files, gzipped, from xpnet's verified cache
#   .gpu/book/   the book's clone from $XPNET_BOOK_DIR, if set (part 2's `xpnet book` step)
# Both folders are git-ignored; carry them with the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir -p .whl .gpu/mnist
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform any --platform manylinux2014_x86_64 -d .whl \
    array-api-compat array-api-strict tqdm threadpoolctl
mkdir -p .whl/mpi
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
    -d .whl/mpi mpi4py mpich
# The cache holds the raw files, checked against their SHA-256 (xpnet data fetch mnist).
cache=$(python3 -c 'from xpnet.datasets import fetch_mnist; print(fetch_mnist())')
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte \
         t10k-labels-idx1-ubyte; do
    gzip -c -n "$cache/$f" > ".gpu/mnist/$f.gz"
done
# The book's clone for part 2's `xpnet book` step (issue 19), without its history and notebooks.
if [ -n "${XPNET_BOOK_DIR:-}" ]; then
    rm -rf .gpu/book && mkdir -p .gpu/book
    (cd "$XPNET_BOOK_DIR" && tar cf - --exclude=.git --exclude=notebooks .) | tar xf - -C .gpu/book
fi
ls -la .whl .gpu/mnist
du -sh .whl .gpu
