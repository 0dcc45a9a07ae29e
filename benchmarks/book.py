"""The book's reference implementation, restated once for the benchmarks' "book" contenders.

"Deep Learning from Scratch" builds its networks from layer objects with ``forward`` and
``backward`` (chapters 5 and 7), trains them with a dictionary of parameters updated in place
(chapter 4's script, chapter 6's optimizers) and convolves through ``im2col`` (chapter 7). This
module is the project's own plain-NumPy code written in that shape, so that a benchmark can
quote xpnet against "the book's code" without a copy of the book's repository. It keeps the
choices of the book's code that cost time or memory, because those are what is measured:

- ``im2col``/``col2im`` pad the input, fill a float64 buffer (``np.zeros``'s default, whatever
  the input's dtype) one filter offset at a time, and reorder it to one row per window;
- ``Affine`` computes the input gradient of every layer, the first one's too;
- ``Relu`` keeps a boolean mask and zeroes the gradient in place;
- ``Pooling`` takes the max of the im2col rows (``argmax`` kept), its backward scatters into a
  zero matrix of (windows x pool size) and sums back through ``col2im``;
- ``SoftmaxWithLoss`` takes one-hot or index labels, with 1e-7 inside the log;
- ``Dropout`` multiplies by a fresh mask in training and by ``1 - ratio`` at test time;
- ``Adam`` updates with the bias-corrected step ``lr * sqrt(1 - beta2^t) / (1 - beta1^t)``;
- a network holds ``params`` (arrays its layers share, so an in-place update reaches them),
  an ordered dict of layers and a last layer, with ``predict``, ``loss``, ``accuracy`` and
  ``gradient`` (backpropagation); ``sgd_iteration`` is one iteration of the book's training
  script (a ``np.random.choice`` batch, ``params[k] -= lr * grad[k]``, the loss logged by a
  second forward pass).

The networks take their parameters from the caller: every contender of a benchmark starts
from the same weights. Matrix products are written ``@`` where the book writes ``np.dot``: the
same BLAS product (NumPy 2's ``np.dot`` is up to 20% slower on some of the convolutions'
shapes on this project's machine, and the conv-net numbers the README quotes were measured
with ``@``).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

#: The paddings of DeepConvNet's six 3x3 convolutions (chapter 8): the fourth pads by 2, so
#: that three 2x2 poolings take 28x28 to 4x4 (28 -> 14 -> 16 -> 8 -> 4).
DEEP_PADS = (1, 1, 1, 2, 1, 1)


class Layer(Protocol):
    """A layer in the book's shape: ``forward`` keeps what ``backward`` needs."""

    def forward(self, x: np.ndarray) -> np.ndarray: ...

    def backward(self, dout: np.ndarray) -> np.ndarray: ...


# --- convolution by columns (chapter 7) -------------------------------------------------------

def _out_size(size: int, filter_size: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - filter_size) // stride + 1


def im2col(images: np.ndarray, filter_h: int, filter_w: int, stride: int = 1,
           pad: int = 0) -> np.ndarray:
    """``(N, C, H, W)`` images to a matrix with one row per window, ``(N*OH*OW, C*FH*FW)``
    (float64: the buffer is ``np.zeros``'s default)."""
    n, c, h, w = images.shape
    oh, ow = _out_size(h, filter_h, stride, pad), _out_size(w, filter_w, stride, pad)
    padded = np.pad(images, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    windows = np.zeros((n, c, filter_h, filter_w, oh, ow))
    # One filter offset (dy, dx) at a time: the pixel it sees in every window at once.
    for dy in range(filter_h):
        for dx in range(filter_w):
            windows[:, :, dy, dx, :, :] = padded[:, :, dy:dy + stride * oh:stride,
                                                 dx:dx + stride * ow:stride]
    return windows.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1)


def col2im(cols: np.ndarray, shape: tuple[int, ...], filter_h: int, filter_w: int,
           stride: int = 1, pad: int = 0) -> np.ndarray:
    """The adjoint of ``im2col``: window rows back to ``shape`` images, overlapping windows
    summed (a convolution's input gradient)."""
    n, c, h, w = shape
    oh, ow = _out_size(h, filter_h, stride, pad), _out_size(w, filter_w, stride, pad)
    windows = cols.reshape(n, oh, ow, c, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    # stride - 1 spare rows and columns: the last offset's slice may run past the padding.
    images = np.zeros((n, c, h + 2 * pad + stride - 1, w + 2 * pad + stride - 1))
    for dy in range(filter_h):
        for dx in range(filter_w):
            images[:, :, dy:dy + stride * oh:stride, dx:dx + stride * ow:stride] += \
                windows[:, :, dy, dx, :, :]
    return images[:, :, pad:h + pad, pad:w + pad]


# --- layers -------------------------------------------------------------------------------------

class Relu:
    """``max(x, 0)``; the gradient passes where the input was positive."""

    def __init__(self) -> None:
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout[self.mask] = 0  # in place: the caller's gradient array is reused
        return dout


class Affine:
    """``x @ W + b`` on inputs flattened to one row per sample."""

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.W, self.b = W, b
        self.x: np.ndarray | None = None
        self.x_shape: tuple[int, ...] = ()
        self.dW: np.ndarray | None = None
        self.db: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return self.x @ self.W + self.b

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = dout @ self.W.T  # for the first layer too, though nothing reads it
        self.dW = self.x.T @ dout
        self.db = np.sum(dout, axis=0)
        return dx.reshape(self.x_shape)


class Convolution:
    """A convolution as one matrix product: the input's ``im2col`` rows times the filters
    ``(FN, C, FH, FW)`` laid out as columns."""

    def __init__(self, W: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0) -> None:
        self.W, self.b, self.stride, self.pad = W, b, stride, pad
        self.x: np.ndarray | None = None
        self.cols: np.ndarray | None = None
        self.W_cols: np.ndarray | None = None
        self.dW: np.ndarray | None = None
        self.db: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        fn, _, fh, fw = self.W.shape
        n, _, h, w = x.shape
        oh, ow = _out_size(h, fh, self.stride, self.pad), _out_size(w, fw, self.stride, self.pad)
        self.x = x
        self.cols = im2col(x, fh, fw, self.stride, self.pad)
        self.W_cols = self.W.reshape(fn, -1).T
        out = self.cols @ self.W_cols + self.b
        return out.reshape(n, oh, ow, -1).transpose(0, 3, 1, 2)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        fn, c, fh, fw = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, fn)  # one row per window, like cols
        self.db = np.sum(dout, axis=0)
        self.dW = (self.cols.T @ dout).transpose(1, 0).reshape(fn, c, fh, fw)
        dcols = dout @ self.W_cols.T
        return col2im(dcols, self.x.shape, fh, fw, self.stride, self.pad)


class Pooling:
    """Max pooling through ``im2col``: the max of each channel's window."""

    def __init__(self, pool_h: int, pool_w: int, stride: int = 1, pad: int = 0) -> None:
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad
        self.x: np.ndarray | None = None
        self.arg_max: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        oh = _out_size(h, self.pool_h, self.stride, self.pad)
        ow = _out_size(w, self.pool_w, self.stride, self.pad)
        # One row per (window, channel): the channels of a window are consecutive in a row.
        cols = im2col(x, self.pool_h, self.pool_w, self.stride, self.pad)
        cols = cols.reshape(-1, self.pool_h * self.pool_w)
        self.x, self.arg_max = x, np.argmax(cols, axis=1)
        return np.max(cols, axis=1).reshape(n, oh, ow, c).transpose(0, 3, 1, 2)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout = dout.transpose(0, 2, 3, 1)
        n, oh, ow, _ = dout.shape
        dmax = np.zeros((dout.size, self.pool_h * self.pool_w))
        dmax[np.arange(self.arg_max.size), self.arg_max.flatten()] = dout.flatten()
        dcols = dmax.reshape(n * oh * ow, -1)
        return col2im(dcols, self.x.shape, self.pool_h, self.pool_w, self.stride, self.pad)


class Dropout:
    """Training: zero each unit with probability ``ratio`` (mask from ``rng``); test: scale
    by ``1 - ratio``."""

    def __init__(self, rng: np.random.Generator, ratio: float = 0.5) -> None:
        self.rng, self.ratio = rng, ratio
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, train_flg: bool = True) -> np.ndarray:
        if not train_flg:
            return x * (1.0 - self.ratio)
        self.mask = self.rng.random(x.shape) > self.ratio
        return x * self.mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.mask


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax, the row's max subtracted first (no overflow)."""
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def cross_entropy_error(y: np.ndarray, t: np.ndarray) -> float:
    """Mean ``-log(y[label] + 1e-7)`` over the batch; ``t`` one-hot rows or label indices."""
    if t.size == y.size:
        t = t.argmax(axis=1)
    n = y.shape[0]
    return -np.sum(np.log(y[np.arange(n), t] + 1e-7)) / n


class SoftmaxWithLoss:
    """Softmax and cross-entropy together: the gradient is ``(y - t) / N``."""

    def __init__(self) -> None:
        self.loss: float | None = None
        self.y: np.ndarray | None = None
        self.t: np.ndarray | None = None

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:
        self.t = t
        self.y = softmax(x)
        self.loss = cross_entropy_error(self.y, t)
        return self.loss

    def backward(self, dout: float = 1) -> np.ndarray:
        n = self.t.shape[0]
        if self.t.size == self.y.size:  # one-hot rows
            return (self.y - self.t) / n
        dx = self.y.copy()
        dx[np.arange(n), self.t] -= 1
        return dx / n


# --- optimizer and training script --------------------------------------------------------------

class Adam:
    """Adam (chapter 6): moving averages of the gradient and its square, bias-corrected step."""

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999) -> None:
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update ``params`` in place from ``grads`` (same keys)."""
        if not self.m:
            self.m = {k: np.zeros_like(v) for k, v in params.items()}
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for k in params:
            self.m[k] += (1 - self.beta1) * (grads[k] - self.m[k])
            self.v[k] += (1 - self.beta2) * (grads[k] ** 2 - self.v[k])
            params[k] -= lr_t * self.m[k] / (np.sqrt(self.v[k]) + 1e-7)


def sgd_iteration(net: Net, x_train: np.ndarray, t_train: np.ndarray, batch_size: int,
                  lr: float, losses: list[float]) -> None:
    """One iteration of the book's training script: a batch drawn with replacement from the
    global generator, backprop, ``params[k] -= lr * grad[k]``, the batch's loss appended to
    ``losses`` (a second forward pass, as the script logs it)."""
    mask = np.random.choice(x_train.shape[0], batch_size)  # noqa: NPY002  (the book's way)
    x_batch, t_batch = x_train[mask], t_train[mask]
    grad = net.gradient(x_batch, t_batch)
    for key in net.params:
        net.params[key] -= lr * grad[key]
    losses.append(net.loss(x_batch, t_batch))


# --- networks -----------------------------------------------------------------------------------

class Net:
    """A network in the book's shape: ``params`` (``W1``, ``b1``, ...) shared with its layers,
    ``layers`` in order, a ``SoftmaxWithLoss`` on top. ``owners`` maps a parameter's number to
    the layer that holds it (``{"1": "Affine1"}``: ``W1`` and ``b1``); a layer whose name
    contains ``Dropout`` is told whether it trains."""

    def __init__(self, params: dict[str, np.ndarray], layers: dict[str, Any],
                 owners: dict[str, str]) -> None:
        self.params, self.layers, self.owners = params, layers, owners
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x: np.ndarray, train_flg: bool = False) -> np.ndarray:
        """The scores; ``train_flg`` switches the dropout layers to training."""
        for name, layer in self.layers.items():
            x = layer.forward(x, train_flg) if "Dropout" in name else layer.forward(x)
        return x

    def loss(self, x: np.ndarray, t: np.ndarray) -> float:
        """The loss of a batch in training mode (``t`` one-hot or indices)."""
        return self.last_layer.forward(self.predict(x, train_flg=True), t)

    def accuracy(self, x: np.ndarray, t: np.ndarray) -> float:
        """The fraction of ``x`` classified as ``t`` says (test mode)."""
        y = np.argmax(self.predict(x), axis=1)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        return float(np.sum(y == t)) / x.shape[0]

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Backpropagation: the loss's gradient for every parameter."""
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        grads = {}
        for k, name in self.owners.items():
            grads["W" + k], grads["b" + k] = self.layers[name].dW, self.layers[name].db
        return grads


def two_layer_net(params: dict[str, np.ndarray]) -> Net:
    """Chapter 5's TwoLayerNet: Affine - ReLU - Affine."""
    p = params
    return Net(p, {"Affine1": Affine(p["W1"], p["b1"]), "Relu1": Relu(),
                   "Affine2": Affine(p["W2"], p["b2"])}, {"1": "Affine1", "2": "Affine2"})


def simple_convnet(params: dict[str, np.ndarray]) -> Net:
    """Chapter 7's SimpleConvNet: conv - ReLU - pool 2x2 - Affine - ReLU - Affine."""
    p = params
    return Net(p, {"Conv1": Convolution(p["W1"], p["b1"]), "Relu1": Relu(),
                   "Pool1": Pooling(2, 2, 2), "Affine1": Affine(p["W2"], p["b2"]),
                   "Relu2": Relu(), "Affine2": Affine(p["W3"], p["b3"])},
               {"1": "Conv1", "2": "Affine1", "3": "Affine2"})


def deep_convnet(params: dict[str, np.ndarray], rng: np.random.Generator) -> Net:
    """Chapter 8's DeepConvNet: [conv 3x3 - ReLU - conv 3x3 - ReLU - pool 2x2] x 3, Affine -
    ReLU - Dropout - Affine - Dropout (``rng`` draws the dropout masks)."""
    p = params
    layers: dict[str, Any] = {}
    owners: dict[str, str] = {}
    for i, pad in enumerate(DEEP_PADS, start=1):
        layers[f"Conv{i}"] = Convolution(p[f"W{i}"], p[f"b{i}"], 1, pad)
        layers[f"Relu{i}"] = Relu()
        owners[str(i)] = f"Conv{i}"
        if i % 2 == 0:
            layers[f"Pool{i // 2}"] = Pooling(2, 2, 2)
    layers["Affine1"] = Affine(p["W7"], p["b7"])
    layers["Relu7"] = Relu()
    layers["Dropout1"] = Dropout(rng)
    layers["Affine2"] = Affine(p["W8"], p["b8"])
    layers["Dropout2"] = Dropout(rng)
    owners.update({"7": "Affine1", "8": "Affine2"})
    return Net(p, layers, owners)
