"""Section 7.5: train the book's SimpleConvNet on MNIST with its settings (Adam, lr 0.001, batch
100, 20 epochs, per-epoch accuracy on 1000 images), through the book's Trainer; writes the
accuracy figure and the trained parameters (.npz, read back by SimpleConvNet.load_params).

    python examples/train_convnet.py                         # the book's full run
    python examples/train_convnet.py --epochs 1 --train-size 5000   # a quick look
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from xpnet import SimpleConvNet, Trainer
from xpnet.datasets import load_mnist

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--train-size", type=int, default=None,
                    help="train on the first this many images (default: all 60000)")
parser.add_argument("--test-size", type=int, default=None,
                    help="test on the first this many images (default: all 10000)")
parser.add_argument("--backend", default="numpy")
parser.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                    help="float32 (default) is about twice as fast as the book's float64")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", default="train_convnet.png", help="the accuracy figure")
parser.add_argument("--params", default="convnet_params.npz", help="where to save the weights")
args = parser.parse_args()

(x_train, t_train), (x_test, t_test) = load_mnist(flatten=False)
x_train, t_train = x_train[:args.train_size], t_train[:args.train_size]
x_test, t_test = x_test[:args.test_size], t_test[:args.test_size]

network = SimpleConvNet(input_dim=(1, 28, 28),
                        conv_param={"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1},
                        hidden_size=100, output_size=10, weight_init_std=0.01,
                        xp=args.backend, dtype=args.dtype, seed=args.seed)
trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=args.epochs,
                  mini_batch_size=100, optimizer="Adam", optimizer_param={"lr": 0.001},
                  evaluate_sample_num_per_epoch=1000, seed=args.seed)
history = trainer.train()

network.save_params(args.params)
print(f"saved the parameters to {args.params}")
print(f"training took {history.train_time:.1f} s")

epochs = range(len(trainer.train_acc_list))
plt.plot(epochs, trainer.train_acc_list, marker="o", label="train", markevery=2)
plt.plot(epochs, trainer.test_acc_list, marker="s", label="test", markevery=2)
plt.xlabel("epochs")
plt.ylabel("accuracy (1000 images)")
plt.ylim(0, 1.0)
plt.legend(loc="lower right")
plt.title(f"SimpleConvNet, Adam 0.001: final test acc {trainer.final_test_acc:.4f}")
plt.savefig(args.out, dpi=80)
print(f"wrote {args.out}")
