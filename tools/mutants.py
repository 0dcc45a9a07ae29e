"""Mutation testing: do the tests notice when the code is wrong?

    python tools/mutants.py                       # 40 seeded mutants of each module group
    python tools/mutants.py layers conv -n 80     # some groups, more mutants
    python tools/mutants.py optim --all           # every mutant of a group
    python tools/mutants.py --list layers         # the mutants, without running anything
    python tools/mutants.py --lock /tmp/xpnet-cpu.lock --json .mutants/report.json

Each mutant is one small change to one module (a flipped comparison, a swapped operator, a
changed constant, a deleted statement, ``return None``, ``and``/``or`` swapped, a negated
condition). It is written into a temporary copy of the project, never into the checkout, and the
tests of its module group run there: the mirrored test files first, then every other test file
that imports the module, on every CPU backend (numpy, array_api_strict on both devices, torch),
with ``-x``. A mutant is *killed* when they fail or run past the per-mutant timeout (3x the
unmutated run), and *survives* when they pass. The score of a group is killed / (sampled -
equivalent): an equivalent mutant (one no test can tell apart, listed with the reason in
``tools/mutants_equivalent.toml``) counts neither way.

Why a script and not mutmut or cosmic-ray: a score per module group needs a seeded sample per
group (the full sets are thousands of mutants, hours on two cores), the run must go to the test
files of that group with ``--backend`` (mutmut 3 runs one whole-suite pytest under its own
trampolines; cosmic-ray has no sampling and mutates the checkout in place), and a mutated file
must never be left behind: here the checkout is never written at all.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import dataclasses
import difflib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import tomllib

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT_FILE = Path(__file__).with_name("mutants_equivalent.toml")

#: Module groups: a refactored module counts together with the modules that took its code.
GROUPS: dict[str, tuple[str, ...]] = {
    "functions": ("xpnet/functions.py",),
    "layers": ("xpnet/layers.py",),
    "conv": ("xpnet/conv.py", "xpnet/ops/convolution.py"),
    "optim": ("xpnet/optim.py",),
    "nets/base": ("xpnet/nets/base.py",),
    "checkpoint": ("xpnet/checkpoint.py", "xpnet/runlock.py"),
}
CPU_BACKENDS = "numpy,array_api_strict,array_api_strict-device1,torch"
# What the temporary copy leaves out: version control, environments, caches, build output.
SKIP_COPY = shutil.ignore_patterns(".git", ".venv", ".nox", "__pycache__", "*.pyc", ".mypy_cache",
                                   ".ruff_cache", ".pytest_cache", "_build", ".whl", ".gpu",
                                   ".data", "runs", ".mutants", "*.egg-info")
NO_MUTATE = "pragma: no mutate"


# --------------------------------------------------------------------------- mutants

@dataclasses.dataclass(frozen=True)
class Mutant:
    """One change: ``path`` (relative to the project), the source segment it replaces
    (1-based lines, 0-based columns as :mod:`ast` gives them) and the replacement text."""

    path: str
    kind: str
    line: int
    col: int
    end_line: int
    end_col: int
    replacement: str

    def apply(self, source: str) -> str:
        """``source`` with this mutant's segment replaced."""
        lines = source.splitlines(keepends=True)
        starts = [0]
        for text in lines:
            starts.append(starts[-1] + len(text))
        a = starts[self.line - 1] + _char_offset(lines[self.line - 1], self.col)
        b = starts[self.end_line - 1] + _char_offset(lines[self.end_line - 1], self.end_col)
        return source[:a] + self.replacement + source[b:]

    def diff(self, source: str) -> str:
        """The unified diff of the mutant against ``source``."""
        return "".join(difflib.unified_diff(
            source.splitlines(keepends=True), self.apply(source).splitlines(keepends=True),
            f"a/{self.path}", f"b/{self.path}", n=1))

    def lines(self, source: str) -> tuple[str, str]:
        """The first changed line before and after, stripped: the key of the equivalents list."""
        before = source.splitlines()[self.line - 1].strip()
        after = self.apply(source).splitlines()[self.line - 1].strip()
        return before, after


def _char_offset(line: str, col: int) -> int:
    """:mod:`ast` columns count UTF-8 bytes; string indices count characters."""
    return len(line.encode()[:col].decode(errors="ignore"))


_COMPARE_SWAPS: dict[type, type] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
    ast.GtE: ast.Gt, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}
_BINOP_SWAPS: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.MatMult: ast.Mult,
}


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes no mutant touches: docstrings, annotations, f-strings, ``__all__``,
    ``TYPE_CHECKING`` blocks, decorators."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            mark(body[0])
        if isinstance(node, (ast.arg, ast.AnnAssign)):
            mark(node.annotation)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            mark(node.returns)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for deco in node.decorator_list:
                mark(deco)
        if isinstance(node, ast.JoinedStr):
            mark(node)
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            mark(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            mark(node)
    return skip


def _expression_mutants(node: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """(kind, replacement node) for one expression node."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            swap = _COMPARE_SWAPS.get(type(op))
            if swap is not None:
                new = copy.deepcopy(node)
                new.ops[i] = swap()
                yield f"compare {type(op).__name__} -> {swap.__name__}", new
    elif isinstance(node, ast.BinOp):
        swap = _BINOP_SWAPS.get(type(node.op))
        if swap is not None:
            new = copy.deepcopy(node)
            new.op = swap()
            yield f"operator {type(node.op).__name__} -> {swap.__name__}", new
    elif isinstance(node, ast.BoolOp):
        new = copy.deepcopy(node)
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield f"boolean {type(node.op).__name__} -> {type(new.op).__name__}", new
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "negation removed", node.operand
    elif isinstance(node, ast.Constant) and not isinstance(node.value, (str, bytes)):
        value = node.value
        if isinstance(value, bool):
            yield f"constant {value} -> {not value}", ast.Constant(not value)
        elif isinstance(value, int):
            yield f"constant {value} -> {value + 1}", ast.Constant(value + 1)
        elif isinstance(value, float):
            new_value = value * 2 if value not in (0.0, 1.0) else value + 1.0
            yield f"constant {value!r} -> {new_value!r}", ast.Constant(new_value)


def _statement_mutants(node: ast.stmt) -> Iterator[tuple[str, str]]:
    """(kind, replacement text) for one statement."""
    if isinstance(node, ast.Return) and node.value is not None and not (
            isinstance(node.value, ast.Constant) and node.value.value is None):
        yield "return None", "return None"
    if isinstance(node, (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Raise,
                         ast.Return, ast.If, ast.For, ast.With, ast.Try, ast.Delete)):
        yield "statement deleted", "pass"
    if isinstance(node, (ast.If, ast.While)):
        yield "condition negated", f"not ({ast.unparse(node.test)})"


def find_mutants(path: str, source: str) -> list[Mutant]:
    """Every mutant of one module's ``source`` (``path`` relative to the project), in source
    order; each one compiles."""
    tree = ast.parse(source)
    skip = _skipped_nodes(tree)
    lines = source.splitlines()
    found: list[Mutant] = []

    def add(node: ast.AST, kind: str, text: str, *, test_only: bool = False) -> None:
        target = node.test if test_only else node  # type: ignore[attr-defined]
        if NO_MUTATE in lines[target.lineno - 1]:
            return
        mutant = Mutant(path, kind, target.lineno, target.col_offset, target.end_lineno,
                        target.end_col_offset, text)
        try:
            compile(mutant.apply(source), path, "exec")
        except SyntaxError:
            return
        found.append(mutant)

    for node in ast.walk(tree):
        if id(node) in skip or not hasattr(node, "lineno"):
            continue
        if isinstance(node, ast.stmt):
            for kind, text in _statement_mutants(node):
                add(node, kind, text, test_only=kind == "condition negated")
        elif isinstance(node, ast.expr) and not isinstance(getattr(node, "ctx", None),
                                                           (ast.Store, ast.Del)):
            for kind, new in _expression_mutants(node):
                add(node, kind, f"({ast.unparse(new)})")
    found.sort(key=lambda m: (m.line, m.col, m.kind, m.replacement))
    return found


# --------------------------------------------------------------------------- tests to run

def _imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_name(path: str) -> str:
    """``xpnet/nets/base.py`` -> ``xpnet.nets.base``."""
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def mirrored_test(path: str) -> str:
    """``xpnet/nets/base.py`` -> ``tests/nets/test_base.py`` (the layout DEVELOPERS.md gives)."""
    parts = Path(path).with_suffix("").parts[1:]
    return str(Path("tests", *parts[:-1], f"test_{parts[-1]}.py"))


def group_tests(paths: Sequence[str], root: Path = ROOT) -> list[str]:
    """The test files of a module group: the mirrored ones first, then every test file that
    imports one of the modules (``import xpnet.layers``, ``from xpnet.layers import ...``,
    ``from xpnet import layers``) or, for a module of a subpackage, the subpackage that
    re-exports it (``from xpnet.nets import TwoLayerNet`` for ``xpnet/nets/base.py``), sorted.
    The top-level ``xpnet`` counts for nothing: every test imports it."""
    wanted = {module_name(p) for p in paths}
    wanted |= {name.rpartition(".")[0] for name in wanted if name.count(".") >= 2}
    first = [m for m in map(mirrored_test, paths) if (root / m).is_file()]
    rest = []
    for file in sorted((root / "tests").rglob("test_*.py")):
        rel = file.relative_to(root).as_posix()
        if rel in first or "fakecupy" in rel:
            continue
        if _imported_modules(ast.parse(file.read_text(encoding="utf-8"))) & wanted:
            rest.append(rel)
    return first + rest


# --------------------------------------------------------------------------- equivalents

def load_equivalents(path: Path = EQUIVALENT_FILE) -> list[dict[str, str]]:
    """The equivalent mutants: ``[[equivalent]]`` tables with ``file``, ``line`` (the source
    line, stripped), ``mutant`` (the mutated line, stripped), ``reason`` and, where the line
    occurs more than once, ``above`` (the line above it, stripped)."""
    if not path.is_file():
        return []
    entries = tomllib.loads(path.read_text(encoding="utf-8")).get("equivalent", [])
    for entry in entries:
        missing = {"file", "line", "mutant", "reason"} - entry.keys()
        if missing or not str(entry.get("reason", "")).strip():
            msg = f"{path}: an [[equivalent]] entry lacks {sorted(missing) or ['reason']}: {entry}"
            raise SystemExit(msg)
    return list(entries)


def equivalent_reason(mutant: Mutant, source: str, equivalents: list[dict[str, str]]) -> str | None:
    """The reason this mutant is listed as equivalent, or ``None``. An entry may also give
    ``above``, the line above the mutated one (stripped), where the line alone is ambiguous."""
    before, after = mutant.lines(source)
    above = source.splitlines()[mutant.line - 2].strip() if mutant.line > 1 else ""
    for entry in equivalents:
        if entry["file"] == mutant.path and entry["line"] == before and \
                entry["mutant"] == after and entry.get("above", above) == above:
            return entry["reason"]
    return None


# --------------------------------------------------------------------------- running

class CpuLock:
    """``flock`` on a shared file around the test runs (``path=None``: no lock), so that a long
    session shares the CPUs with benchmarks: taken before a run, kept for the next runs while
    it has been held less than ``hold`` seconds, then given back (others measure in between)."""

    def __init__(self, path: str | None, hold: float) -> None:
        self.path, self.hold = path, hold
        self._handle: Any = None
        self._since = 0.0

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the lock for one test run (and give it back after it, once held long enough)."""
        if self.path is not None and self._handle is None:
            import fcntl

            self._handle = open(self.path, "a")  # noqa: SIM115  # closed in release()
            fcntl.flock(self._handle, fcntl.LOCK_EX)
            self._since = time.monotonic()
        try:
            yield
        finally:
            if time.monotonic() - self._since >= self.hold:
                self.close()

    def close(self) -> None:
        """Give the lock back now."""
        if self._handle is not None:
            self._handle.close()  # closing drops the flock
            self._handle = None


def run_tests(copy_root: Path, files: Sequence[str], backends: str, timeout: float,
              lock: CpuLock) -> tuple[str, float, str]:
    """Run ``files`` in the copy: ``("passed" | "failed" | "timeout", seconds, output tail)``."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           *(["--backend", backends] if backends else []), *files]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(copy_root)}
    with lock.turn():
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=copy_root, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return "timeout", time.perf_counter() - began, out[-2000:]
        except BaseException:  # Ctrl-C: take the test run down too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    status = "passed" if proc.returncode == 0 else "failed"
    return status, time.perf_counter() - began, out[-2000:]


@contextlib.contextmanager
def mutated(file: Path, text: str) -> Iterator[None]:
    """``file`` holds ``text`` inside the block and its own content again after it, however
    the block ends (an exception, Ctrl-C)."""
    original = file.read_bytes()
    try:
        file.write_text(text, encoding="utf-8")
        yield
    finally:
        file.write_bytes(original)


def check_copy_imports(copy_root: Path) -> None:
    """The tests in the copy must import the copy's xpnet, not the installed checkout."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(copy_root)}
    where = subprocess.run([sys.executable, "-c", "import xpnet; print(xpnet.__file__)"],
                           cwd=copy_root, env=env, capture_output=True, text=True, check=True)
    found = Path(where.stdout.strip()).resolve()
    if copy_root.resolve() not in found.parents:
        msg = f"the copy imports xpnet from {found}, not from {copy_root}; cannot test mutants"
        raise SystemExit(msg)


def select(mutants: list[Mutant], count: int | None, seed: int) -> list[Mutant]:
    """A seeded random sample of ``count`` mutants (all of them for ``None``), in source order."""
    if count is None or count >= len(mutants):
        return list(mutants)
    chosen = random.Random(seed).sample(range(len(mutants)), count)
    return [mutants[i] for i in sorted(chosen)]


def run_group(group: str, paths: Sequence[str], args: argparse.Namespace,
              equivalents: list[dict[str, str]], root: Path = ROOT) -> dict[str, Any]:
    """Sample, run and score one module group; returns its JSON record."""
    sources = {p: (root / p).read_text(encoding="utf-8") for p in paths}
    everything = [m for p in paths for m in find_mutants(p, sources[p])]
    sample = select(everything, None if args.all else args.count, args.seed)
    files = args.tests or group_tests(paths, root)
    print(f"== {group}: {len(sample)} of {len(everything)} mutants; tests: {' '.join(files)}",
          flush=True)
    results = []
    lock = CpuLock(args.lock, args.lock_hold)
    with tempfile.TemporaryDirectory(prefix="xpnet-mutants-") as tmp, contextlib.closing(lock):
        copy_root = Path(tmp) / "project"
        shutil.copytree(root, copy_root, ignore=SKIP_COPY)
        check_copy_imports(copy_root)
        status, base_seconds, out = run_tests(copy_root, files, args.backend, 3600, lock)
        if status != "passed":
            msg = f"{group}: the tests fail without any mutant; fix them first:\n{out}"
            raise SystemExit(msg)
        timeout = max(args.min_timeout, 3 * base_seconds)
        print(f"   unmutated run {base_seconds:.0f} s; timeout per mutant {timeout:.0f} s",
              flush=True)
        for i, mutant in enumerate(sample, 1):
            source = sources[mutant.path]
            record: dict[str, Any] = {**dataclasses.asdict(mutant), "diff": mutant.diff(source)}
            reason = equivalent_reason(mutant, source, equivalents)
            if reason is not None:
                record.update(status="equivalent", reason=reason, seconds=0.0)
            else:
                with mutated(copy_root / mutant.path, mutant.apply(source)):
                    status, seconds, out = run_tests(copy_root, files, args.backend, timeout,
                                                     lock)
                record.update(status="killed" if status == "failed" else (
                    "timeout" if status == "timeout" else "survived"), seconds=round(seconds, 1))
            results.append(record)
            print(f"   [{i}/{len(sample)}] {record['status']:<10} {mutant.path}:{mutant.line} "
                  f"{mutant.kind} ({record['seconds']:.0f} s)", flush=True)
    return {"group": group, "files": list(paths), "tests": files, "mutants": len(everything),
            "sampled": len(sample), "seed": args.seed, "results": results, **score(results)}


def score(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and the score (killed or timed out, over all but the equivalent ones)."""
    counts = {s: sum(r["status"] == s for r in results)
              for s in ("killed", "timeout", "survived", "equivalent")}
    judged = counts["killed"] + counts["timeout"] + counts["survived"]
    value = 100.0 * (counts["killed"] + counts["timeout"]) / judged if judged else 100.0
    return {**counts, "score": round(value, 1)}


def report(groups: list[dict[str, Any]]) -> str:
    """The survivors with their diffs, then one line per group."""
    lines = []
    for g in groups:
        for r in g["results"]:
            if r["status"] == "survived":
                lines += [f"SURVIVED {r['path']}:{r['line']} {r['kind']}", r["diff"]]
    lines.append(f"{'module':<12} {'sampled':>7} {'killed':>6} {'timeout':>7} {'survived':>8} "
                 f"{'equiv':>5} {'score':>6}")
    lines += [f"{g['group']:<12} {g['sampled']:>7} {g['killed']:>6} {g['timeout']:>7} "
              f"{g['survived']:>8} {g['equivalent']:>5} {g['score']:>5.1f}%" for g in groups]
    return "\n".join(lines)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM end the session through KeyboardInterrupt, so every ``finally``
    runs (the test run is killed, the temporary copy removed), even when the shell started
    this in the background with SIGINT ignored. The test runs then start with SIGINT at its
    default, as in a terminal: the tests of Ctrl-C handling need Python's own handler. The
    previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; exit status 1 when a group scores under ``--fail-under``."""
    parser = argparse.ArgumentParser(prog="tools/mutants.py", description=__doc__.split("\n")[0])
    parser.add_argument("groups", nargs="*", help=f"module groups (default: all of "
                        f"{', '.join(GROUPS)}), or paths of modules under xpnet/")
    parser.add_argument("-n", "--count", type=int, default=40, help="mutants per group (40)")
    parser.add_argument("--all", action="store_true", help="every mutant, no sample")
    parser.add_argument("--seed", type=int, default=21, help="the sample's seed (21)")
    parser.add_argument("--backend", default=CPU_BACKENDS,
                        help=f"pytest --backend ({CPU_BACKENDS}; '' for none)")
    parser.add_argument("--equivalents", type=Path, default=EQUIVALENT_FILE,
                        help="the list of equivalent mutants (tools/mutants_equivalent.toml)")
    parser.add_argument("--tests", nargs="+", help="test files instead of the group's own")
    parser.add_argument("--min-timeout", type=float, default=60.0,
                        help="lowest per-mutant timeout in seconds (60; else 3x the unmutated run)")
    parser.add_argument("--lock", help="a file to flock around the test runs (shared CPUs)")
    parser.add_argument("--lock-hold", type=float, default=240.0,
                        help="keep the lock for further runs up to this many seconds, then give "
                             "it back between two runs (240)")
    parser.add_argument("--json", type=Path, help="write the full report there")
    parser.add_argument("--list", action="store_true", help="print the sample and stop")
    parser.add_argument("--fail-under", type=float, default=0.0,
                        help="exit 1 when a group scores below this percentage")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    chosen: dict[str, tuple[str, ...]] = {}
    for name in args.groups or GROUPS:
        if name in GROUPS:
            chosen[name] = GROUPS[name]
        elif (root / name).is_file():
            chosen[name] = (name,)
        else:
            parser.error(f"unknown module group {name!r}; choose from {', '.join(GROUPS)} "
                         "or give a module's path")
    equivalents = load_equivalents(args.equivalents)
    if args.list:
        for group, paths in chosen.items():
            everything = [m for p in paths for m in find_mutants(p, (root / p).read_text())]
            sample = select(everything, None if args.all else args.count, args.seed)
            print(f"== {group}: {len(sample)} of {len(everything)}; tests: "
                  f"{' '.join(group_tests(paths, root))}")
            for m in sample:
                before, after = m.lines((root / m.path).read_text())
                print(f"{m.path}:{m.line} {m.kind}: {before}  ->  {after}")
        return 0
    with _signals():
        groups = [run_group(group, paths, args, equivalents, root)
                  for group, paths in chosen.items()]
    print(report(groups))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"groups": groups}, indent=1) + "\n", encoding="utf-8")
        print(f"report: {args.json}")
    return 1 if any(g["score"] < args.fail_under for g in groups) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: the checkout was never changed, the temporary copy is gone",
              file=sys.stderr)
        sys.exit(130)
