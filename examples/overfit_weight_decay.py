"""Section 6.4.2: a 7-layer network trained on only 300 MNIST images overfits (training accuracy
near 1, test accuracy far below); weight decay (lambda 0.1) narrows the gap. The same network,
from the same initial weights and mini-batches, is trained without and with weight decay; the
figure shows both side by side (the book's figures 6-20 and 6-21).

    python examples/overfit_weight_decay.py [--epochs 201] [--weight-decay 0.1]
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from xpnet import MultiLayerNet, Trainer
from xpnet.datasets import load_mnist

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--epochs", type=int, default=201)
parser.add_argument("--weight-decay", type=float, default=0.1,
                    help="lambda of the second run (the first has none); 0: one run only")
parser.add_argument("--eval-samples", type=int, default=None,
                    help="measure the per-epoch test accuracy on the first this many test "
                         "images (default: all 10000, as the book)")
parser.add_argument("--backend", default="numpy")
parser.add_argument("--out", default="overfit_weight_decay.png")
args = parser.parse_args()

(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True)
x_train, t_train = x_train[:300], t_train[:300]  # a small training set: easy to overfit

lambdas = [0.0, args.weight_decay] if args.weight_decay else [0.0]
fig, axes = plt.subplots(1, len(lambdas), figsize=(5 * len(lambdas), 4), squeeze=False)
for ax, lam in zip(axes[0], lambdas, strict=True):
    network = MultiLayerNet(input_size=784, hidden_size_list=[100, 100, 100, 100, 100, 100],
                            output_size=10, weight_decay_lambda=lam, xp=args.backend, seed=0)
    trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=args.epochs,
                      mini_batch_size=100, optimizer="SGD", optimizer_param={"lr": 0.01},
                      evaluate_sample_num_per_epoch=args.eval_samples, verbose=False)
    trainer.train()
    train_acc, test_acc = trainer.train_acc_list, trainer.test_acc_list
    # The whole training set (300) is measured every epoch; the test accuracy at the end is
    # the Trainer's final one, on all 10000 test images.
    gap = train_acc[-1] - trainer.final_test_acc
    print(f"weight decay {lam}: final train acc {train_acc[-1]:.4f}, "
          f"test acc {trainer.final_test_acc:.4f}, gap {gap:.4f}")
    ax.plot(train_acc, marker="o", markevery=max(len(train_acc) // 20, 1), label="train")
    ax.plot(test_acc, marker="s", markevery=max(len(test_acc) // 20, 1), label="test")
    ax.set_xlabel("epochs")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.0)
    ax.legend(loc="lower right")
    ax.set_title(f"weight decay lambda={lam}: gap {gap:.2f}")
fig.suptitle("7-layer network, 300 MNIST training images")
fig.tight_layout()
fig.savefig(args.out, dpi=80)
print(f"wrote {args.out}")
