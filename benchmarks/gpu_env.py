"""The GPU check's first step: is CuPy usable here, on what, with which versions.

``python -m benchmarks.gpu_env [--json PATH]`` prints ``cuda_status`` first (the one answer that
matters if everything else fails), then the device, the driver and runtime, NVRTC, NCCL, and the
versions of Python, NumPy, CuPy, PyTorch, array-api-compat and xpnet; exits 1 when CuPy cannot
run a kernel.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any


def describe() -> dict[str, Any]:
    from xpnet.backend import cuda_status

    usable, why = cuda_status()
    found: dict[str, Any] = {"cuda_status": [usable, why], "python": platform.python_version()}
    print("cuda_status:", (usable, why), flush=True)
    import array_api_compat
    import numpy

    import xpnet

    found.update(numpy=numpy.__version__, array_api_compat=array_api_compat.__version__,
                 xpnet=xpnet.__version__)
    try:
        import cupy

        found["cupy"] = cupy.__version__
        runtime = cupy.cuda.runtime
        found["cuda_runtime"] = runtime.runtimeGetVersion()
        found["cuda_driver"] = runtime.driverGetVersion()
        found["device_count"] = runtime.getDeviceCount()
        props = runtime.getDeviceProperties(0)
        name = props["name"]
        found["device"] = name.decode() if isinstance(name, bytes) else str(name)
        found["memory_gib"] = round(props["totalGlobalMem"] / 2**30, 1)
        found["compute_capability"] = cupy.cuda.Device(0).compute_capability
        from cupy.cuda import nvrtc

        found["nvrtc"] = ".".join(map(str, nvrtc.getVersion()))
    except Exception as exc:
        found["cupy_error"] = f"{type(exc).__name__}: {exc}"
    try:
        from xpnet.ops.cupy_ops import nccl_problem

        found["nccl"] = nccl_problem() or "available"
    except Exception as exc:
        found["nccl"] = f"{type(exc).__name__}: {exc}"
    try:
        import torch

        found["torch"] = torch.__version__
        found["torch_cuda"] = torch.cuda.is_available()
    except Exception as exc:
        found["torch"] = f"{type(exc).__name__}: {exc}"
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the findings there")
    args = parser.parse_args()
    found = describe()
    for key, value in found.items():
        print(f"{key}: {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(found, f, indent=1)
    return 0 if found["cuda_status"][0] else 1


if __name__ == "__main__":
    sys.exit(main())
