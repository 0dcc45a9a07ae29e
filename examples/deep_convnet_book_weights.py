"""Section 8.3.4: the book's trained DeepConvNet (its deep_convnet_params.pkl) on the MNIST test
set, in float64 and in half precision as the book's half_float_network.py does: float16 images
into float64 weights that hold float16-rounded values. The accuracy hardly changes.

The book's pickle is read by DeepConvNet.load_params with a restricted unpickler: it builds
only NumPy arrays and plain containers, and refuses anything else (no code from the file runs).

    python examples/deep_convnet_book_weights.py PATH/TO/deep_convnet_params.pkl [--samples N]
"""

import argparse

from xpnet import DeepConvNet
from xpnet.datasets import load_mnist

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("params", help="the book's ch08/deep_convnet_params.pkl")
parser.add_argument("--samples", type=int, default=10000, help="test images to use")
parser.add_argument("--backend", default="numpy", help="numpy, torch or cupy (float16 needed)")
args = parser.parse_args()

_, (x_test, t_test) = load_mnist(flatten=False)
x_test, t_test = x_test[:args.samples], t_test[:args.samples]

network = DeepConvNet(xp=args.backend, dtype="float64")
network.load_params(args.params)
xp = network.xp
x = xp.asarray(x_test, device=network.device)
t = xp.asarray(t_test, device=network.device)

acc64 = network.accuracy(x, t)
print(f"test accuracy (float64): {acc64:.4f}")

# Half precision, the book's way: the weights keep their float64 arrays but hold float16-rounded
# values, and the images are float16; the network promotes them to its float64 as NumPy would.
x16 = xp.astype(x, xp.float16)
for name, p in network.params.items():
    network.params[name] = xp.astype(xp.astype(p, xp.float16), p.dtype)
acc16 = network.accuracy(x16, t)
print(f"test accuracy (float16): {acc16:.4f}")
print(f"images: {len(t_test)}, difference {acc16 - acc64:+.4f}")
