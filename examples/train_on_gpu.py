"""Train on a CUDA GPU: the book's network with CuPy arrays, the same code as on the CPU.

Needs CuPy and a CUDA device (pip install "xpnet[cuda12]" or "xpnet[cuda13]"); without one it says
so and exits 0, so it can run anywhere.
"""

import sys

from xpnet import TwoLayerNet, cuda_available, train
from xpnet.backend import cuda_status
from xpnet.datasets import load_mnist

if not cuda_available():
    print(f"skipped: no usable CUDA device ({cuda_status()[1]})")
    sys.exit(0)

import cupy as cp

(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True)

# Move the data to the GPU once; the network's parameters are created there.
x_train, t_train = cp.asarray(x_train), cp.asarray(t_train)
x_test, t_test = cp.asarray(x_test), cp.asarray(t_test)
network = TwoLayerNet(784, 50, 10, xp=cp, dtype="float32", seed=0)

# One step by hand, as in the book: the arrays stay on the GPU.
grad = network.gradient(x_train[:100], t_train[:100])
for key in grad:
    network.params[key] -= 0.1 * grad[key]
print("W1 lives on", network.params["W1"].device, "- loss", float(network.last_loss))

# The whole run: batches are gathered on the GPU; nothing is read back during a step.
history = train(network, x_train, t_train, x_test, t_test, log=print)
print(f"test accuracy after {history.iterations} iterations: {history.final_test_acc:.4f}")
