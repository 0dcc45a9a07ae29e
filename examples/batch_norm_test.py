"""Section 6.3.2: a deep network (5 hidden layers of 100) trained on 1000 MNIST images with and
without batch normalization, for several initial weight scales. Each panel shows the training
accuracy per epoch: with batch norm, learning starts fast at almost every scale.

    python examples/batch_norm_test.py [--epochs 20] [--scales 16]

Without batch norm the largest scales overflow (the loss becomes inf or NaN, accuracy stays at
chance): that divergence is part of the figure, so NumPy's overflow warnings are silenced.
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from xpnet import MultiLayerNetExtend
from xpnet.backend import asarray
from xpnet.datasets import load_mnist
from xpnet.optim import SGD

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--scales", type=int, default=16,
                    help="how many weight scales, log-spaced from 1 to 1e-4 (the book: 16)")
parser.add_argument("--train-size", type=int, default=1000)
parser.add_argument("--backend", default="numpy")
parser.add_argument("--out", default="batch_norm_test.png")


BATCH_SIZE, LEARNING_RATE = 100, 0.01


def train(x_train, t_train, weight_init_std, use_batchnorm, epochs, backend):
    """Training accuracy per epoch (the book's loop: measured before that epoch's steps)."""
    network = MultiLayerNetExtend(input_size=784, hidden_size_list=[100, 100, 100, 100, 100],
                                  output_size=10, weight_init_std=weight_init_std,
                                  use_batchnorm=use_batchnorm, xp=backend, seed=0)
    xp = network.xp
    x = asarray(x_train, xp, device=network.device)
    t = asarray(t_train, xp, device=network.device)
    optimizer = SGD(lr=LEARNING_RATE)
    rng = np.random.default_rng(0)
    train_size = x_train.shape[0]
    iter_per_epoch = max(train_size // BATCH_SIZE, 1)
    acc_list = []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i in range(epochs * iter_per_epoch):
            idx = asarray(rng.choice(train_size, BATCH_SIZE), xp, device=network.device)
            grads = network.gradient(xp.take(x, idx, axis=0), xp.take(t, idx, axis=0))
            optimizer.update(network.params, grads)
            if i % iter_per_epoch == 0:
                acc_list.append(network.accuracy(x, t))
    return acc_list


def draw(scales, curves):
    """The figure: one panel per weight scale, ``curves[k] = (with_bn, without_bn)``. The
    legend sits above the panels, where it covers no curve (inside a panel it would: the
    curves fill every corner at some scale)."""
    cols = min(len(scales), 4)
    rows = -(-len(scales) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.2 * rows + 0.3),
                             squeeze=False, layout="constrained")
    for k, (w, (with_bn, without_bn)) in enumerate(zip(scales, curves, strict=True)):
        ax = axes[k // cols][k % cols]
        ax.plot(with_bn, label="Batch Normalization")
        ax.plot(without_bn, linestyle="--", label="Normal (without BatchNorm)")
        ax.set_title(f"W: {w:.2e}", fontsize=9)
        ax.set_ylim(0, 1.0)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    for ax in axes.flat[len(scales):]:
        ax.axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=2, fontsize=8, frameon=False)
    fig.supxlabel("epochs")
    fig.supylabel("training accuracy")
    return fig


def main():
    args = parser.parse_args()
    (x_train, t_train), _ = load_mnist(normalize=True)
    x_train, t_train = x_train[:args.train_size], t_train[:args.train_size]
    scales = np.logspace(0, -4, num=args.scales)
    curves, faster = [], 0
    for w in scales:
        with_bn = train(x_train, t_train, float(w), True, args.epochs, args.backend)
        without_bn = train(x_train, t_train, float(w), False, args.epochs, args.backend)
        curves.append((with_bn, without_bn))
        faster += with_bn[-1] > without_bn[-1]
        print(f"w={w:.2e}: final train acc with batch norm {with_bn[-1]:.3f}, "
              f"without {without_bn[-1]:.3f}")
    draw(scales, curves).savefig(args.out, dpi=70)
    print(f"batch norm ahead at {faster} of {len(scales)} weight scales")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
