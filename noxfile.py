"""nox sessions: the test matrix and the gradient checks per backend, lint, benchmarks.

    nox                         # the CPU sessions: lint, tests and gradcheck on numpy/strict/torch
    nox -s tests                # every backend; cupy skips with the reason where there is no GPU
    nox -s "tests(torch)"
    nox -s gradcheck            # the 784-50-10 per-parameter table on every backend
    nox -s bench                # the benchmark suite (not a default session)
    nox -s mutants              # mutation testing of the core modules (slow; not a default session)
"""

from __future__ import annotations

import shutil

import nox

nox.needs_version = ">=2024.3.2"
# virtualenv + pip: pip honours this machine's configuration (torch's CPU build from local disk).
nox.options.default_venv_backend = "virtualenv"
nox.options.reuse_existing_virtualenvs = True

BACKENDS = ["numpy", "array_api_strict", "torch", "cupy"]
CPU_BACKENDS = ["numpy", "array_api_strict", "torch"]
nox.options.sessions = [
    "lint",
    *(f"tests({b})" for b in CPU_BACKENDS),
    "tests_fake_cupy",
    "cuda_compile",
    *(f"gradcheck({b})" for b in CPU_BACKENDS),
    "docs",
]

# pytest --backend ids for each backend (strict runs on its default device and on "device1").
PYTEST_IDS = {"array_api_strict": "array_api_strict,array_api_strict-device1"}
TORCH = "torch==2.13.0"


def _install(session: nox.Session, backend: str, extras: str = "test") -> None:
    if backend == "cupy":
        if shutil.which("nvidia-smi") is None:
            session.skip("cupy needs a CUDA GPU and none is here (nvidia-smi not found)")
        session.install(f"-e.[{extras},cuda12]")
        probe = ("import xpnet.backend as b; ok, why = b.cuda_status(); "
                 "print('usable' if ok else why)")
        answer = str(session.run("python", "-c", probe, silent=True)).strip()
        if answer != "usable":
            session.skip(f"cupy is installed but no CUDA device is usable: {answer}")
        return
    session.install(f"-e.[{extras}]")
    if backend == "torch":
        session.install(TORCH)


@nox.session
@nox.parametrize("backend", BACKENDS, ids=BACKENDS)
def tests(session: nox.Session, backend: str) -> None:
    """The test suite on one backend (plus the backend-independent tests)."""
    _install(session, backend)
    session.run("pytest", "--backend", PYTEST_IDS.get(backend, backend), *session.posargs)


@nox.session
def tests_fake_cupy(session: nox.Session) -> None:
    """Every backend test through the CuPy code paths, on the CPU's fake CuPy.

    tests/fakecupy: NumPy buffers, CuPy's capture rules, xpnet's CUDA kernel sources compiled
    with g++."""
    if shutil.which("g++") is None:
        session.skip("the fake CuPy compiles kernel sources with g++, which is not installed")
    _install(session, "numpy")
    session.run("pytest", "--backend", "cupy", *session.posargs,
                env={"PYTHONPATH": "tests/fakecupy"})


@nox.session
def cuda_compile(session: nox.Session) -> None:
    """The real CuPy judges xpnet's kernels and CuPy calls, no GPU needed.

    NVRTC compiles every kernel variant; xpnet's CuPy calls and the fake CuPy's names are
    checked against the real package."""
    session.install("cupy-cuda12x>=14", "nvidia-cuda-nvrtc-cu12", "nvidia-cuda-runtime-cu12",
                    "nvidia-nccl-cu12", "pytest", "-e.")
    session.run("python", "-m", "xpnet.cuda", "--compile-only", *session.posargs)
    session.run("pytest", "-q", "tests/cuda/test_compile_check.py", "tests/cuda/test_cupy_api.py",
                env={"XPNET_REQUIRE_REAL_CUPY": "1"})


# Models whose gradients the gradcheck sessions compare: the chapter-5 net on MNIST images, the
# chapter-6 net with batch norm, dropout (masks fixed for the check) and weight decay, and the
# chapter-7 convnet.
GRADCHECK_MODELS = (
    (),
    ("--model", "mlp", "--hidden", "40,30,20", "--batchnorm", "--dropout", "0.2",
     "--weight-decay", "0.1"),
    ("--model", "simple-convnet", "--samples", "4"),
)


@nox.session
@nox.parametrize("backend", BACKENDS, ids=BACKENDS)
def gradcheck(session: nox.Session, backend: str) -> None:
    """Backprop against numerical gradients of the book's networks on real MNIST samples.

    The networks of GRADCHECK_MODELS, float64: every element of the 784-50-10 TwoLayerNet,
    directional derivatives for the bigger nets and on the GPU."""
    _install(session, backend, extras="test")
    for model in GRADCHECK_MODELS:
        mode = "fast" if backend == "cupy" or model else "full"
        session.run("xpnet", "gradcheck", "--backend", backend, "--mode", mode, *model,
                    *session.posargs)
        if backend == "array_api_strict":
            session.run("xpnet", "gradcheck", "--backend", backend, "--device", "device1",
                        "--mode", "fast", *model, *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The API reference, built from the docstrings with warnings as errors (docs/_build)."""
    session.install("-e.[docs]")
    session.run("python", "-m", "sphinx", "-W", "--keep-going", "-b", "html", "docs",
                "docs/_build/html")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (with the complexity limit of 12 on xpnet/) and mypy --strict on xpnet/."""
    session.install("ruff>=0.6", "mypy>=1.11", "pytest", "-e.")
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """The benchmark suite: prints a table and writes JSON under benchmarks/results/."""
    session.install("-e.[bench]", TORCH)
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(default=False)
def mutants(session: nox.Session) -> None:
    """Mutation testing of the core modules with tools/mutants.py (slow: not a default session).

    40 seeded mutants of each module group, each against the tests that import it on every CPU
    backend; prints the score per group and every survivor with its diff, and writes
    .mutants/report.json.

        nox -s mutants                          # every group
        nox -s mutants -- layers conv -n 80     # some groups, more mutants
        nox -s mutants -- --lock /tmp/cpu.lock  # flock around each test run on shared CPUs
    """
    session.install("-e.[test]", TORCH)
    session.run("python", "tools/mutants.py", "--json", ".mutants/report.json", *session.posargs)
