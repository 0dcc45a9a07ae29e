"""Section 7.6.1: the 30 filters (5x5) of SimpleConvNet's first layer before and after training
(the book's figure 7-24): random noise at first, then edge and blob detectors.

    python examples/visualize_filter.py --params convnet_params.npz   # from train_convnet.py
    python examples/visualize_filter.py --params ch07/params.pkl      # the book's own weights
    python examples/visualize_filter.py --epochs 1                    # train briefly here
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from xpnet import SimpleConvNet, Trainer, to_numpy

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--params", default=None,
                    help="trained weights: an .npz of train_convnet.py or the book's params.pkl")
parser.add_argument("--epochs", type=int, default=1,
                    help="without --params: train this many epochs first")
parser.add_argument("--train-size", type=int, default=None,
                    help="without --params: train on the first this many images")
parser.add_argument("--out", default="filters.png")
args = parser.parse_args()

network = SimpleConvNet(seed=0)  # the book's initial weights: std 0.01
before = to_numpy(network.params["W1"]).copy()
if args.params:
    network.load_params(args.params)  # the book's pickle is read without running its code
    source = Path(args.params).name
else:
    from xpnet.datasets import load_mnist

    (x_train, t_train), (x_test, t_test) = load_mnist(flatten=False)
    x_train, t_train = x_train[:args.train_size], t_train[:args.train_size]
    trainer = Trainer(network, x_train, t_train, x_test[:1000], t_test[:1000],
                      epochs=args.epochs, optimizer="Adam", optimizer_param={"lr": 0.001},
                      verbose=False)
    trainer.train()
    source = f"{args.epochs} epoch(s) here, test acc {trainer.final_test_acc:.3f}"
after = to_numpy(network.params["W1"])
change = float(np.linalg.norm(after - before) / np.linalg.norm(before))
print(f"first-layer filters: {after.shape[0]}, relative change from the initial weights "
      f"{change:.1f}")


def show(subfig, filters, title, cols=6):
    """One grey image per filter (channel 0), dark where the weight is large (the book's
    gray_r), each filter scaled to its own range."""
    rows = -(-filters.shape[0] // cols)
    axes = subfig.subplots(rows, cols)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < filters.shape[0]:
            ax.imshow(filters[k, 0], cmap="gray_r", interpolation="nearest")
    subfig.suptitle(title, fontsize=10)


fig = plt.figure(figsize=(8, 4))
left, right = fig.subfigures(1, 2, wspace=0.05)
show(left, before, "before training (random, std 0.01)")
show(right, after, f"after training ({source})")
fig.savefig(args.out, dpi=80)
print(f"wrote {args.out}")
