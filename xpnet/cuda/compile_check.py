"""Compile every xpnet kernel variant with the real NVRTC, without a GPU.

``python -m xpnet.cuda --compile-only [--arch sm_90] [--kernel NAME]`` builds the full CUDA
source of each variant exactly as CuPy does at a kernel's first launch (CuPy's own elementwise
code generator, its headers, its compiler options and ``-ftz=true``) and compiles it to a cubin
with NVRTC. It needs CuPy with NVRTC and the CUDA headers (``pip install "cupy-cuda12x[ctk]"``,
or ``cupy-cuda12x nvidia-cuda-nvrtc-cu12 nvidia-cuda-runtime-cu12``); no device.

A variant is one kernel of :data:`xpnet.cuda.kernels.KERNELS` with one dtype per type
placeholder and one memory layout (:data:`LAYOUTS`). One line per variant, then a total; the
exit status is 1 if any variant fails to compile (its NVRTC log is printed), 2 if NVRTC is not
usable here.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .kernels import KERNELS, KernelSource

__all__ = ["LAYOUTS", "CompileError", "Variant", "compile_variant", "kernel_code", "main",
           "variants"]

#: ``{name: (ndim, c_contiguous, 32-bit indexing)}`` of the non-raw arrays and the loop
#: (CuPy reduces contiguous operands to one dimension); raw arrays keep their own ndim and
#: take the contiguity and index width. 64-bit indexing is what CuPy picks for arrays of 2**31
#: elements or more.
LAYOUTS: dict[str, tuple[int, bool, bool]] = {
    "contiguous": (1, True, True),
    "strided": (2, False, True),
    "contiguous-i64": (1, True, False),
    "strided-i64": (2, False, False),
}
#: Hopper (the H200 of the GPU check) and Ampere.
DEFAULT_ARCHS = ("sm_90", "sm_80")

# cupy/_core/_kernel.pxd: enum _ArgKind
_NDARRAY, _INDEXER, _SCALAR = 1, 2, 3


class CompileError(RuntimeError):
    """NVRTC refused a kernel's source; the message holds its log."""


@dataclass(frozen=True)
class Variant:
    """One kernel, one dtype per type placeholder, one layout."""

    kernel: KernelSource
    types: tuple[tuple[str, str], ...]
    layout: str

    def __str__(self) -> str:
        types = " ".join(f"{k}={v}" for k, v in self.types)
        return f"{self.kernel.name:<26} {types:<22} {self.layout:<14}"


def variants(kernels: Iterable[KernelSource] | None = None) -> Iterator[Variant]:
    """Every variant of ``kernels`` (default: all of xpnet's)."""
    for kernel in KERNELS.values() if kernels is None else kernels:
        names = sorted(kernel.types)
        for combo in itertools.product(*(kernel.types[n] for n in names)):
            for layout in LAYOUTS:
                yield Variant(kernel, tuple(zip(names, combo, strict=True)), layout)


def _cupy() -> Any:
    """The real CuPy, or a :class:`RuntimeError` saying what to install."""
    try:
        import cupy
    except Exception as exc:
        msg = (f"the real CuPy is not importable ({type(exc).__name__}: {exc}); install it "
               'with NVRTC and the CUDA headers: pip install "cupy-cuda12x[ctk]"')
        raise RuntimeError(msg) from None
    if getattr(cupy, "FAKE", False):
        msg = "this is the fake CuPy of tests/fakecupy (on PYTHONPATH); NVRTC needs the real one"
        raise RuntimeError(msg)
    return cupy


def kernel_code(variant: Variant) -> str:
    """The CUDA source CuPy generates for ``variant`` (its headers included), through CuPy's own
    code generator (``cupy._core._kernel``)."""
    cupy = _cupy()
    import numpy as np
    from cupy._core import _carray, _kernel, _scalar, core

    src = variant.kernel
    ek = cupy.ElementwiseKernel(src.in_params, src.out_params, src.body, src.name)
    types = {k: np.dtype(v) for k, v in variant.types}
    ndim, contiguous, index32 = LAYOUTS[variant.layout]

    def dtype_of(p: Any) -> Any:
        return types[p.ctype] if p.dtype is None else p.dtype

    in_dtypes = tuple(None if p.name in src.scalars else dtype_of(p) for p in ek.in_params)
    out_dtypes = tuple(dtype_of(p) for p in ek.out_params)
    # The same type decisions (and "Type is mismatched" errors) as a launch.
    in_types, out_types, type_map = _kernel._decide_params_type(
        ek.in_params, ek.out_params, in_dtypes, out_dtypes)
    infos = []
    for p, dtype in zip(ek.in_params + ek.out_params, in_types + out_types, strict=True):
        if p.name in src.scalars:
            infos.append(_kernel._ArgInfo(_SCALAR, _scalar.CScalar, np.dtype(dtype), 0, True,
                                          True))
        elif p.raw:
            raw_ndim = src.raw_ndim[p.name]
            infos.append(_kernel._ArgInfo(_NDARRAY, cupy.ndarray, np.dtype(dtype), raw_ndim,
                                          contiguous or raw_ndim == 0, index32))
        else:
            infos.append(_kernel._ArgInfo(_NDARRAY, cupy.ndarray, np.dtype(dtype), ndim,
                                          contiguous, index32))
    infos.append(_kernel._ArgInfo(_INDEXER, _carray.Indexer, None, ndim, True, index32))
    code = _kernel._get_elementwise_kernel_code(tuple(infos), type_map, ek.params,
                                                ek.operation, ek.name, ek.preamble)
    headers = "".join(f"#include <{h}>\n" for h in core._cupy_header_list)
    return headers + str(code)


def compiler_options(arch: str) -> tuple[str, ...]:
    """CuPy's NVRTC options for a cubin of ``arch`` (``"sm_90"``), as a launch would use them
    (``cupy/cuda/compiler.py``: ``-ftz=true``, ``--device-as-default-execution-space``)."""
    _cupy()
    from cupy._core import core

    return (*core.assemble_cupy_compiler_options(()), "-ftz=true", f"-arch={arch}",
            "--device-as-default-execution-space")


def compile_variant(variant: Variant, arch: str) -> int:
    """Compile ``variant`` for ``arch`` with NVRTC; returns the cubin's size in bytes.

    Raises :class:`CompileError` with NVRTC's log if the source does not compile."""
    _cupy()
    from cupy.cuda import compiler

    program = compiler._NVRTCProgram(kernel_code(variant), f"{variant.kernel.name}.cu",
                                     method="cubin")
    try:
        cubin, _ = program.compile(compiler_options(arch))
    except compiler.CompileException as exc:
        raise CompileError(str(exc)) from None
    return len(cubin)


def _nvrtc_version() -> str:
    from cupy.cuda import nvrtc

    major, minor = nvrtc.getVersion()
    return f"{major}.{minor}"


def main(argv: Sequence[str] | None = None,
         kernels: Iterable[KernelSource] | None = None) -> int:
    """The command line (see the module text); ``kernels`` replaces xpnet's table (tests)."""
    parser = argparse.ArgumentParser(
        prog="python -m xpnet.cuda",
        description="Compile every xpnet CUDA kernel variant with the real NVRTC (no GPU "
                    "needed): one line per variant and architecture, then a total.")
    parser.add_argument("--compile-only", action="store_true", required=True,
                        help="compile the kernels (the only mode; it launches nothing)")
    parser.add_argument("--arch", action="append", metavar="SM",
                        help=f"target architecture, repeatable (default: "
                             f"{' and '.join(DEFAULT_ARCHS)})")
    parser.add_argument("--kernel", action="append", metavar="NAME",
                        help="only these kernels (xpnet_relu_forward or relu_forward)")
    args = parser.parse_args(argv)
    archs = [a.strip() for value in args.arch or DEFAULT_ARCHS for a in value.split(",")]
    chosen = list(KERNELS.values()) if kernels is None else list(kernels)
    if args.kernel:
        wanted = {k.removeprefix("xpnet_") for k in args.kernel}
        unknown = wanted - {k.key for k in chosen}
        if unknown:
            parser.error(f"unknown kernel(s) {', '.join(sorted(unknown))}; choose from "
                         f"{', '.join(k.key for k in chosen)}")
        chosen = [k for k in chosen if k.key in wanted]
    try:
        import cupy

        _cupy()
        header = f"CuPy {cupy.__version__}, NVRTC {_nvrtc_version()}"
        compiler_options(archs[0])  # the CUDA headers are found, or this says what to install
    except Exception as exc:
        print(f"python -m xpnet.cuda: NVRTC is not usable here: {exc}", file=sys.stderr)
        return 2
    print(f"compiling xpnet's kernels with {header} for {', '.join(archs)}")
    done = failed = 0
    for variant in variants(chosen):
        for arch in archs:
            try:
                size = compile_variant(variant, arch)
            except CompileError as exc:
                failed += 1
                print(f"FAIL {arch:<6} {variant}\n{exc}", flush=True)
                continue
            done += 1
            print(f"ok   {arch:<6} {variant}  ({size} B cubin)", flush=True)
    total = done + failed
    print(f"{total} variants compiled ({len(chosen)} kernels, {len(archs)} architectures): "
          f"{done} ok, {failed} failed")
    return 1 if failed else 0
