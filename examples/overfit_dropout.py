"""Section 6.4.3: the overfitting 7-layer network of section 6.4.2 (300 MNIST training images)
with dropout (ratio 0.2) after every hidden layer, trained by the book's Trainer. The same
network, from the same initial weights and mini-batches, is trained without and with dropout;
the figure shows both side by side (the book's figure 6-23).

    python examples/overfit_dropout.py [--epochs 301] [--dropout 0.2]
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from xpnet import MultiLayerNetExtend, Trainer
from xpnet.datasets import load_mnist

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--epochs", type=int, default=301)
parser.add_argument("--dropout", type=float, default=0.2,
                    help="dropout ratio of the second run (the first has none); 0: one run only")
parser.add_argument("--eval-samples", type=int, default=None,
                    help="measure the per-epoch test accuracy on the first this many test "
                         "images (default: all 10000, as the book)")
parser.add_argument("--backend", default="numpy")
parser.add_argument("--out", default="overfit_dropout.png")
args = parser.parse_args()

(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True)
x_train, t_train = x_train[:300], t_train[:300]  # a small training set: easy to overfit

ratios = [0.0, args.dropout] if args.dropout else [0.0]
fig, axes = plt.subplots(1, len(ratios), figsize=(5 * len(ratios), 4), squeeze=False)
for ax, ratio in zip(axes[0], ratios, strict=True):
    network = MultiLayerNetExtend(input_size=784,
                                  hidden_size_list=[100, 100, 100, 100, 100, 100],
                                  output_size=10, use_dropout=ratio > 0, dropout_ration=ratio,
                                  xp=args.backend, seed=0)
    trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=args.epochs,
                      mini_batch_size=100, optimizer="sgd", optimizer_param={"lr": 0.01},
                      evaluate_sample_num_per_epoch=args.eval_samples, verbose=False)
    trainer.train()
    train_acc, test_acc = trainer.train_acc_list, trainer.test_acc_list
    # The whole training set (300) is measured every epoch; the test accuracy at the end is
    # the Trainer's final one, on all 10000 test images.
    gap = train_acc[-1] - trainer.final_test_acc
    print(f"dropout {ratio}: final train acc {train_acc[-1]:.4f}, "
          f"test acc {trainer.final_test_acc:.4f}, gap {gap:.4f}")
    ax.plot(train_acc, marker="o", markevery=max(len(train_acc) // 20, 1), label="train")
    ax.plot(test_acc, marker="s", markevery=max(len(test_acc) // 20, 1), label="test")
    ax.set_xlabel("epochs")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.0)
    ax.legend(loc="lower right")
    ax.set_title(f"dropout ratio {ratio}: gap {gap:.2f}")
fig.suptitle("7-layer network, 300 MNIST training images")
fig.tight_layout()
fig.savefig(args.out, dpi=80)
print(f"wrote {args.out}")
