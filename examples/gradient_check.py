"""The book's gradient check (section 5.7.3): backprop against numerical gradients on 3 images.

Prints the mean absolute difference per parameter as the book does, then xpnet's per-parameter
table (max absolute and relative error) and fails loudly if they disagree.
"""

import numpy as np

from xpnet import TwoLayerNet, gradient_check
from xpnet.datasets import load_mnist

# read data
(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)

network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10, seed=0)

x_batch = x_train[:3]
t_batch = t_train[:3]

grad_numerical = network.numerical_gradient(x_batch, t_batch)
grad_backprop = network.gradient(x_batch, t_batch)

for key in grad_numerical:
    diff = np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
    print(key + ":" + str(diff))

# The same comparison, as a table with max errors; raises if any parameter disagrees.
print(gradient_check(network, x_batch, t_batch).raise_if_failed())
