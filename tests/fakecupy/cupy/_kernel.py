"""``ElementwiseKernel`` that runs the CUDA C body on the CPU.

The body is pasted into a generated C++ loop over ``i`` (typedefs for the type placeholders, raw
parameters as small CArray-like views indexed with ``[]`` in logical C order, non-raw parameters
read or written at ``i`` after broadcasting, scalars by value), compiled once with g++ into a
shared library (cached by source hash) and called through ctypes on the NumPy buffers.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np

_CTYPES = {
    "bool": "bool", "int8": "signed char", "uint8": "unsigned char", "int16": "short",
    "uint16": "unsigned short", "int32": "int", "uint32": "unsigned int",
    "int64": "long long", "uint64": "unsigned long long", "float32": "float",
    "float64": "double",
    # CuPy's float16 is CUDA's half; GCC's _Float16 (x86-64) has the same IEEE binary16 layout.
    "float16": "_Float16",
}

_PRELUDE = r"""
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#include <cmath>
#include <cstddef>
#include <algorithm>
using std::min; using std::max;
template <typename T> struct CArray {
  T* data_; int ndim_; long long size_; long long shape_[8]; long long strides_[8];
  T& operator[](long long idx) const {
    long long off = 0;
    for (int d = ndim_ - 1; d >= 0; --d) {
      off += (idx % shape_[d]) * strides_[d]; idx /= shape_[d];
    }
    return *reinterpret_cast<T*>(reinterpret_cast<char*>(data_) + off);
  }
  long long size() const { return size_; }
  const long long* shape() const { return shape_; }
  const long long* strides() const { return strides_; }
};
struct CIndexer { long long size_; long long size() const { return size_; } };
struct RawArg { void* data; long long ndim; long long size; long long shape[8];
                long long strides[8]; };
"""

_CACHE = os.environ.get("XPNET_FAKECUPY_CACHE") or os.path.join(
    tempfile.gettempdir(), f"xpnet-fakecupy-{os.getuid()}")


class _Param:
    def __init__(self, text: str, is_input: bool) -> None:
        words = text.split()
        self.raw = words[0] == "raw"
        if self.raw:
            words = words[1:]
        if len(words) != 2:
            msg = f"cannot parse kernel parameter {text!r}"
            raise ValueError(msg)
        self.type, self.name = words
        self.is_input = is_input
        self.placeholder = self.type not in _CTYPES

    def dtype(self, types: dict[str, np.dtype]) -> np.dtype:
        return types[self.type] if self.placeholder else np.dtype(self.type)


def _params(text: str, is_input: bool) -> list[_Param]:
    return [_Param(p.strip(), is_input) for p in text.split(",") if p.strip()]


def compile_source(source: str) -> ctypes.CDLL:
    """Compile C++ ``source`` into a shared library once (cached by hash) and load it."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:24]
    os.makedirs(_CACHE, exist_ok=True)
    lib = os.path.join(_CACHE, f"k{digest}.so")
    if not os.path.exists(lib):
        compiler = shutil.which("g++") or shutil.which("c++")
        if compiler is None:
            msg = "fake cupy: ElementwiseKernel needs g++ to run kernel bodies on the CPU"
            raise RuntimeError(msg)
        src = os.path.join(_CACHE, f"k{digest}.{os.getpid()}.cpp")
        tmp = os.path.join(_CACHE, f"k{digest}.{os.getpid()}.so")
        with open(src, "w") as f:
            f.write(source)
        done = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-std=c++17", "-o", tmp, src],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            msg = (f"fake cupy: the kernel does not compile:\n{done.stderr}\n"
                   f"--- source ---\n{source}")
            raise RuntimeError(msg)
        os.replace(tmp, lib)
        os.remove(src)
    return ctypes.CDLL(lib)


class _RawArg(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("ndim", ctypes.c_longlong),
                ("size", ctypes.c_longlong), ("shape", ctypes.c_longlong * 8),
                ("strides", ctypes.c_longlong * 8)]


def _raw_arg(a: np.ndarray) -> _RawArg:
    arg = _RawArg()
    arg.data = a.ctypes.data
    arg.ndim = a.ndim
    arg.size = a.size
    for d in range(a.ndim):
        arg.shape[d] = a.shape[d]
        arg.strides[d] = a.strides[d]
    return arg


class KernelSpec:
    """A parsed ElementwiseKernel; :meth:`run` executes it on NumPy arrays."""

    def __init__(self, in_params: str, out_params: str, operation: str, name: str) -> None:
        self.ins = _params(in_params, True)
        self.outs = _params(out_params, False)
        self.operation = operation
        self.name = name
        names = [p.name for p in self.ins + self.outs]
        if len(set(names)) != len(names):
            msg = f"duplicate parameter names in kernel {name!r}: {names}"
            raise ValueError(msg)
        self._libs: dict[tuple, ctypes.CDLL] = {}

    def source(self, types: dict[str, np.dtype]) -> str:
        lines = [_PRELUDE]
        lines += [f"typedef {_CTYPES[dt.name]} {key};" for key, dt in sorted(types.items())]
        lines.append(f'extern "C" void {self.name}(long long _n, void** _args) {{')
        lines.append("  CIndexer _ind{_n};")
        # CuPy compiles with -ftz=true: single-precision arithmetic flushes denormals (inputs
        # and results) to zero. SSE's FTZ and DAZ bits do that on the CPU, for this kernel.
        ftz = any(dt == np.float32 for dt in types.values())
        if ftz:
            lines.append("#if defined(__SSE__)")
            lines.append("  const unsigned int _csr = _mm_getcsr(); _mm_setcsr(_csr | 0x8040);")
            lines.append("#endif")
        for k, p in enumerate(self.ins + self.outs):
            ctype = p.type if p.placeholder else _CTYPES[p.type]
            if p.raw:
                lines.append(f"  RawArg* _r{k} = (RawArg*)_args[{k}];")
                lines.append(f"  CArray<{ctype}> _c{k}; _c{k}.data_ = ({ctype}*)_r{k}->data; "
                             f"_c{k}.ndim_ = (int)_r{k}->ndim; _c{k}.size_ = _r{k}->size; "
                             f"for (int d = 0; d < _c{k}.ndim_; ++d) {{ _c{k}.shape_[d] = "
                             f"_r{k}->shape[d]; _c{k}.strides_[d] = _r{k}->strides[d]; }}")
            else:
                lines.append(f"  {ctype}* _p{k} = ({ctype}*)_args[{k}];")
        lines.append("  for (long long i = 0; i < _n; ++i) {")
        for k, p in enumerate(self.ins + self.outs):
            ctype = p.type if p.placeholder else _CTYPES[p.type]
            if p.raw:
                const = "const " if p.is_input else ""
                lines.append(f"    {const}CArray<{ctype}>& {p.name} = _c{k};")
            elif p.is_input:
                lines.append(f"    const {ctype} {p.name} = _p{k}[i];")
            else:
                lines.append(f"    {ctype}& {p.name} = _p{k}[i];")
        lines.append("    { " + self.operation + " }")
        lines.append("  }")
        if ftz:
            lines.append("#if defined(__SSE__)")
            lines.append("  _mm_setcsr(_csr);")
            lines.append("#endif")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def resolve_types(self, values: list) -> dict[str, np.dtype]:
        """The placeholder types, decided as CuPy's ``_decide_params_type_core`` does: by the
        arrays only (outputs first, then inputs; scalars are cast to what the arrays decide),
        with ``TypeError: Type is mismatched`` for an array whose dtype differs from its
        parameter's type or from the placeholder's (no silent casts, as in CuPy)."""
        types: dict[str, np.dtype] = {}
        n_in = len(self.ins)
        pairs = list(zip(self.outs, values[n_in:], strict=False))
        pairs += list(zip(self.ins, values[:n_in], strict=False))
        for p, v in pairs:
            if not isinstance(v, np.ndarray):
                continue
            if not p.placeholder:
                if v.dtype != np.dtype(p.type):
                    msg = f"Type is mismatched. {p.name} {v.dtype} {p.type} (kernel {self.name})"
                    raise TypeError(msg)
            elif p.type in types:
                if types[p.type] != v.dtype:
                    msg = (f"Type is mismatched. {p.name} {v.dtype} {types[p.type]} {p.type} "
                           f"(kernel {self.name})")
                    raise TypeError(msg)
            else:
                types[p.type] = v.dtype
        for p in self.ins + self.outs:
            if p.placeholder and p.type not in types:
                # CuPy looks the type up and fails with a KeyError: only arrays decide types.
                msg = (f"{p.type!r}: no array argument decides the type {p.type} of {p.name} "
                       f"(kernel {self.name})")
                raise KeyError(msg)
        return types

    def run(self, args: list, outs: list[np.ndarray], types: dict[str, np.dtype],
            shape: tuple[int, ...]) -> None:
        """Execute on NumPy ``args`` (inputs) writing ``outs`` in place; ``shape`` is the loop."""
        key = tuple(sorted((k, v.str) for k, v in types.items()))
        lib = self._libs.get(key)
        if lib is None:
            lib = self._libs[key] = compile_source(self.source(types))
        n = int(np.prod(shape, dtype=np.int64))
        keep: list = []
        pointers = (ctypes.c_void_p * (len(self.ins) + len(self.outs)))()
        writeback: list[tuple[np.ndarray, np.ndarray]] = []
        for k, (p, v) in enumerate(zip(self.ins + self.outs, list(args) + list(outs),
                                       strict=True)):
            dtype = p.dtype(types)
            if p.raw:
                if p.is_input:
                    v = np.asarray(v, dtype=dtype)
                elif v.dtype != dtype:
                    msg = f"raw output {p.name} has dtype {v.dtype}, kernel type {dtype}"
                    raise TypeError(msg)
                raw = _raw_arg(v)
                keep += [v, raw]
                pointers[k] = ctypes.addressof(raw)
                continue
            if p.is_input:
                buf = np.ascontiguousarray(np.broadcast_to(np.asarray(v, dtype=dtype), shape))
            else:
                buf = v if (v.flags.c_contiguous and v.dtype == dtype) else \
                    np.ascontiguousarray(v, dtype=dtype)
                if buf is not v:
                    writeback.append((v, buf))
            keep.append(buf)
            pointers[k] = buf.ctypes.data
        getattr(lib, self.name)(ctypes.c_longlong(n), pointers)
        for target, buf in writeback:
            np.copyto(target, buf, casting="unsafe")


def check_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_]\w*", name):
        msg = f"kernel name must be a C identifier, got {name!r}"
        raise ValueError(msg)
    return name
