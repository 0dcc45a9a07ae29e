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
args = parser.parse_args()

(x_train, t_train), _ = load_mnist(normalize=True)
x_train, t_train = x_train[:args.train_size], t_train[:args.train_size]
batch_size, learning_rate = 100, 0.01


def train(weight_init_std, use_batchnorm):
    network = MultiLayerNetExtend(input_size=784, hidden_size_list=[100, 100, 100, 100, 100],
                                  output_size=10, weight_init_std=weight_init_std,
                                  use_batchnorm=use_batchnorm, xp=args.backend, seed=0)
    xp = network.xp
    x = asarray(x_train, xp, device=network.device)
    t = asarray(t_train, xp, device=network.device)
    optimizer = SGD(lr=learning_rate)
    rng = np.random.default_rng(0)
    iter_per_epoch = max(args.train_size // batch_size, 1)
    acc_list = []
    # The book's loop: one accuracy per epoch, measured before that epoch's steps.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i in range(args.epochs * iter_per_epoch):
            idx = asarray(rng.choice(args.train_size, batch_size), xp, device=network.device)
            grads = network.gradient(xp.take(x, idx, axis=0), xp.take(t, idx, axis=0))
            optimizer.update(network.params, grads)
            if i % iter_per_epoch == 0:
                acc_list.append(network.accuracy(x, t))
    return acc_list


scales = np.logspace(0, -4, num=args.scales)
cols = min(len(scales), 4)
rows = -(-len(scales) // cols)
fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.2 * rows), squeeze=False)
faster = 0
for k, w in enumerate(scales):
    with_bn, without_bn = train(float(w), True), train(float(w), False)
    faster += with_bn[-1] > without_bn[-1]
    print(f"w={w:.2e}: final train acc with batch norm {with_bn[-1]:.3f}, "
          f"without {without_bn[-1]:.3f}")
    ax = axes[k // cols][k % cols]
    ax.plot(with_bn, label="Batch Normalization")
    ax.plot(without_bn, linestyle="--", label="Normal (without BatchNorm)")
    ax.set_title(f"W: {w:.2e}", fontsize=9)
    ax.set_ylim(0, 1.0)
for ax in axes.flat[len(scales):]:
    ax.axis("off")
axes[0][0].legend(fontsize=7, loc="lower right")
fig.supxlabel("epochs")
fig.supylabel("training accuracy")
fig.tight_layout()
fig.savefig(args.out, dpi=70)
print(f"batch norm ahead at {faster} of {len(scales)} weight scales")
print(f"wrote {args.out}")
