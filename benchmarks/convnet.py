"""``python -m benchmarks.convnet``: one training step of the book's conv nets, three ways.

Models: ``simple`` (SimpleConvNet, chapter 7: conv 30x5x5 - relu - pool - affine 100 - relu -
affine 10) and ``deep`` (DeepConvNet, chapter 8: six 3x3 convolutions, three poolings, two
affine layers with dropout). One step = forward, backward and an Adam update (lr 0.001) on a
batch of 100 MNIST images.

Contenders, interleaved round-robin in one process (blocks of ``--steps`` steps, ``--reps``
repetitions, medians reported):

xpnet-numpy   ``xpnet.nets.SimpleConvNet``/``DeepConvNet`` in float32 (``--dtype float64``: the
              book's dtype, what ``xpnet book`` runs) + ``xpnet.optim.Adam``
book-im2col   the book's im2col implementation as ``benchmarks.book`` restates it (NumPy,
              row-layout ``im2col``/``col2im``, ``argmax`` pooling, float64 weights as in the
              book, the first convolution's input gradient computed as the book does)
torch-eager   ``nn.Conv2d``/``max_pool2d``/``nn.Linear`` (+ dropout), ``cross_entropy``,
              ``loss.backward()`` and ``torch.optim.Adam``: what a PyTorch user writes

Two floors run in the same rounds, for the convolutions alone (float32, buffers made once):

matmul-floor  the three matmuls per convolution of an im2col step on whole-batch column
              matrices, xpnet's scheme and the book's (forward, weight gradient, input
              gradient as the full convolution; none for the first layer's input), on
              operands built beforehand
im2col-floor  the same plus building the two column matrices (window copies of the input and
              of the padded ``dout``)

Everything else of a step (ReLU, pooling, bias, the affine layers, the loss, Adam) is left out
of both: a step of this scheme costs more than ``im2col-floor``. (Columns built and multiplied
a few images at a time stay in the cache and can beat it; measured for DeepConvNet's layers,
that gained only in the 16-channel layer's forward pass.)

All start from the same weights. Threads are set per contender (``--threads``, default 1;
``--threads 1,2`` runs every count in the same interleaved rounds, contenders named
``xpnet-numpy@2t``...): xpnet with ``xpnet.set_threads(n)`` as a user gets it (its pool of n
threads, one BLAS thread each), torch with ``torch.set_num_threads(n)``, the book's code with n
BLAS threads; the report adds each count's ratio to the first (``scaling``) and a scaling table.
``--models mlp`` adds the chapter-6 MLP step of :mod:`benchmarks.mlp`; ``--baseline CHECKOUT``
adds ``xpnet-main``, the xpnet package of another checkout (today's ``main``): on its own pool
of n threads where it has one, else with n BLAS threads. Peak memory of one step is measured
per contender in a fresh child process (one thread count only; ``--no-memory`` skips it):
``tracemalloc`` peak (NumPy allocations; PyTorch's allocator is invisible to it) and the growth
of the process's max RSS over the state after setup.

    python -m benchmarks.convnet                  # prints a table
    python -m benchmarks.convnet --json out.json  # and writes the numbers
    python -m benchmarks.convnet --threads 1,2 --models simple,deep,mlp --no-memory
    python -m benchmarks.convnet --gpu            # xpnet-cupy against torch-cuda

``--gpu`` runs two other contenders, each block ending with a device synchronisation:
``xpnet-cupy`` (the same xpnet networks on CuPy, eager, data on the device) and ``torch-cuda``
(the PyTorch contender on ``cuda``); one without its device is skipped with the reason.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from . import book, mlp
from .book import DEEP_PADS
from .harness import (
    Column,
    ThreadSwitch,
    block_ratios,
    epoch_order,
    interleave,
    machine,
    max_rss_mib,
    pin_threads,
    prepare,
    print_table,
    rss_mib,
    spread,
    tracemalloc_mib,
    train_images,
    write_json,
)

LR = 0.001
MODELS = ("simple", "deep", "mlp")
NAMES = {"simple": "SimpleConvNet", "deep": "DeepConvNet",
         "mlp": "MLP 784-100x4-10, batch norm (benchmarks.mlp)"}


def initial_params(model: str, seed: int) -> dict[str, np.ndarray]:
    """The weights every contender starts from (those of xpnet's seeded constructor)."""
    from xpnet.nets import DeepConvNet, SimpleConvNet

    net = SimpleConvNet(seed=seed) if model == "simple" else DeepConvNet(seed=seed)
    return {k: np.array(v) for k, v in net.params.items()}


# --- xpnet ------------------------------------------------------------------------------------

def xpnet_step(model: str, x: np.ndarray, t: np.ndarray, batch: int,
               seed: int, pkg: Any = None, dtype: str = "float32") -> Callable[[int], Any]:
    """xpnet's network in ``dtype`` and its Adam, batches gathered with ``take`` (``pkg``:
    another copy of the ``xpnet`` package, e.g. ``main``'s for ``--baseline``)."""
    if model == "mlp":
        return mlp.xpnet_step(x.reshape(x.shape[0], -1), t, batch, seed, pkg)
    if pkg is None:
        import xpnet as pkg
    cls = pkg.nets.SimpleConvNet if model == "simple" else pkg.nets.DeepConvNet
    net = cls.from_params(initial_params(model, seed), dtype=dtype, **cls(seed=seed).config())
    opt = pkg.optim.Adam(lr=LR)
    order = epoch_order(x.shape[0], batch, seed)

    def step(i: int) -> Any:
        idx = order(i)
        opt.update(net.params, net.gradient(np.take(x, idx, axis=0), np.take(t, idx, axis=0)))
        return net.last_loss
    return step


# --- the book's implementation (benchmarks.book) ------------------------------------------------

def book_step(model: str, x: np.ndarray, t: np.ndarray, batch: int,
              seed: int) -> Callable[[int], Any]:
    """The book's network and Adam on float64 weights (the images stay float32, as loaded)."""
    params = initial_params(model, seed)  # float64, as the book's
    net = (book.simple_convnet(params) if model == "simple"
           else book.deep_convnet(params, np.random.default_rng(seed)))
    opt = book.Adam(lr=LR)
    order = epoch_order(x.shape[0], batch, seed)
    labels = t.astype(np.int64)

    def step(i: int) -> Any:
        idx = order(i)
        opt.update(net.params, net.gradient(x[idx], labels[idx]))
        return net.last_layer.loss
    return step


# --- PyTorch ----------------------------------------------------------------------------------

def torch_step(model: str, x: np.ndarray, t: np.ndarray, batch: int,
               seed: int, device: str = "cpu") -> Callable[[int], Any]:
    """The same network as ``torch.nn`` modules with autograd and ``torch.optim.Adam``."""
    if model == "mlp":
        return mlp.torch_step(x.reshape(x.shape[0], -1), t, batch, seed)
    import torch
    from torch import nn

    if device.startswith("cuda") and not torch.cuda.is_available():
        msg = "torch reports no CUDA device"
        raise RuntimeError(msg)

    p = {k: torch.from_numpy(v.astype(np.float32)) for k, v in initial_params(model, seed).items()}
    torch.manual_seed(seed)

    def conv(i: str, pad: int) -> nn.Conv2d:
        w = p["W" + i]
        layer = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], padding=pad)
        with torch.no_grad():
            layer.weight.copy_(w)
            layer.bias.copy_(p["b" + i])
        return layer

    def linear(i: str) -> nn.Linear:
        w = p["W" + i]
        layer = nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            layer.weight.copy_(w.T)
            layer.bias.copy_(p["b" + i])
        return layer

    if model == "simple":
        net = nn.Sequential(conv("1", 0), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            linear("2"), nn.ReLU(), linear("3"))
    else:
        mods: list[nn.Module] = []
        for i in range(1, 7):
            mods += [conv(str(i), DEEP_PADS[i - 1]), nn.ReLU()]
            if i % 2 == 0:
                mods.append(nn.MaxPool2d(2))
        net = nn.Sequential(*mods, nn.Flatten(), linear("7"), nn.ReLU(), nn.Dropout(0.5),
                            linear("8"), nn.Dropout(0.5))
    net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    xt = torch.from_numpy(x).to(device)
    tt = torch.from_numpy(t.astype(np.int64)).to(device)
    order = epoch_order(x.shape[0], batch, seed)

    def step(i: int) -> Any:
        idx = torch.from_numpy(order(i)).to(device)
        loss = nn.functional.cross_entropy(net(xt.index_select(0, idx)), tt.index_select(0, idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()
    if device.startswith("cuda"):
        step.sync = torch.cuda.synchronize  # type: ignore[attr-defined]
    return step


# --- the GPU contenders (--gpu) -----------------------------------------------------------------

def xpnet_cupy_step(model: str, x: np.ndarray, t: np.ndarray, batch: int,
                    seed: int) -> Callable[[int], Any]:
    """xpnet on CuPy, eager: the data moves to the device once, each step's rows go as a
    device index array; ``step.sync`` waits for the device."""
    from xpnet.backend import cuda_status

    ok, why = cuda_status()
    if not ok:
        raise RuntimeError(why)
    import cupy

    from xpnet.nets import DeepConvNet, SimpleConvNet
    from xpnet.optim import Adam

    cls = SimpleConvNet if model == "simple" else DeepConvNet
    net = cls.from_params(initial_params(model, seed), xp="cupy", dtype="float32",
                          **cls(seed=seed).config())
    opt = Adam(lr=LR)
    xd, td = cupy.asarray(x), cupy.asarray(t.astype(np.int64))
    order = epoch_order(x.shape[0], batch, seed)

    def step(i: int) -> Any:
        idx = cupy.asarray(order(i))
        opt.update(net.params, net.gradient(xd[idx], td[idx]))
        return net.last_loss
    step.sync = lambda: cupy.cuda.Device().synchronize()  # type: ignore[attr-defined]
    return step


GPU_CONTENDERS = {
    "xpnet-cupy": xpnet_cupy_step,
    "torch-cuda": lambda model, x, t, batch, seed: torch_step(model, x, t, batch, seed, "cuda"),
}


CONTENDERS = {"xpnet-numpy": xpnet_step, "book-im2col": book_step, "torch-eager": torch_step}


# --- what any im2col implementation pays: the floors ---------------------------------------------

def conv_shapes(model: str) -> list[tuple[int, int, int, int, int, bool]]:
    """``(C, F, H, k, pad, needs dx)`` of each convolution of ``model`` (stride 1, square)."""
    if model == "simple":
        return [(1, 30, 28, 5, 0, False)]
    shapes, c, h = [], 1, 28
    for i, (f, pad) in enumerate(zip((16, 16, 32, 32, 64, 64), DEEP_PADS, strict=True)):
        shapes.append((c, f, h, 3, pad, i > 0))
        c, h = f, h + 2 * pad - 2
        if i % 2 == 1:
            h //= 2
    return shapes


def floor_step(model: str, batch: int, seed: int, with_columns: bool) -> Callable[[int], Any]:
    """The convolutions' share of an im2col step on whole-batch columns, in float32
    with buffers made once: per layer the forward matmul ``W @ colT``, the weight gradient
    ``dout @ colT.T`` and (all but the first layer) the input gradient as one matmul of the
    flipped filters with the columns of ``dout`` padded by ``k-1-pad``; ``with_columns`` adds
    building both column matrices with xpnet's own ``Ops.im2col_t`` (only the windows' in-image
    parts: the zeros of the reused buffers are written once). Everything else of the step
    (ReLU, pooling, bias, affine layers, loss, Adam) is left out."""
    import array_api_compat.numpy as xnp

    from xpnet.ops import Workspace, ops_for

    ops = ops_for(xnp)

    rng = np.random.default_rng(seed)
    layers = []
    for c, f, h, k, pad, needs_dx in conv_shapes(model):
        o = h + 2 * pad - k + 1
        x = rng.standard_normal((c, batch, h, h), dtype=np.float32)  # (C, N, H, W)
        d = rng.standard_normal((f, batch, o, o), dtype=np.float32)  # dout, (F, N, OH, OW)
        work = Workspace()  # the layer's reused buffers, as a Convolution keeps them
        # The columns exactly as xpnet's Convolution builds them: of the input (forward), and
        # of dout padded by k-1-pad (the input gradient's full convolution).
        x_cols = functools.partial(ops.im2col_t, x, k, k, 1, pad, o, o, work)
        d_cols = (functools.partial(ops.im2col_t, d, k, k, 1, k - 1 - pad, h, h, work, tag="d")
                  if needs_dx else None)
        layers.append((rng.standard_normal((f, c * k * k), dtype=np.float32),
                       xnp.reshape(d, (f, -1)),
                       rng.standard_normal((c, f * k * k), dtype=np.float32),
                       x_cols, d_cols, x_cols(), None if d_cols is None else d_cols()))

    def step(i: int) -> Any:
        for w, d2, wflip, x_cols, d_cols, x_built, d_built in layers:
            cols = x_cols() if with_columns else x_built
            _ = w @ cols
            _ = d2 @ cols.T
            if d_cols is not None:
                _ = wflip @ (d_cols() if with_columns else d_built)
        return None
    return step


FLOORS = {
    "matmul-floor": lambda model, x, t, batch, seed: floor_step(model, batch, seed, False),
    "im2col-floor": lambda model, x, t, batch, seed: floor_step(model, batch, seed, True),
}


def probe(model: str, name: str, threads: int, batch: int, seed: int,
          dtype: str = "float32") -> dict[str, float]:
    """Memory of one contender's steps, in this (fresh) process: random data, 3 warm-up
    steps, then the growth of the max RSS over the resident set before them and the
    tracemalloc peak of one step."""
    pin_threads(threads)
    x, t, _ = train_images(True, flatten=False, n_random=batch * 4)
    make = functools.partial(xpnet_step, dtype=dtype) if name == "xpnet-numpy" else CONTENDERS[name]
    step = make(model, x, t, batch, seed)
    base = rss_mib()
    for i in range(3):
        step(i)
    peak = tracemalloc_mib(lambda: step(3))
    for i in range(4, 9):
        step(i)
    return {"tracemalloc_peak_mb": peak, "max_rss_mb": max_rss_mib(),
            "max_rss_growth_mb": max_rss_mib() - base}


def memory(model: str, names: list[str], threads: int, batch: int,
           dtype: str = "float32") -> dict[str, Any]:
    """``probe`` of each contender in a child process of its own (a fresh heap and RSS)."""
    out: dict[str, Any] = {}
    for name in names:
        cmd = [sys.executable, "-m", "benchmarks.convnet", "--probe", model, name,
               "--threads", str(threads), "--batch", str(batch), "--dtype", dtype]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        try:
            out[name] = json.loads(done.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            out[name] = {"error": done.stderr.strip()[-500:]}
    return out


def _label(name: str, n: int, counts: list[int]) -> str:
    """A contender's name at ``n`` threads (``xpnet-numpy@2t`` when several counts run)."""
    return f"{name}@{n}t" if len(counts) > 1 else name


def _makers(model: str, x: np.ndarray, t: np.ndarray,
            args: argparse.Namespace) -> dict[str, Callable[[], Any]]:
    """Every contender of ``model`` at every thread count, each with its thread settings:
    xpnet as a user gets it (``xpnet.set_threads(n)``: its pool of n threads, one BLAS thread
    each), torch with ``n`` intra-op threads, the book's code and ``--baseline`` with ``n`` BLAS
    threads; the book and the floors at the first count only when several run."""
    switch, counts = args.switch, args.threads
    common = (model, x, t, args.batch, args.seed)
    mine = {"dtype": args.dtype} if model != "mlp" else {}
    out: dict[str, Callable[[], Any]] = {}
    if args.gpu:
        return {name: functools.partial(make, *common) for name, make in GPU_CONTENDERS.items()}
    for n in counts:
        out[_label("xpnet-numpy", n, counts)] = switch.wrap(
            functools.partial(xpnet_step, *common, **mine), xpnet=n, blas=1)
        base = args.baseline_pkg
        if base is not None and hasattr(base, "get_threads"):  # a checkout with the pool
            out[_label("xpnet-main", n, counts)] = switch.wrap(functools.partial(
                _baseline_step, n, *common, pkg=base, **mine), blas=1)
        elif base is not None:
            out[_label("xpnet-main", n, counts)] = switch.wrap(
                functools.partial(xpnet_step, *common, pkg=base, **mine), blas=n)
        out[_label("torch-eager", n, counts)] = switch.wrap(
            functools.partial(torch_step, *common), torch=n)
        if model == "mlp" or (len(counts) > 1 and n != counts[0]):
            continue
        out[_label("book-im2col", n, counts)] = switch.wrap(
            functools.partial(book_step, *common), blas=n)
        for name, make in FLOORS.items():
            out[_label(name, n, counts)] = switch.wrap(functools.partial(make, *common),
                                                       xpnet=n, blas=1)
    return out


def _baseline_step(threads: int, *common: Any, pkg: Any, **kwargs: Any) -> Callable[[int], Any]:
    """``--baseline``'s step on its own pool of ``threads`` threads, one BLAS thread each: its
    copy of ``set_threads`` (the switch sets this package's pool only), called when the count
    differs (``--threads 1,2`` has two baseline contenders on the one pool); a loaded torch's
    count, which it also sets, is put back for the torch contenders."""
    def use() -> None:
        if pkg.get_threads() != threads:
            torch = sys.modules.get("torch")
            before = torch.get_num_threads() if torch is not None else None
            pkg.set_threads(threads)
            if torch is not None:
                torch.set_num_threads(before)

    use()
    inner = xpnet_step(*common, pkg=pkg, **kwargs)

    def step(i: int) -> Any:
        use()
        return inner(i)
    return step


def _ratios(med: dict[str, float], times: dict[str, list[float]],
            counts: list[int]) -> dict[str, Any]:
    """xpnet against the others at each count, and each count against the first (scaling)."""
    entry: dict[str, Any] = {"ratios": {}, "ratio_per_block": {}}
    for n in counts:
        mine = _label("xpnet-numpy", n, counts)
        for other in ("book-im2col", "torch-eager", "xpnet-main"):
            theirs = _label(other, n, counts)
            if mine in med and theirs in med:
                key = f"{mine}/{theirs}" if len(counts) > 1 else f"xpnet/{other}"
                entry["ratios"][key] = med[mine] / med[theirs]
                # Block by block (each round ran the contenders back to back): the spread.
                entry["ratio_per_block"][key] = block_ratios(times[mine], times[theirs])
    if len(counts) > 1:
        entry["scaling"] = {}
        for base in ("xpnet-numpy", "torch-eager", "xpnet-main"):
            first = _label(base, counts[0], counts)
            for n in counts[1:]:
                name = _label(base, n, counts)
                if first in med and name in med:
                    entry["scaling"][f"{name}/{first}"] = med[name] / med[first]
    return entry


def measure(model: str, x: np.ndarray, t: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """One model's entry of the report: step times, ratios (overall and per block), the
    scaling over thread counts, the floors' ratios to PyTorch, memory."""
    steps, skipped = prepare(_makers(model, x, t, args), args.warmup, f"{model}/")
    n_steps = args.steps if model != "deep" else max(1, args.steps // 4)
    times = interleave(steps, args.reps, n_steps, start=args.warmup)
    med = {name: statistics.median(v) for name, v in times.items()}
    entry: dict[str, Any] = {
        "steps_per_block": n_steps,
        "step_ms": {name: spread(times[name], 1e3) for name in med},
        "skipped": skipped,
    }
    if "xpnet-cupy" in med and "torch-cuda" in med:
        entry["ratios"] = {"xpnet-cupy/torch-cuda": med["xpnet-cupy"] / med["torch-cuda"]}
    if any(name.startswith("xpnet-numpy") for name in med):
        entry.update(_ratios(med, times, args.threads))
    torch_first = _label("torch-eager", args.threads[0], args.threads)
    if torch_first in med and model != "mlp":
        entry["floor_ratios"] = {f"{name}/{torch_first}": med[name] / med[torch_first]
                                 for name in (_label(f, args.threads[0], args.threads)
                                              for f in FLOORS) if name in med}
    if args.memory and not args.gpu and model != "mlp" and len(args.threads) == 1:
        entry["memory"] = memory(model, [n for n in steps if n in CONTENDERS], args.threads[0],
                                 args.batch, args.dtype)
    return entry


def load_baseline(path: str) -> Any:
    """The ``xpnet`` package of another checkout (``path/xpnet``), imported as
    ``xpnet_baseline`` beside this one (``--baseline``: today's ``main`` in the same run)."""
    import importlib.util
    from pathlib import Path

    root = Path(path) / "xpnet"
    spec = importlib.util.spec_from_file_location(
        "xpnet_baseline", root / "__init__.py", submodule_search_locations=[str(root)])
    if spec is None or spec.loader is None or not root.is_dir():
        msg = f"--baseline: no xpnet package under {path}"
        raise SystemExit(msg)
    module = importlib.util.module_from_spec(spec)
    sys.modules["xpnet_baseline"] = module
    spec.loader.exec_module(module)
    return module


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every model of ``args.models``, its contenders interleaved; the report."""
    threads = pin_threads(args.threads[0])
    import xpnet  # noqa: F401  (after pinning; loaded now, its version goes into the record)

    args.switch = ThreadSwitch()
    args.baseline_pkg = load_baseline(args.baseline) if args.baseline else None
    x, t, source = train_images(args.quick, flatten=False)
    report: dict[str, Any] = {
        "config": {"batch": args.batch, "optimizer": "adam", "lr": LR, "data": source,
                   "dtypes": {"xpnet-numpy": args.dtype, "xpnet-main": args.dtype,
                              "book-im2col": "float64 (float32 x)",
                              "torch-eager": "float32"},
                   "steps_per_block": args.steps, "reps": args.reps, "warmup": args.warmup,
                   "gpu": args.gpu, "threads": args.threads, "baseline": args.baseline},
        "machine": machine(), "threads": threads, "models": {},
    }
    for model in args.models:
        report["models"][model] = measure(model, x, t, args)
    report["load_average_at_end"] = list(os.getloadavg())
    return report


def _scaling_rows(report: dict[str, Any]) -> list[list[Any]]:
    """One row per model: xpnet and torch at each count, xpnet/torch at each, xpnet's last
    count over its first."""
    counts = report["config"]["threads"]
    rows = []
    for model, entry in report["models"].items():
        ms = {k: v["median"] for k, v in entry["step_ms"].items()}
        row: list[Any] = [model]
        row += [ms.get(_label(b, n, counts)) for b in ("xpnet-numpy", "torch-eager")
                for n in counts]
        for n in counts:
            mine, theirs = (ms.get(_label(b, n, counts)) for b in ("xpnet-numpy", "torch-eager"))
            row.append(mine / theirs if mine and theirs else None)
        first, last = (ms.get(_label("xpnet-numpy", n, counts)) for n in (counts[0], counts[-1]))
        row.append(last / first if first and last else None)
        rows.append(row)
    return rows


def print_scaling(report: dict[str, Any]) -> None:
    """The scaling table (several thread counts): step ms and ratios per model."""
    counts = report["config"]["threads"]
    columns = [Column("model", 7, align="<")]
    columns += [Column(f"{b} {n}t ms", 12, ".2f") for b in ("xpnet", "torch") for n in counts]
    columns += [Column(f"x/t {n}t", 8, ".2f", unit="x") for n in counts]
    columns += [Column(f"x {counts[-1]}t/{counts[0]}t", 9, ".2f", unit="x")]
    print("\nscaling (medians)")
    print_table(columns, _scaling_rows(report))


def print_report(report: dict[str, Any]) -> None:
    """One table per model, its ratios and the floors' ratios, the scaling, the load."""
    cfg = report["config"]
    counts = cfg.get("threads", [report["threads"]["requested"]])
    print(f"\nconv nets: Adam {cfg['lr']}, batch {cfg['batch']}, {cfg['data']} data, threads "
          f"{','.join(map(str, counts))} ({report['machine']['cpu']})")
    for model, entry in report["models"].items():
        print(f"\n{NAMES[model]} ({entry['steps_per_block']} steps per block)")
        rows = []
        for name, s in entry["step_ms"].items():
            mem = entry.get("memory", {}).get(name, {})
            rows.append([name, cfg["dtypes"].get(name.split("@")[0], "float32").split()[0],
                         s["median"], s["min"], s["max"], mem.get("tracemalloc_peak_mb"),
                         mem.get("max_rss_growth_mb")])
        print_table([Column("contender", 19, align="<"), Column("dtype", 8, align="<"),
                     Column("step ms", 9, ".2f"), Column("min", 8, ".2f"),
                     Column("max", 8, ".2f"), Column("tracemalloc MB", 15, ".1f"),
                     Column("RSS growth MB", 14, ".1f")], rows)
        for key, value in entry.get("ratios", {}).items():
            spread = entry.get("ratio_per_block", {}).get(key)
            extra = f" (per block {spread['min']:.2f} to {spread['max']:.2f})" if spread else ""
            print(f"  {key}: {value:.2f}x{extra}")
        for key, value in {**entry.get("scaling", {}), **entry.get("floor_ratios", {})}.items():
            print(f"  {key}: {value:.2f}x")
    if len(counts) > 1 and not cfg.get("gpu"):
        print_scaling(report)
    if "load_average_at_end" in report:
        start, end = report["machine"]["load_average_at_start"], report["load_average_at_end"]
        print(f"\nload average (1 min) at start {start[0]:.2f}, at end {end[0]:.2f}")


def _thread_counts(text: str) -> list[int]:
    """``--threads 1,2``: the counts, each an integer >= 1, in the order given."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        msg = f"must be thread counts >= 1 separated by commas, e.g. 1,2; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return list(dict.fromkeys(counts))


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.convnet`` (``--probe`` is the memory probe's child process)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.convnet",
                                description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=_thread_counts, default=[1], metavar="N[,N...]",
                   help="thread counts, every one in the same interleaved run (default 1)")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="xpnet's dtype (and --baseline's) in the conv nets (default float32; "
                        "float64 is the book's, what `xpnet book` runs)")
    p.add_argument("--steps", type=int, default=20, help="steps per timed block (deep: 1/4)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default="simple,deep",
                   help="comma-separated: simple, deep, mlp (default simple,deep)")
    p.add_argument("--baseline", default=None, metavar="CHECKOUT",
                   help="also time the xpnet package of another checkout (e.g. a worktree of "
                        "main) as xpnet-main, with N BLAS threads")
    p.add_argument("--no-memory", dest="memory", action="store_false")
    p.add_argument("--quick", action="store_true", help="random data, few steps")
    p.add_argument("--gpu", action="store_true",
                   help="xpnet on CuPy against PyTorch on CUDA (no memory probe); a contender "
                        "without its device is skipped with the reason")
    p.add_argument("--json", default=None, metavar="PATH")
    p.add_argument("--probe", nargs=2, metavar=("MODEL", "CONTENDER"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(*args.probe, args.threads[0], args.batch, args.seed, args.dtype)))
        return 0
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in args.models if m not in MODELS]
    if bad:
        p.error(f"--models: unknown {bad}; choose from {', '.join(MODELS)}")
    if args.quick:
        args.steps, args.reps, args.warmup = 4, 2, 1
    report = run(args)
    print_report(report)
    if args.json:
        print(f"wrote {write_json(args.json, report)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
