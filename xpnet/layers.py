"""The book's layers (chapters 5 and 6), each a small class with ``forward`` and ``backward``.

Each layer takes its array namespace from its inputs, keeps only what ``backward`` needs, and never
modifies the gradient it is given. Outputs stay on the input's device. Mixed floating dtypes
(float16, float32, float64) follow the Array API / NumPy type promotion, as the book's NumPy code
does: ``Affine(W64, b64).forward(x32)`` is float64, and weights are never cast down. Inputs whose
dtypes already match take the fast path with no casts.
"""

from __future__ import annotations

from typing import Any

from ._checks import promoted, same_float
from ._checks import seed as check_seed
from .backend import Array, backend_name, device, namespace
from .functions import _as_batch, check_labels, one_hot, sigmoid
from .ops import ops_for
from .rng import RandomGenerator, random_generator

__all__ = [
    "AddLayer",
    "Affine",
    "BatchNormalization",
    "Dropout",
    "MulLayer",
    "Relu",
    "Sigmoid",
    "SoftmaxWithLoss",
]

_SCALARS = (bool, int, float, complex)


def _check_operands(x: Any, y: Any) -> None:
    """Plain numbers pass (the book's apple example); arrays must share one backend."""
    if not (isinstance(x, _SCALARS) and isinstance(y, _SCALARS)):
        namespace(x, y)


def _mul(a: Any, b: Any) -> Any:
    """``a * b`` with NumPy's promotion for mixed floating dtypes on every backend."""
    a, b = same_float(a, b)
    return a * b


def _add(a: Any, b: Any) -> Any:
    """``a + b`` with NumPy's promotion for mixed floating dtypes on every backend."""
    a, b = same_float(a, b)
    return a + b


def _sum_to_shape(grad: Any, like: Any) -> Any:
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach ``like``'s shape.

    The gradient of a broadcast operand is the sum of the gradients of its copies.
    """
    if isinstance(like, _SCALARS):
        if isinstance(grad, _SCALARS):
            return grad
        return namespace(grad).sum(grad)
    shape = tuple(like.shape)
    if isinstance(grad, _SCALARS) or tuple(grad.shape) == shape:
        return grad
    xp = namespace(grad)
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    grad = xp.sum(grad, axis=axes) if axes else grad
    return xp.reshape(grad, shape)


class MulLayer:
    """Multiplication node ``out = x * y``; backward swaps the inputs: ``dx = dout*y, dy = dout*x``.

    Takes arrays of one backend or plain Python numbers (the book's apple example).
    """

    def __init__(self) -> None:
        self.x: Any = None
        self.y: Any = None

    def forward(self, x: Any, y: Any) -> Any:
        _check_operands(x, y)
        self.x = x
        self.y = y
        return _mul(x, y)

    def backward(self, dout: Any) -> tuple[Any, Any]:
        dx = _sum_to_shape(_mul(dout, self.y), self.x)
        dy = _sum_to_shape(_mul(dout, self.x), self.y)
        return dx, dy


class AddLayer:
    """Addition node ``out = x + y``; backward passes ``dout`` on to both inputs unchanged."""

    def __init__(self) -> None:
        self.x: Any = None
        self.y: Any = None

    def forward(self, x: Any, y: Any) -> Any:
        _check_operands(x, y)
        self.x = x
        self.y = y
        return _add(x, y)

    def backward(self, dout: Any) -> tuple[Any, Any]:
        # `* 1` hands each input its own array, as the book does.
        dx = _sum_to_shape(dout * 1, self.x)
        dy = _sum_to_shape(dout * 1, self.y)
        return dx, dy


class Relu:
    """``out = max(x, 0)``; backward lets ``dout`` through where ``x > 0``."""

    def __init__(self) -> None:
        self.mask: Any = None
        self.ops: Any = None

    def forward(self, x: Array) -> Array:
        self.ops = ops_for(x)
        out, self.mask = self.ops.relu_forward(x)  # mask = (x <= 0)
        return out

    def backward(self, dout: Array) -> Array:
        # A new array: the book's `dout[self.mask] = 0` would overwrite the caller's gradient.
        return self.ops.relu_backward(dout, self.mask)


class Sigmoid:
    """``out = 1 / (1 + exp(-x))``; backward ``dx = dout * out * (1 - out)``."""

    def __init__(self) -> None:
        self.out: Any = None

    def forward(self, x: Array) -> Array:
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout: Array) -> Array:
        return dout * (1.0 - self.out) * self.out


class Affine:
    """Fully connected layer ``out = x @ W + b``.

    ``x`` may be N-D ``(N, d1, d2, ...)``: it is flattened to ``(N, d1*d2*...)`` and ``dx`` gets
    the original shape back. Backward stores ``dW = x.T @ dout`` and ``db = sum(dout, axis=0)``
    and returns ``dx = dout @ W.T``, or ``None`` when ``input_grad=False`` (a first layer, whose
    input is data, skips that matmul).

    Mixed floating dtypes promote as in NumPy: float16 or float32 input with float64 ``W`` and
    ``b`` gives float64 output and gradients (``dW`` then has the promoted dtype, as NumPy's
    ``x.T @ dout`` has). Integer input raises ``TypeError``.
    """

    def __init__(self, W: Array, b: Array, *, input_grad: bool = True) -> None:
        self.W = W
        self.b = b
        self.input_grad = input_grad
        self.x: Any = None
        self.original_x_shape: tuple[int, ...] | None = None
        self.dW: Any = None
        self.db: Any = None
        self.xp: Any = None
        self.ops: Any = None

    def forward(self, x: Array) -> Array:
        xp = self.xp = namespace(x, self.W)
        self.original_x_shape = tuple(x.shape)
        if x.ndim != 2:
            if x.ndim == 0:
                msg = "Affine needs input of shape (N, features), got a 0-d array"
                raise ValueError(msg)
            x = xp.reshape(x, (x.shape[0], -1))
        W, b = self.W, self.b
        if x.shape[1] != W.shape[0]:
            msg = (f"Affine expects {W.shape[0]} input features, got input of shape "
                   f"{self.original_x_shape} ({x.shape[1]} features after flattening)")
            raise ValueError(msg)
        if x.dtype != W.dtype or b.dtype != W.dtype:
            x, W, b = promoted(xp, "Affine", x, W, b)
        self.x = x  # in the promoted dtype: backward's x.T @ dout needs no second cast
        # ops.matmul: x @ W, or on CuPy inside a CUDA-graph step xpnet's own kernel (CuPy
        # refuses cuBLAS during a capture).
        self.ops = ops_for(xp)
        out = self.ops.matmul(x, W)
        out += b  # in place on the fresh product: no second (N, out) array
        return out

    def backward(self, dout: Array) -> Array | None:
        xp = self.xp
        matmul = self.ops.matmul
        x = self.x
        if dout.dtype != x.dtype:
            x, dout = promoted(xp, "Affine backward", x, dout)
        self.dW = matmul(x.T, dout)
        self.db = xp.sum(dout, axis=0)
        if not self.input_grad:
            return None
        W = self.W
        if W.dtype != dout.dtype:
            dout, W = promoted(xp, "Affine backward", dout, W)
        dx = matmul(dout, W.T)
        return xp.reshape(dx, self.original_x_shape)


class SoftmaxWithLoss:
    """Softmax followed by the cross-entropy loss; backward ``dx = (y - t) / N``.

    ``t`` holds one-hot rows ``(N, C)`` or class indices ``(N,)`` of any integer dtype;
    a single sample ``(C,)`` with a scalar label also works. ``check_labels`` (default on)
    verifies that class indices lie in ``[0, C)``: that reads two numbers back to the host, so
    a trainer that has checked its labels once turns it off.
    """

    def __init__(self, *, check_labels: bool = True) -> None:
        self.loss: Any = None
        self.y: Any = None  # softmax output, (N, C)
        self.t: Any = None  # labels as given
        self.t_hot: Any = None  # labels as one-hot rows, (N, C)
        self.check_labels = check_labels
        self._single = False
        self._labels: Any = None  # labels as a batch: indices (N,) or rows (N, C)
        self._rows_given = False  # whether the labels came as rows
        self.xp: Any = None
        self.ops: Any = None

    def forward(self, x: Array, t: Array) -> Array:
        xp = self.xp = namespace(x, t)
        self.ops = ops_for(xp)
        self._single = x.ndim == 1
        x2, t2, hot = _as_batch(x, t, xp)
        if not hot and self.check_labels:
            check_labels(t2, x2.shape[-1])
        self.t = t
        self._labels, self._rows_given = t2, hot
        # Softmax and log-softmax share z = x - max(x) and s = sum(exp(z)):
        # y = exp(z) / s and log(y) = z - log(s), with no second exp.
        z = x2 - xp.max(x2, axis=-1, keepdims=True)
        e = xp.exp(z)
        s = xp.sum(e, axis=-1, keepdims=True)
        self.y = e / s
        if hot:  # any rows t (they need not sum to 1): -sum(t * log(y)) / N
            self.t_hot = t2
            self.loss = -xp.sum(t2 * (z - xp.log(s))) / x2.shape[0]
            return self.loss
        # Index labels: one-hot rows sum to 1, so -sum(t * (z - log s)) = sum(log s) - sum(t * z).
        # (ops: the one-hot rows, kept for backward, or none where a fused backward reads the
        # indices.)
        picked, self.t_hot = self.ops.softmax_index_terms(z, t2)
        self.loss = (xp.sum(xp.log(s)) - picked) / x2.shape[0]
        return self.loss

    def backward(self, dout: Any = 1) -> Array:
        batch_size = self.y.shape[0]
        if isinstance(dout, (int, float)):  # (y - one_hot(t)) * (dout / N): one kernel on CuPy
            dx = self.ops.softmax_grad(self.y, self._labels, self.t_hot, dout / batch_size,
                                       rows=self._rows_given)
        else:
            if self.t_hot is None:
                self.t_hot = one_hot(self._labels, self.y.shape[-1], dtype=self.y.dtype)
            # _mul: a 0-d dout of another dtype promotes on PyTorch too
            dx = _mul(self.y - self.t_hot, dout / batch_size)
        return dx[0, ...] if self._single else dx


class Dropout:
    """Dropout (chapter 6): in training ``out = x * mask`` with ``mask = u > dropout_ratio`` for
    uniform ``u``; in inference ``out = x * (1 - dropout_ratio)`` (the book's scaling, not the
    "inverted" one). Backward ``dx = dout * mask``.

    Masks come from a seeded generator of the input's backend on the input's device
    (:func:`xpnet.rng.random_generator`: no host round-trip on a GPU).

    Parameters
    ----------
    dropout_ratio
        Probability of dropping a unit, in ``[0, 1]``.
    seed
        Seed of the layer's own generator, made on the first ``forward`` (``None``: fresh
        entropy). Ignored when ``rng`` is given.
    rng
        A :class:`~xpnet.backend.RandomGenerator` to draw from (several layers may share one).

    Attributes
    ----------
    mask
        The boolean mask of the last training ``forward``, shape of ``x``.
    fixed_mask
        Set it (a boolean array of ``x``'s shape on ``x``'s device) to use that mask in every
        training ``forward`` instead of drawing one: for gradient checks. ``None`` draws.
    """

    def __init__(self, dropout_ratio: float = 0.5, *, seed: int | None = None,
                 rng: RandomGenerator | None = None) -> None:
        ratio = float(dropout_ratio)
        if not 0.0 <= ratio <= 1.0:  # also refuses NaN
            msg = f"dropout_ratio must lie in [0, 1], got {dropout_ratio!r}"
            raise ValueError(msg)
        check_seed(seed)
        self.dropout_ratio = ratio
        self.seed = seed
        self.rng = rng
        self._rng_given = rng is not None
        self.mask: Any = None
        self.fixed_mask: Any = None
        self._train = True

    def _generator(self, xp: Any, dev: Any) -> RandomGenerator:
        rng = self.rng
        if rng is not None and rng.draws_on(xp, dev):
            return rng
        if rng is not None and self._rng_given:
            msg = (f"Dropout's rng draws on {rng.backend} device {rng.device!r} but the input "
                   f"is on {backend_name(xp)} device {dev!r}; pass a generator made with "
                   "xpnet.rng.random_generator(xp, device, seed)")
            raise ValueError(msg)
        # The layer's own generator, made on first use (again if the input moved).
        self.rng = random_generator(xp, dev, self.seed)
        return self.rng

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        xp = namespace(x)
        self._train = bool(train_flg)
        if not train_flg:
            self.mask = None
            return x * (1.0 - self.dropout_ratio)
        if self.fixed_mask is not None:
            mask = self.fixed_mask
            if not xp.isdtype(mask.dtype, "bool"):
                msg = (f"Dropout.fixed_mask must be a boolean array, got dtype {mask.dtype}; "
                       "e.g. xp.asarray(host_mask > 0, device=...)")
                raise TypeError(msg)
            if tuple(mask.shape) != tuple(x.shape):
                msg = (f"Dropout.fixed_mask must have the input's shape {tuple(x.shape)}, "
                       f"got shape {tuple(mask.shape)}")
                raise ValueError(msg)
        else:
            # float32 draws: cheaper than float64 and enough resolution for a keep/drop choice
            u = self._generator(xp, device(x)).random(tuple(x.shape), "float32")
            mask = u > self.dropout_ratio
        self.mask = mask
        return x * xp.astype(mask, x.dtype)

    def backward(self, dout: Array) -> Array:
        if not self._train:  # the gradient of the inference scaling
            return dout * (1.0 - self.dropout_ratio)
        if self.mask is None:
            msg = "Dropout.backward needs a forward(x, train_flg=True) first"
            raise RuntimeError(msg)
        if tuple(dout.shape) != tuple(self.mask.shape):
            msg = (f"Dropout.backward: dout has shape {tuple(dout.shape)}, the forward input "
                   f"had {tuple(self.mask.shape)}")
            raise ValueError(msg)
        xp = namespace(dout)
        dx = xp.astype(self.mask, dout.dtype)
        dx *= dout  # into the fresh 0/1 array: no second temporary
        return dx


def _moving_average(running: Array, batch: Array, m: float) -> Array:
    """``m * running + (1 - m) * batch``, written into ``running`` itself where it can hold the
    result (same dtype, writable): a captured CUDA graph replays the update on the same memory,
    so the statistics accumulate over replays; a new array would leave the graph reading the
    array of the capture. Otherwise a new array, as in the book (an in-place update would cast
    float64 batch statistics down into float32 running ones). Same arithmetic either way."""
    if running.dtype == batch.dtype and getattr(getattr(running, "flags", None), "writeable",
                                                True):
        running *= m
        running += (1.0 - m) * batch
        return running
    return m * running + (1.0 - m) * batch


class BatchNormalization:
    """Batch normalization (chapter 6): ``out = gamma * (x - mu) / sqrt(var + 1e-6) + beta``.

    In training ``mu`` and ``var`` are the batch's per-feature mean and (biased) variance, and
    the running statistics move towards them: ``running = momentum * running + (1 - momentum)
    * batch``. In inference (``train_flg=False``) the running statistics are used. The epsilon
    is the book's ``10e-7`` (= 1e-6).

    Training needs a batch of ``N >= 2`` (one sample is its own mean: the output would be
    ``beta`` whatever the input), so ``N == 1`` with ``train_flg=True`` is a ``ValueError``, as
    in PyTorch, unless ``allow_batch_of_one`` is set (an attribute; the book's own code
    computes it, and its ``ch06/batch_norm_gradient_check.py`` checks gradients on one
    sample); inference takes any ``N >= 1``.

    Input is ``(N, D)`` or ``(N, C, H, W)``; as in the book, 4-D input is flattened to
    ``(N, C*H*W)``, so ``gamma`` and ``beta`` have shape ``(D,)`` with ``D`` the features per
    sample. Running statistics are made on the first ``forward`` (zeros, the input's dtype and
    device) unless given. Backward stores ``dgamma`` and ``dbeta``. Mixed floating dtypes
    promote as in NumPy (float32 ``x`` with float64 ``gamma`` gives float64 output).
    """

    EPS = 10e-7  # the book's value
    #: Train on a batch of one sample as the book's code does (see the class text).
    allow_batch_of_one = False

    def __init__(self, gamma: Array, beta: Array, momentum: float = 0.9,
                 running_mean: Array | None = None, running_var: Array | None = None) -> None:
        m = float(momentum)
        if not 0.0 <= m <= 1.0:
            msg = f"momentum must lie in [0, 1], got {momentum!r}"
            raise ValueError(msg)
        if tuple(gamma.shape) != tuple(beta.shape) or gamma.ndim != 1:
            msg = (f"gamma and beta must both have shape (D,), got {tuple(gamma.shape)} and "
                   f"{tuple(beta.shape)}")
            raise ValueError(msg)
        self.gamma = gamma
        self.beta = beta
        self.momentum = m
        self.running_mean = running_mean
        self.running_var = running_var
        self.input_shape: tuple[int, ...] | None = None
        self.batch_size: Any = None
        self.xc: Any = None
        self.xn: Any = None
        self.std: Any = None
        self.dgamma: Any = None
        self.dbeta: Any = None
        self._train = True
        self.xp: Any = None

    def _flat(self, x: Array, xp: Any, name: str) -> Array:
        if x.ndim not in (2, 4):
            msg = (f"BatchNormalization takes (N, D) or (N, C, H, W) {name}, got shape "
                   f"{tuple(x.shape)}")
            raise ValueError(msg)
        return x if x.ndim == 2 else xp.reshape(x, (x.shape[0], -1))

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        xp = self.xp = namespace(x, self.gamma, self.beta)
        self.input_shape = tuple(x.shape)
        x2 = self._flat(x, xp, "input")
        n, d = x2.shape
        if d != self.gamma.shape[0]:
            msg = (f"BatchNormalization has {self.gamma.shape[0]} features (gamma, beta) but the "
                   f"input of shape {self.input_shape} has {d} per sample")
            raise ValueError(msg)
        if n == 0:
            msg = "BatchNormalization needs at least one sample, got an empty batch"
            raise ValueError(msg)
        if train_flg and n == 1 and not self.allow_batch_of_one:
            # One sample is its own mean: xc = 0, and every output would be beta whatever the
            # input (PyTorch refuses it too: "Expected more than 1 value per channel").
            msg = ("BatchNormalization in training mode needs a batch of 2 or more samples, "
                   "got a batch of 1 (shape "
                   f"{self.input_shape}): one sample is its own batch mean, so the output "
                   "would be beta whatever the input; train with a batch size of 2 or more, "
                   "or pass train_flg=False to use the running statistics for one sample "
                   "(or set layer.allow_batch_of_one = True to compute it as the book does)")
            raise ValueError(msg)
        if not xp.isdtype(x2.dtype, "real floating"):
            msg = f"BatchNormalization needs floating input, got dtype {x2.dtype}"
            raise TypeError(msg)
        if self.running_mean is None:
            self.running_mean = xp.zeros((d,), dtype=x2.dtype, device=device(x2))
        if self.running_var is None:
            self.running_var = xp.zeros((d,), dtype=x2.dtype, device=device(x2))
        self._train = bool(train_flg)
        if train_flg:
            # sum / n: the value of mean(), without its per-call overhead
            mu = xp.sum(x2, axis=0) / n
            xc = x2 - mu
            var = xp.sum(xc * xc, axis=0) / n
            std = xp.sqrt(var + self.EPS)
            self.running_mean = _moving_average(self.running_mean, mu, self.momentum)
            self.running_var = _moving_average(self.running_var, var, self.momentum)
        else:
            xc = x2 - self.running_mean
            std = xp.sqrt(self.running_var + self.EPS)
        xn = xc / std
        self.batch_size, self.xc, self.xn, self.std = n, xc, xn, std
        if self.gamma.dtype == xn.dtype and self.beta.dtype == xn.dtype:
            out = xn * self.gamma
            out += self.beta  # in place on the fresh product
        else:  # NumPy's promotion (float32 x with float64 gamma gives float64)
            out = self.gamma * xn + self.beta
        return xp.reshape(out, self.input_shape)

    def backward(self, dout: Array) -> Array:
        if self.xn is None:
            msg = "BatchNormalization.backward needs a forward first"
            raise RuntimeError(msg)
        xp = self.xp
        if tuple(dout.shape) != self.input_shape:
            msg = (f"BatchNormalization.backward: dout has shape {tuple(dout.shape)}, the "
                   f"forward input had {self.input_shape}")
            raise ValueError(msg)
        d2 = self._flat(dout, xp, "dout")
        xn, gamma, n = self.xn, self.gamma, self.batch_size
        self.dbeta = xp.sum(d2, axis=0)
        self.dgamma = xp.sum(xn * d2, axis=0)
        if self._train and d2.dtype == xn.dtype == gamma.dtype == self.std.dtype:
            # The closed form below with mean(dxn) = gamma * dbeta / n and
            # mean(dxn * xn) = gamma * dgamma / n, gamma / std folded into one factor:
            # dx = gamma / std * (dout - dbeta / n - xn * dgamma / n), in place.
            dx = xn * (self.dgamma / n)
            dx += self.dbeta / n
            dx -= d2
            dx *= -gamma / self.std
            return xp.reshape(dx, self.input_shape)
        dxn = gamma * d2
        if self._train:
            # The book's chain (through std, var and mu) in closed form:
            # dx = (dxn - mean(dxn) - xn * mean(dxn * xn)) / std
            dxn = dxn - xp.mean(dxn, axis=0) - xn * xp.mean(dxn * xn, axis=0)
        dx = dxn / self.std  # in inference the statistics are constants
        return xp.reshape(dx, self.input_shape)


# Primitive nodes for the book's sigmoid derivation (figure 5-19): with MulLayer by -1 and
# AddLayer with 1 (both take a plain Python number as one operand), they compose
# ``y = 1 / (1 + exp(-x))`` node by node, and their backward passes multiply to the
# ``Sigmoid`` layer's ``dout * y * (1 - y)``.
__all__ += ["ExpLayer", "ReciprocalLayer"]


class ExpLayer:
    """The "exp" node: ``out = exp(x)``; backward ``dx = dout * out`` (exp is its own derivative).

    Takes a floating array of any backend (the result keeps its dtype and device) or a plain
    Python number (``math.exp``).
    """

    def __init__(self) -> None:
        self.out: Any = None

    def forward(self, x: Any) -> Any:
        if type(x) in _SCALARS:  # exactly a Python number: NumPy scalars keep their type
            import cmath
            import math

            self.out = cmath.exp(x) if isinstance(x, complex) else math.exp(x)
        else:
            self.out = namespace(x).exp(x)
        return self.out

    def backward(self, dout: Any) -> Any:
        return dout * self.out


class ReciprocalLayer:
    """The "/" node: ``out = 1 / x``; backward ``dx = -dout * out**2``.

    Takes a floating array of any backend (the result keeps its dtype and device) or a plain
    Python number.
    """

    def __init__(self) -> None:
        self.out: Any = None

    def forward(self, x: Any) -> Any:
        if type(x) not in _SCALARS:
            namespace(x)  # an array (or NumPy scalar) of one backend, or a clear TypeError
        self.out = 1.0 / x
        return self.out

    def backward(self, dout: Any) -> Any:
        return -(dout * (self.out * self.out))
