"""The harness every benchmark module runs on: threads, timers, interleaved rounds, memory,
summaries, JSON and tables.

- **Threads**: ``pin_threads`` pins BLAS/OpenMP (threadpoolctl) and torch's intra-op threads
  and records which BLAS kernel runs; ``ThreadSwitch`` gives each contender its own counts in
  one process (BLAS, torch, xpnet's pool); ``machine`` records the host and the versions.
- **Timers**: ``timed`` (one call), ``best_time`` (the best of a few loops), ``step_time`` (a
  block of training steps of a contender after a warm-up).
- **Interleaving**: ``prepare`` builds and warms each contender (one that raises is skipped
  with its reason), ``interleave`` runs their step blocks round-robin, so that load from other
  processes hits every contender alike; ``Failures`` drops a contender that raises half-way.
- **Summaries**: ``summary`` (median, min/max, IQR, runs), ``spread`` (median, min, max) and
  ``block_ratios`` (the ratio of two contenders block by block: each pair ran back to back).
- **Memory**: ``peak_memory`` (tracemalloc and the growth of the peak RSS), ``tracemalloc_mib``,
  ``rss_mib`` and ``max_rss_mib``.
- **Data**: ``epoch_order`` (a fresh permutation every epoch, as xpnet's loop draws batches) and
  ``train_images`` (MNIST, or random data for smoke runs).
- **Output**: ``write_json``/``json_writer`` replace a file atomically; ``print_table`` prints
  the fixed-width tables of the reports.

Nothing here imports xpnet, torch or matplotlib at import time: the GPU check runs benchmarks
on a machine where some of them are missing, and threads are pinned before xpnet loads.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import resource
import socket
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"

#: One training step: ``step(i)`` runs step ``i``; an optional ``step.sync()`` waits for a
#: device that runs ahead of the host.
Step = Callable[[int], Any]


# --- threads and the machine -------------------------------------------------------------------

def pin_threads(n: int | None) -> dict[str, Any]:
    """Pin BLAS/OpenMP threads (threadpoolctl) and torch's intra-op threads to ``n``; returns
    what runs (the BLAS pools and their kernels, torch's thread count, thread variables)."""
    info: dict[str, Any] = {"requested": n}
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        info["threadpoolctl"] = "not installed: threads not pinned (pip install 'xpnet[bench]')"
        threadpool_info = None
    else:
        if n is not None:
            # Kept alive for the whole process: the limits stay in force while it exists.
            pin_threads._limiter = threadpool_limits(n)  # type: ignore[attr-defined]
    if torch_importable():
        try:
            import torch

            if n is not None:
                torch.set_num_threads(n)
            info["torch_threads"] = torch.get_num_threads()
        except ImportError:
            pass
    if threadpool_info is not None:
        info["pools"] = [{k: p.get(k) for k in ("internal_api", "architecture", "num_threads",
                                                  "version", "prefix")}
                         for p in threadpool_info()]
    info["env"] = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                              "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
                   if k in os.environ}
    return info


class ThreadSwitch:
    """Thread settings per contender in one process: ``use(blas=, torch=, xpnet=)`` sets
    the BLAS threads (threadpoolctl), torch's intra-op threads and xpnet's own
    (``xpnet.set_threads``: its pool, one BLAS thread each), each only when it changes, so
    contenders at different counts interleave (``wrap`` puts it before every step)."""

    def __init__(self) -> None:
        self.state: dict[str, int] = {}

    def use(self, *, blas: int | None = None, torch: int | None = None,
            xpnet: int | None = None) -> None:
        if xpnet is not None and self.state.get("xpnet") != xpnet:
            import xpnet as xpnet_module

            xpnet_module.set_threads(xpnet)  # also torch's count, when torch is loaded
            self.state["xpnet"] = xpnet
            self.state.pop("torch", None)
        if blas is not None and self.state.get("blas") != blas:
            from threadpoolctl import threadpool_limits

            threadpool_limits(blas, user_api="blas")
            self.state["blas"] = blas
        if torch is not None and self.state.get("torch") != torch and torch_importable():
            import torch as torch_module

            torch_module.set_num_threads(torch)
            self.state["torch"] = torch

    def wrap(self, make: Callable[[], Step], **want: int | None) -> Callable[[], Step]:
        """``make`` whose step (and the making) runs under ``use(**want)``."""
        def made() -> Step:
            self.use(**want)
            inner = make()

            def step(i: int) -> Any:
                self.use(**want)
                return inner(i)
            if hasattr(inner, "sync"):
                step.sync = inner.sync  # type: ignore[attr-defined]
            return step
        return made


def torch_importable() -> bool:
    """Whether torch is installed (without importing it)."""
    return importlib.util.find_spec("torch") is not None


def machine() -> dict[str, Any]:
    """The host, its CPU and load, and the versions of the array libraries loaded so far."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("torch", "xpnet", "array_api_compat", "cupy"):
        if mod in sys.modules:
            versions[mod] = getattr(sys.modules[mod], "__version__", "?")
    return {"host": socket.gethostname(), "platform": platform.platform(), "cpu": cpu,
            "cores": os.cpu_count(), "load_average_at_start": list(os.getloadavg()),
            "versions": versions}


# --- timers --------------------------------------------------------------------------------------

def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, fn())``: the wall time of one call."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def best_time(fn: Callable[[], Any], number: int, repeat: int = 3, warmup: int = 0) -> float:
    """Seconds per call of ``fn``: the best of ``repeat`` loops of ``number`` calls, after
    ``warmup`` calls (the best loop is the one least disturbed by other processes)."""
    for _ in range(warmup):
        fn()
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


class Steppable(Protocol):
    """A contender that times by steps: a fresh training step, and a wait for its device."""

    def make_step(self) -> Step: ...

    def sync(self) -> None: ...


def step_time(contender: Steppable, steps: int, warmup: int = 50) -> float:
    """Seconds per step, over a block of ``steps`` steps after ``warmup`` (fresh network)."""
    step = contender.make_step()
    for i in range(warmup):
        step(i)
    contender.sync()
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    contender.sync()
    return (time.perf_counter() - t0) / steps


# --- interleaved rounds ------------------------------------------------------------------------

def prepare(makers: dict[str, Callable[[], Step]], warmup: int,
            label: str = "") -> tuple[dict[str, Step], dict[str, str]]:
    """Build each contender's step and run ``warmup`` steps (then its ``sync``): ``(steps,
    skipped)``, where a contender that raises is left out with its reason, printed as
    ``skipped {label}{name}: ...``."""
    steps: dict[str, Step] = {}
    skipped: dict[str, str] = {}
    for name, make in makers.items():
        try:
            step = make()
            for i in range(warmup):
                step(i)
            if hasattr(step, "sync"):
                step.sync()
            steps[name] = step
        except Exception as exc:  # a contender that cannot run is reported, not fatal
            skipped[name] = f"{type(exc).__name__}: {exc}"
            print(f"skipped {label}{name}: {skipped[name]}")
    return steps, skipped


def interleave(steps: dict[str, Step], reps: int, n_steps: int,
               start: int = 0) -> dict[str, list[float]]:
    """Seconds per step of each contender, one block of ``n_steps`` steps per round, the
    contenders round-robin in each of ``reps`` rounds (noise hits every contender alike). Step
    numbers continue from ``start`` (the warm-up's); a step with ``sync`` is waited for at the
    end of each block, inside the timing (a device runs ahead of the host)."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    counter = dict.fromkeys(steps, start)
    for _ in range(reps):
        for name, step in steps.items():
            sync = getattr(step, "sync", None)
            first = counter[name]
            t0 = time.perf_counter()
            for i in range(first, first + n_steps):
                step(i)
            if sync is not None:
                sync()
            times[name].append((time.perf_counter() - t0) / n_steps)
            counter[name] = first + n_steps
    return times


class Failures:
    """Contenders that raised: each is dropped from the rest of the run with its reason
    (printed, and kept in the report) instead of ending the benchmark."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def run(self, c: Any, phase: str, fn: Callable[[], Any]) -> tuple[bool, Any]:
        """``(True, fn())``, or ``(False, None)`` when ``fn`` raises (``c``, anything with a
        ``name``, then counts as failed). A contender that failed before is not run again."""
        if c.name in self.reasons:
            return False, None
        try:
            return True, fn()
        except Exception as exc:  # any failure of one contender; Ctrl-C still stops the run
            reason = f"{phase} failed: {type(exc).__name__}: {exc}"
            self.reasons[c.name] = reason
            print(f"  skipped {c.name}: {reason}", flush=True)
            return False, None


# --- summaries -----------------------------------------------------------------------------------

def summary(values: list[float]) -> dict[str, Any]:
    """Median, min, max, interquartile range and the values themselves (in run order)."""
    vals = sorted(values)
    q1, q3 = (np.percentile(vals, [25, 75]).tolist() if len(vals) > 1 else (vals[0], vals[0]))
    return {"median": statistics.median(vals), "min": vals[0], "max": vals[-1],
            "iqr": [q1, q3], "runs": values}


def spread(values: Iterable[float], scale: float = 1.0) -> dict[str, float]:
    """``{"median", "min", "max"}`` of ``values`` times ``scale`` (1e3: seconds to ms)."""
    vals = sorted(scale * v for v in values)
    return {"median": statistics.median(vals), "min": vals[0], "max": vals[-1]}


def block_ratios(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """The spread of ``a / b`` block by block: each pair of blocks ran back to back, so this
    shows how far the ratio moves under load."""
    return spread(x / y for x, y in zip(a, b, strict=True))


# --- memory --------------------------------------------------------------------------------------

def _status_kib(key: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (Linux), or ``None``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def max_rss_mib() -> float:
    """Peak resident set of this process: Linux's ``VmHWM`` (``ru_maxrss`` of a child started
    by a big parent reports the parent's peak), else ``ru_maxrss``."""
    peak = _status_kib("VmHWM")
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss if peak is None else peak) / 1024


def rss_mib() -> float:
    """The resident set now (Linux ``/proc``; the peak elsewhere)."""
    now = _status_kib("VmRSS")
    return max_rss_mib() if now is None else now / 1024


def tracemalloc_mib(fn: Callable[[], Any]) -> float:
    """The tracemalloc peak while ``fn`` runs (Python and NumPy host allocations only)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def peak_memory(fn: Callable[[], Any]) -> dict[str, Any]:
    """Peak memory while ``fn`` runs: tracemalloc (Python and NumPy host allocations; not
    torch's or a GPU's) and the peak-RSS growth (``VmHWM`` reset via ``/proc/self/clear_refs``,
    every allocation of the process)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        rss_before = _status_kib("VmRSS")
    except OSError:
        rss_before = None
    out: dict[str, Any] = {"tracemalloc_peak_mib": tracemalloc_mib(fn)}
    peak = _status_kib("VmHWM")
    if rss_before is not None and peak is not None:
        out["rss_peak_growth_mib"] = max(peak - rss_before, 0) / 1024
    return out


# --- data ----------------------------------------------------------------------------------------

def epoch_order(n: int, batch: int, seed: int) -> Callable[[int], np.ndarray]:
    """``order(i)``: the rows of step ``i``, from a fresh permutation every epoch of
    ``n // batch`` steps (as xpnet's training loop draws its batches)."""
    rng = np.random.default_rng(seed)
    per = n // batch
    state: dict[str, np.ndarray] = {}

    def order(i: int) -> np.ndarray:
        slot = i % per
        if slot == 0:
            state["perm"] = rng.permutation(n)
        return state["perm"][slot * batch:(slot + 1) * batch]
    return order


def train_images(quick: bool, *, flatten: bool,
                 n_random: int = 2000) -> tuple[np.ndarray, np.ndarray, str]:
    """``(x, t, source)``: MNIST's training set (float32 in [0, 1], uint8 labels), or, with
    ``quick`` or where MNIST cannot be loaded (said so), ``n_random`` random images of the
    same shape."""
    if not quick:
        try:
            from xpnet.datasets import load_mnist

            (x, t), _ = load_mnist(flatten=flatten)
            return x, t, "MNIST"
        except Exception as exc:  # no data here: say so, use random data
            print(f"note: MNIST not available ({exc}); using random data")
    rng = np.random.default_rng(0)
    shape = (n_random, 784) if flatten else (n_random, 1, 28, 28)
    return (rng.random(shape, dtype=np.float32), rng.integers(0, 10, n_random).astype(np.uint8),
            "random")


# --- output --------------------------------------------------------------------------------------

def write_json(path: str | os.PathLike[str], data: Any, indent: int = 2) -> Path:
    """Replace ``path`` with ``data`` as JSON atomically (a temporary file next to it, then a
    rename), so a run cut short leaves the last complete file; makes the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent, default=str) + "\n")
    tmp.replace(path)
    return path


def json_writer(path: Path, indent: int = 1) -> Callable[[dict[str, Any]], None]:
    """``write(report)``: ``write_json(path, report)``, to call after every measurement."""
    def write(report: dict[str, Any]) -> None:
        write_json(path, report, indent=indent)

    return write


@dataclass(frozen=True)
class Column:
    """One column of a fixed-width table: its header, width and alignment (``<`` or ``>``),
    the format of a number (``.3f``) and a unit glued after it (``kB``), and what stands for
    a missing value (``None``)."""

    header: str
    width: int
    fmt: str = ""
    align: str = ">"
    unit: str = ""
    missing: str = ""

    def cell(self, value: Any) -> str:
        """``value`` formatted and padded to the column's width (a string as it is)."""
        if value is None:
            text = self.missing
        elif isinstance(value, str):
            text = value
        else:
            text = format(value, self.fmt) + self.unit
        return f"{text:{self.align}{self.width}}"


def print_table(columns: Sequence[Column], rows: Iterable[Sequence[Any]], sep: str = " ") -> None:
    """Print the header line and one line per row of cells (one per column)."""
    print(sep.join(f"{c.header:{c.align}{c.width}}" for c in columns))
    for row in rows:
        print(sep.join(c.cell(v) for c, v in zip(columns, row, strict=True)))
