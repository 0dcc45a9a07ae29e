"""The figures: ``accuracy.png`` (xpnet.plot) and the batch-norm example's panels."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the figures need matplotlib (the plot extra)")

from xpnet import TwoLayerNet
from xpnet.plot import history_figure
from xpnet.training import train

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("epochs", [3, 17])
def test_accuracy_figure_ticks_whole_epochs(tmp_path, epochs):
    """accuracy.png's epoch axis has ticks at whole epochs only (not 2.5, 7.5 ...)."""
    rng = np.random.default_rng(0)
    x, t = rng.random((40, 6)), rng.integers(0, 3, 40)
    history = train(TwoLayerNet(6, 4, 3, seed=0), x, t, x[:10], t[:10], iters=epochs * 4,
                    batch_size=10, lr=0.1)
    fig = history_figure(history)
    fig.canvas.draw()
    acc = fig.axes[0]
    lo, hi = acc.get_xlim()
    ticks = [v for v in acc.get_xticks() if lo <= v <= hi]
    assert len(ticks) >= 3
    assert all(float(v).is_integer() for v in ticks), ticks


def _load_example(name):
    spec = importlib.util.spec_from_file_location(f"_example_{name.removesuffix('.py')}",
                                                  EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the examples train only under __main__
    return module


def _overlap(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_batch_norm_figure_legend_covers_no_curve(monkeypatch):
    """The legend of examples/batch_norm_test.py's figure lies outside every panel: inside one
    it covered a curve (the first panel's, lower right, where batch norm's curve ends)."""
    monkeypatch.setattr(sys, "argv", ["batch_norm_test.py"])
    example = _load_example("batch_norm_test.py")
    scales = np.logspace(0, -4, num=16)
    epochs = np.arange(20)
    rising, flat = 1 - 0.9 * np.exp(-epochs / 3), np.full(20, 0.1)
    fig = example.draw(scales, [(rising, flat)] * len(scales))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    assert len(legends) == 1
    box = legends[0].get_window_extent(renderer)
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == 16
    for ax in panels:
        assert not _overlap(box, ax.get_window_extent(renderer)), ax.get_title()
        ticks = [v for v in ax.get_xticks() if ax.get_xlim()[0] <= v <= ax.get_xlim()[1]]
        assert all(float(v).is_integer() for v in ticks)
