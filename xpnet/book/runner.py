"""Run one of the book's scripts, unedited, on xpnet: the import hook and the runner.

:func:`run_script` runs ``SCRIPT`` as ``__main__`` with its folder as the working directory and
the first entry of ``sys.path`` (the script's own ``sys.path.append(os.pardir)`` then finds the
clone's root, as with plain ``python``), inside :func:`xpnet.defaults` (``--backend``,
``--device``, ``--dtype``), with :class:`BookFinder` first on ``sys.meta_path``:

- the modules of :data:`xpnet.book.modules.MODULES` (``common``, ``common.*``, ``dataset``,
  ``dataset.mnist``, ``layer_naive``, ``two_layer_net``, ``simple_convnet``, ``deep_convnet``)
  are xpnet's stand-ins;
- any other ``common.*``/``dataset.*`` module, and any module the clone itself holds (a
  chapter's ``awesome_net.py`` ...), is refused with a :class:`BookImportError`: the book's own
  code never runs.

Figures: where there is no display, matplotlib draws with ``Agg`` and ``plt.show()`` saves
every open figure to the output folder (``<stem>-1.png``, ...) and prints where. The output
folder (``--out``, default ``./book-out/<chapter>/<script stem>`` under the directory the
command was started from) also gets what the script saves with ``save_params``: nothing is
written into the clone. Everything is put back afterwards (``sys.modules``, ``sys.path``,
``sys.argv``, the working directory, ``plt.show``), so a process can run several scripts.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import runpy
import sys
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._defaults import defaults
from . import nets
from .modules import MODULES, BookImportError, DataSettings, make_module

__all__ = ["BookFinder", "BookRunError", "RunSettings", "find_clone", "run_script"]


class BookRunError(Exception):
    """A script that cannot run: one line saying why and what to do, with the exit code
    (2: the command line names no script of a book clone; 1: the script needs something
    xpnet does not provide)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class RunSettings:
    """What :func:`run_script` runs a script with (the ``xpnet book`` options)."""

    backend: str = "numpy"
    device: Any = None
    dtype: str | None = None
    max_train: int | None = None
    data_dir: str | None = None
    out: Path | None = None
    seed: int | None = None
    args: Sequence[str] = field(default_factory=tuple)


def find_clone(script: Path) -> Path:
    """The root of the book's clone holding ``script``: the nearest folder above it with
    ``common/`` and ``dataset/`` folders; a :class:`BookRunError` (code 2) otherwise."""
    if not script.is_file():
        what = "is a folder, not a script" if script.exists() else "no such file"
        msg = f"{what}: {script}"
        raise BookRunError(msg, 2)
    for folder in script.resolve().parents:
        if (folder / "common").is_dir() and (folder / "dataset").is_dir():
            return folder
    msg = (f"{script} is not inside a clone of the book's repository (no folder above it holds "
           "common/ and dataset/): git clone https://github.com/oreilly-japan/"
           "deep-learning-from-scratch and pass one of its scripts, e.g. ch05/train_neuralnet.py")
    raise BookRunError(msg, 2)


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return make_module(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: :func:`make_module` filled the module."""


class BookFinder(importlib.abc.MetaPathFinder):
    """The import hook of a run: xpnet's stand-ins for the book's modules; a refusal for any
    other module of the book (``common.*``, ``dataset.*``, a file of the clone)."""

    def __init__(self, clone: Path, script_dir: Path) -> None:
        self.clone = clone
        self.script_dir = script_dir
        self.loader = _Loader()

    def find_spec(self, fullname: str, path: Any = None,
                  target: Any = None) -> importlib.machinery.ModuleSpec | None:
        """The stand-in's spec, ``None`` for modules outside the book, else a refusal."""
        if fullname in MODULES:
            return importlib.util.spec_from_loader(fullname, self.loader,
                                                   is_package=MODULES[fullname][0])
        top = fullname.partition(".")[0]
        if top in ("common", "dataset"):
            mine = ", ".join(k for k in MODULES if k.startswith(top + "."))
            msg = (f"{fullname} is a module of the book's code that xpnet does not provide "
                   f"(xpnet provides {mine}); xpnet book runs xpnet's code, never the book's")
            raise BookImportError(msg, name=fullname)
        for folder in (self.script_dir, self.clone):
            if (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file():
                where = (folder / f"{top}.py").relative_to(self.clone)
                msg = (f"the script imports {top} ({where} in the book's clone), which xpnet "
                       "does not provide; xpnet book runs xpnet's code, never the book's "
                       f"(it provides {', '.join(k for k in MODULES if '.' not in k)})")
                raise BookImportError(msg, name=fullname)
        return None


def _has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def default_out(script: Path, clone: Path) -> Path:
    """``./book-out/<chapter>/<stem>``: the default output folder of a run."""
    rel = script.resolve().relative_to(clone)
    return Path.cwd() / "book-out" / rel.parent / rel.stem


@contextlib.contextmanager
def _figures(out: Path, stem: str) -> Iterator[None]:
    """Without a display: Agg, and ``plt.show()`` saving each open figure to ``out``."""
    if _has_display() and os.environ.get("MPLBACKEND", "").lower() != "agg":
        yield
        return
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # a script that draws says so when it imports matplotlib
        yield
        return
    shown = [0]
    original = plt.show

    def show(*args: Any, **kwargs: Any) -> None:
        for number in plt.get_fignums():
            shown[0] += 1
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{stem}-{shown[0]}.png"
            plt.figure(number).savefig(path)
            print(f"xpnet book: figure saved to {path}", flush=True)
        plt.close("all")

    plt.show = show
    try:
        yield
    finally:
        plt.show = original
        plt.close("all")


@contextlib.contextmanager
def _process_state(script: Path, finder: BookFinder, argv: list[str]) -> Iterator[None]:
    """The script's folder as working directory and ``sys.path[0]``, its ``sys.argv``, the
    import hook; all put back on leaving, the modules the run imported from the book's
    names forgotten."""
    saved_cwd, saved_path, saved_argv = os.getcwd(), list(sys.path), list(sys.argv)
    names = set(MODULES) | {"common", "dataset"}
    hidden = {k: sys.modules.pop(k) for k in list(sys.modules) if k.partition(".")[0] in names}
    os.chdir(script.parent)
    sys.path.insert(0, str(script.parent))
    sys.argv = argv
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for key in [k for k in sys.modules if k.partition(".")[0] in names]:
            del sys.modules[key]
        sys.modules.update(hidden)
        sys.argv = saved_argv
        sys.path[:] = saved_path
        os.chdir(saved_cwd)


def _refusal(exc: ModuleNotFoundError) -> BookRunError:
    name = (exc.name or "").partition(".")[0]
    msg = (f"the script needs the package {name!r}, which xpnet does not install: "
           f"pip install {name} (or pip install \"xpnet[plot]\" for matplotlib)")
    return BookRunError(msg, 1)


def run_script(script: str | os.PathLike[str], settings: RunSettings | None = None) -> None:
    """Run the book's ``script`` (see the module text) with ``settings``.

    Raises :class:`BookRunError` for a script outside a clone, a module or name of the book
    xpnet does not provide, a package that is not installed; anything the script raises
    propagates as it is (``SystemExit`` included).
    """
    settings = settings or RunSettings()
    path = Path(script).absolute()
    clone = find_clone(path)
    out = (settings.out or default_out(path, clone)).absolute()
    finder = BookFinder(clone, path.parent)
    DataSettings.root, DataSettings.max_train = settings.data_dir, settings.max_train
    DataSettings.said = False
    nets.set_output_folder(out)
    if settings.seed is not None:
        np.random.seed(settings.seed)  # noqa: NPY002 (the generator the book's scripts use)
    with defaults(settings.backend, settings.device, settings.dtype), \
            _figures(out, path.stem), \
            _process_state(path, finder, [str(path), *settings.args]):
        try:
            runpy.run_path(str(path), run_name="__main__")
        except BookImportError as exc:
            raise BookRunError(str(exc), 1) from None
        except ModuleNotFoundError as exc:
            top = (exc.name or "").partition(".")[0]
            if top and importlib.util.find_spec(top) is None:
                raise _refusal(exc) from None
            raise
