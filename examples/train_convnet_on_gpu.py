"""Train the book's SimpleConvNet on a CUDA GPU: CuPy arrays end to end, the same code as on the
CPU (section 7.5's settings: Adam 0.001, batch 100).

Needs CuPy and a CUDA device (pip install "xpnet[cuda12]" or "xpnet[cuda13]"); without one it says
so in one line and exits 0, so it can run anywhere.

    python examples/train_convnet_on_gpu.py [--epochs 20]
"""

import argparse
import sys

from xpnet import SimpleConvNet, Trainer, cuda_available
from xpnet.backend import cuda_status

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
args = parser.parse_args()

if not cuda_available():
    print(f"skipped: no usable CUDA device ({cuda_status()[1]})")
    sys.exit(0)

import cupy as cp

from xpnet.datasets import load_mnist

(x_train, t_train), (x_test, t_test) = load_mnist(flatten=False)

# The data moves to the GPU once; the network's parameters are created there.
x_train, t_train = cp.asarray(x_train), cp.asarray(t_train)
x_test, t_test = cp.asarray(x_test), cp.asarray(t_test)
network = SimpleConvNet(xp=cp, dtype=args.dtype, seed=0)
print("W1 lives on", network.params["W1"].device)

trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=args.epochs,
                  mini_batch_size=100, optimizer="Adam", optimizer_param={"lr": 0.001},
                  evaluate_sample_num_per_epoch=1000)
history = trainer.train()
print(f"{history.iterations} iterations in {history.train_time:.1f} s: "
      f"test accuracy {trainer.final_test_acc:.4f}")
