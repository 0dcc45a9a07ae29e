"""The book's training script (section 5.7.4), on xpnet, exactly in the book's shape.

For the fast trainer with a progress bar and a run directory, use `xpnet train`.
"""

import numpy as np

from xpnet import TwoLayerNet
from xpnet.datasets import load_mnist

# read data
(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)

network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10, seed=0)

iters_num = 10000
train_size = x_train.shape[0]
batch_size = 100
learning_rate = 0.1

train_loss_list = []
train_acc_list = []
test_acc_list = []

iter_per_epoch = max(train_size / batch_size, 1)
rng = np.random.default_rng(0)

for i in range(iters_num):
    batch_mask = rng.choice(train_size, batch_size)
    x_batch = x_train[batch_mask]
    t_batch = t_train[batch_mask]

    # gradient by backpropagation
    grad = network.gradient(x_batch, t_batch)

    # update
    for key in ("W1", "b1", "W2", "b2"):
        network.params[key] -= learning_rate * grad[key]

    # the loss of the forward pass that gradient() just ran: no second pass
    train_loss_list.append(float(network.last_loss))

    if i % iter_per_epoch == 0:
        train_acc = network.accuracy(x_train, t_train)
        test_acc = network.accuracy(x_test, t_test)
        train_acc_list.append(train_acc)
        test_acc_list.append(test_acc)
        print(train_acc, test_acc)

print("final test accuracy:", network.accuracy(x_test, t_test))
