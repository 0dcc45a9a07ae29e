"""Section 6.1.8: SGD, Momentum, AdaGrad and Adam train the same 784-100-100-100-100-10 network on
MNIST; the figure shows each optimizer's smoothed mini-batch loss.

    python examples/optimizer_compare_mnist.py                  # 2000 iterations, NumPy
    python examples/optimizer_compare_mnist.py --backend cupy   # the same on a GPU
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from xpnet import MultiLayerNet, to_numpy
from xpnet.backend import asarray
from xpnet.datasets import load_mnist
from xpnet.optim import SGD, AdaGrad, Adam, Momentum
from xpnet.util import smooth_curve

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--iters", type=int, default=2000)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--backend", default="numpy")
parser.add_argument("--out", default="optimizer_compare.png")
args = parser.parse_args()
if args.iters < 11:
    parser.error("--iters must be at least 11 (the smoothing window of the loss curves)")

(x_train, t_train), _ = load_mnist(normalize=True)

optimizers = {"SGD": SGD(), "Momentum": Momentum(), "AdaGrad": AdaGrad(), "Adam": Adam()}
# The same initial weights (seed 0) for every optimizer: only the update rule differs.
networks = {key: MultiLayerNet(input_size=784, hidden_size_list=[100, 100, 100, 100],
                               output_size=10, xp=args.backend, dtype="float32", seed=0)
            for key in optimizers}
net0 = next(iter(networks.values()))
xp = net0.xp
x_dev = asarray(x_train, xp, device=net0.device)  # the data moves to the device once
t_dev = asarray(t_train, xp, device=net0.device)
losses = {key: [] for key in optimizers}

rng = np.random.default_rng(0)
for i in range(args.iters):
    idx = asarray(rng.choice(x_train.shape[0], args.batch_size), xp, device=net0.device)
    x_batch, t_batch = xp.take(x_dev, idx, axis=0), xp.take(t_dev, idx, axis=0)
    for key, optimizer in optimizers.items():
        grads = networks[key].gradient(x_batch, t_batch)
        optimizer.update(networks[key].params, grads)
        losses[key].append(networks[key].last_loss)  # stays on the device: no sync per step
    if i % 100 == 0 or i + 1 == args.iters:
        print(f"iteration {i:>5}: " + "  ".join(
            f"{key} {float(losses[key][-1]):.4f}" for key in optimizers))

# One mini-batch's loss is noisy: the summary averages the last stretch of the run.
tail = max(min(100, args.iters // 4), 1)
means = {key: float(np.mean(to_numpy(xp.stack(losses[key][-tail:])))) for key in optimizers}
print(f"mean loss of the last {tail} iterations: "
      + "  ".join(f"{key} {value:.4f}" for key, value in means.items()))

markers = {"SGD": "o", "Momentum": "x", "AdaGrad": "s", "Adam": "D"}
for key in optimizers:
    curve = to_numpy(xp.stack(losses[key]))
    plt.plot(smooth_curve(curve), marker=markers[key], markevery=max(args.iters // 20, 1),
             label=key)
plt.xlabel("iterations")
plt.ylabel("loss (smoothed)")
plt.ylim(0, 1)
plt.legend()
plt.title("Optimizers on MNIST, 784-100x4-10")
plt.savefig(args.out, dpi=100)
print(f"wrote {args.out}")
