"""Section 6.2.4: the same 784-100-100-100-100-10 ReLU network on MNIST from three initial weight
scales: std 0.01, Xavier (sqrt(1/n)) and He (sqrt(2/n)). The figure shows the smoothed loss.

    python examples/weight_init_compare.py [--iters 2000] [--backend numpy]
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from xpnet import MultiLayerNet, to_numpy
from xpnet.backend import asarray
from xpnet.datasets import load_mnist
from xpnet.optim import SGD
from xpnet.util import smooth_curve

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--iters", type=int, default=2000)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--backend", default="numpy")
parser.add_argument("--out", default="weight_init_compare.png")
args = parser.parse_args()
if args.iters < 11:
    parser.error("--iters must be at least 11 (the smoothing window of the loss curves)")

(x_train, t_train), _ = load_mnist(normalize=True)

weight_init_types = {"std=0.01": 0.01, "Xavier": "sigmoid", "He": "relu"}
networks = {key: MultiLayerNet(input_size=784, hidden_size_list=[100, 100, 100, 100],
                               output_size=10, weight_init_std=std, xp=args.backend,
                               dtype="float32", seed=0)
            for key, std in weight_init_types.items()}
optimizer = SGD(lr=0.01)  # SGD keeps no state: one instance serves every network
net0 = next(iter(networks.values()))
xp = net0.xp
x_dev = asarray(x_train, xp, device=net0.device)
t_dev = asarray(t_train, xp, device=net0.device)
losses = {key: [] for key in networks}

rng = np.random.default_rng(0)
for i in range(args.iters):
    idx = asarray(rng.choice(x_train.shape[0], args.batch_size), xp, device=net0.device)
    x_batch, t_batch = xp.take(x_dev, idx, axis=0), xp.take(t_dev, idx, axis=0)
    for key, network in networks.items():
        optimizer.update(network.params, network.gradient(x_batch, t_batch))
        losses[key].append(network.last_loss)
    if i % 100 == 0 or i + 1 == args.iters:
        print(f"iteration {i:>5}: " + "  ".join(
            f"{key} {float(losses[key][-1]):.4f}" for key in networks))

# One mini-batch's loss is noisy: the summary averages the last stretch of the run.
tail = max(min(100, args.iters // 4), 1)
means = {key: float(np.mean(to_numpy(xp.stack(losses[key][-tail:])))) for key in networks}
print(f"mean loss of the last {tail} iterations: "
      + "  ".join(f"{key} {value:.4f}" for key, value in means.items()))

markers = {"std=0.01": "o", "Xavier": "s", "He": "D"}
for key in networks:
    plt.plot(smooth_curve(to_numpy(xp.stack(losses[key]))), marker=markers[key],
             markevery=max(args.iters // 20, 1), label=key)
plt.xlabel("iterations")
plt.ylabel("loss (smoothed)")
plt.ylim(0, 2.5)
plt.legend()
plt.title("Initial weight scale, 784-100x4-10 ReLU, SGD 0.01")
plt.savefig(args.out, dpi=100)
print(f"wrote {args.out}")
