"""Convolution and max pooling (the book's chapter 7): ``im2col``, ``col2im``, ``Convolution``,
``Pooling``.

Everything is written with portable Array API calls (strided slices, slice assignment,
``reshape``, ``permute_dims``, ``matmul``), so the same code runs on NumPy, array-api-strict,
PyTorch and CuPy; the column building and pooling are the backend's operations
(:func:`xpnet.ops.ops_for`: portable code in :mod:`xpnet.ops.convolution`, fused kernels on
CuPy).

Layout. The layers take and return ``(N, C, H, W)`` arrays, as the book's do, but build the
columns transposed, ``colT`` of shape ``(C*FH*FW, N*OH*OW)``, from the input viewed as
``(C, N, H, W)``. Then ``W.reshape(FN, -1) @ colT`` is the output in ``(FN, N, OH, OW)``
memory order, handed back as an ``(N, FN, OH, OW)`` view; elementwise layers keep that order,
the next layer reads ``(C, N, H, W)`` for free, and ``dW`` comes out in ``W``'s own layout. On
NumPy with one thread this is ~4x faster to build than the book's row layout for one input
channel. ``Convolution.col`` is ``colT``'s transpose: the book's ``col``, value for value.

Speed on NumPy (DeepConvNet's 3x3 pad-1 layers): each layer reuses its column buffers from
step to step (fresh arrays of tens of megabytes cost more in page faults than in copying),
builds padded stride-1 columns straight from the input (the out-of-image entries of the reused
buffer stay zero), and computes a stride-1 input gradient as the full convolution of ``dout``
with the flipped filters, one matmul with no ``col2im``.
"""

from __future__ import annotations

from typing import Any

from ._checks import floating_input, four_d, int_at_least, promoted, window_count
from .backend import Array, device, namespace
from .ops import Workspace, ops_for

__all__ = ["Convolution", "Pooling", "col2im", "im2col"]


def im2col(input_data: Array, filter_h: int, filter_w: int, stride: int = 1,
           pad: int = 0) -> Array:
    """Unfold the windows of ``input_data`` into rows (the book's ``im2col``).

    Parameters
    ----------
    input_data : array, shape ``(N, C, H, W)``
    filter_h, filter_w : window height and width
    stride, pad : step between windows; zeros added around the image

    Returns
    -------
    array, shape ``(N*OH*OW, C*filter_h*filter_w)``
        Row ``(n, y, x)`` holds window ``(y, x)`` of image ``n``, in ``(C, FH, FW)`` order, with
        ``OH = (H + 2*pad - filter_h) // stride + 1`` (likewise ``OW``; floored, as the book's
        function does). It may be a transposed view; its values are those of the book's
        function.
    """
    four_d(input_data, "im2col")
    xp = namespace(input_data)
    _N, _C, H, W = input_data.shape
    stride, pad = int_at_least(stride, "stride", 1), int_at_least(pad, "pad", 0)
    oh = window_count(H, filter_h, stride, pad, "im2col (height)")
    ow = window_count(W, filter_w, stride, pad, "im2col (width)")
    xt = xp.permute_dims(input_data, (1, 0, 2, 3))
    return ops_for(xp).im2col_t(xt, filter_h, filter_w, stride, pad, oh, ow).T


def col2im(col: Array, input_shape: tuple[int, int, int, int], filter_h: int, filter_w: int,
           stride: int = 1, pad: int = 0) -> Array:
    """Fold rows made by :func:`im2col` back into an image, summing where windows overlap
    (the book's ``col2im``; the adjoint of ``im2col``).

    Parameters
    ----------
    col : array, shape ``(N*OH*OW, C*filter_h*filter_w)``
    input_shape : ``(N, C, H, W)`` of the image ``im2col`` was given

    Returns
    -------
    array, shape ``(N, C, H, W)``
    """
    xp = namespace(col)
    N, C, H, W = (int(s) for s in input_shape)
    stride, pad = int_at_least(stride, "stride", 1), int_at_least(pad, "pad", 0)
    oh = window_count(H, filter_h, stride, pad, "col2im (height)")
    ow = window_count(W, filter_w, stride, pad, "col2im (width)")
    want = (N * oh * ow, C * filter_h * filter_w)
    if tuple(col.shape) != want:
        msg = (f"col2im: col must have shape {want} for input_shape {tuple(input_shape)}, "
               f"filter {filter_h}x{filter_w}, stride {stride}, pad {pad}; got {tuple(col.shape)}")
        raise ValueError(msg)
    img = ops_for(xp).col2im_t(col.T, (C, N, H, W), filter_h, filter_w, stride, pad, oh, ow)
    return xp.permute_dims(img, (1, 0, 2, 3))


class Convolution:
    """2-D convolution (cross-correlation, as in the book) ``out = im2col(x) @ W.reshape(FN, -1).T
    + b``.

    ``W`` has shape ``(FN, C, FH, FW)``, ``b`` shape ``(FN,)``; ``forward`` maps ``(N, C, H, W)``
    to ``(N, FN, OH, OW)`` with ``OH = (H + 2*pad - FH) // stride + 1`` (floored as in the book
    and PyTorch: rows no window reaches get zero gradient). ``backward`` stores
    ``dW`` (shape of ``W``) and ``db`` and returns ``dx``, or ``None`` when ``input_grad=False``
    (a first layer, whose input is data). Mixed floating dtypes promote as NumPy does.
    """

    def __init__(self, W: Array, b: Array, stride: int = 1, pad: int = 0, *,
                 input_grad: bool = True) -> None:
        self.W = W
        self.b = b
        self.stride = int_at_least(stride, "stride", 1)
        self.pad = int_at_least(pad, "pad", 0)
        self.input_grad = input_grad
        self.x: Any = None
        self.col_t: Any = None  # (C*FH*FW, N*OH*OW): the book's col, transposed
        self.dW: Any = None
        self.db: Any = None
        self.xp: Any = None
        self._w2: Any = None  # W as (FN, C*FH*FW) in the compute dtype
        self._out_shape: tuple[int, ...] = ()
        self._work = Workspace()
        self.ops: Any = None

    @property
    def col(self) -> Array | None:
        """The book's ``col`` ``(N*OH*OW, C*FH*FW)`` (a transposed view)."""
        return None if self.col_t is None else self.col_t.T

    @property
    def col_W(self) -> Array | None:
        """The book's ``col_W`` ``(C*FH*FW, FN)`` (a transposed view)."""
        return None if self._w2 is None else self._w2.T

    def forward(self, x: Array) -> Array:
        W, b = self.W, self.b
        if isinstance(b, (int, float)) and not isinstance(b, bool):
            # A number for every filter, as in the book's ch07/apply_filter.py (b = 0); like
            # NumPy's `col @ col_W + 0`, it takes the weights' dtype.
            xp = namespace(x, W)
            b = xp.full((W.shape[0],), b, dtype=W.dtype, device=device(W))
        xp = self.xp = namespace(x, W, b)
        four_d(x, "Convolution")
        if W.ndim != 4:
            msg = f"Convolution W must have shape (FN, C, FH, FW), got shape {tuple(W.shape)}"
            raise ValueError(msg)
        FN, C, FH, FW = W.shape
        N, xc, H, Wd = x.shape
        if xc != C:
            msg = (f"Convolution: W expects {C} input channels, got input of shape "
                   f"{tuple(x.shape)} with {xc} channels")
            raise ValueError(msg)
        if tuple(b.shape) not in ((FN,), (FN, 1, 1), (1, FN, 1, 1)):
            msg = f"Convolution b must have shape ({FN},), got shape {tuple(b.shape)}"
            raise ValueError(msg)
        floating_input(xp, x, "Convolution")
        oh = window_count(H, FH, self.stride, self.pad, "Convolution (height)")
        ow = window_count(Wd, FW, self.stride, self.pad, "Convolution (width)")
        if W.dtype != x.dtype or b.dtype != x.dtype:  # NumPy promotion (torch's @ does not)
            x, W, b = promoted(xp, "Convolution", x, W, b)
        self.x = x
        self._w2 = xp.reshape(W, (FN, C * FH * FW))
        xt = xp.permute_dims(x, (1, 0, 2, 3))
        self.ops = ops_for(xp)
        self.col_t = self.ops.im2col_t(xt, FH, FW, self.stride, self.pad, oh, ow, self._work)
        out = self.ops.matmul_large(self._w2, self.col_t)
        out += xp.reshape(b, (FN, 1))  # in place on the fresh product
        self._out_shape = (N, FN, oh, ow)
        return xp.permute_dims(xp.reshape(out, (FN, N, oh, ow)), (1, 0, 2, 3))

    def backward(self, dout: Array) -> Array | None:
        xp = self.xp
        if tuple(dout.shape) != self._out_shape:
            msg = (f"Convolution.backward: dout must have the forward output's shape "
                   f"{self._out_shape}, got {tuple(dout.shape)}")
            raise ValueError(msg)
        N, FN, oh, ow = self._out_shape
        d2 = xp.reshape(xp.permute_dims(dout, (1, 0, 2, 3)), (FN, N * oh * ow))
        if d2.dtype != self._w2.dtype:
            d2 = xp.astype(d2, self._w2.dtype)
        self.db = xp.sum(d2, axis=1)
        self.dW = xp.reshape(self.ops.matmul_large(d2, self.col_t.T), tuple(self.W.shape))
        if not self.input_grad:
            return None
        _, C, H, W = self.x.shape
        FH, FW = self.W.shape[2], self.W.shape[3]
        dxt = self.ops.conv_input_grad(d2, self._w2, (C, N, H, W), FH, FW, self.stride,
                                       self.pad, oh, ow, self._work)
        return xp.permute_dims(dxt, (1, 0, 2, 3))


class Pooling:
    """Max pooling over ``pool_h x pool_w`` windows; backward routes ``dout`` to the first
    maximum of each window (row-major order), as the book's ``argmax`` does.

    ``forward`` maps ``(N, C, H, W)`` to ``(N, C, OH, OW)`` with ``OH = (H + 2*pad - pool_h) //
    stride + 1`` (floored as in the book and PyTorch: rows no window reaches are dropped and get
    zero gradient). Padding adds zeros that take part in the maximum, as in the book (PyTorch pads
    with ``-inf``). Non-overlapping windows without padding (``stride == pool_h == pool_w``, the
    usual 2x2 pool, on even or odd sizes) take a fast path that keeps masks instead of
    ``arg_max``; all other settings
    keep ``arg_max`` ``(C, N, OH, OW)``, the window position of each maximum.
    """

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        self.pool_h = int_at_least(pool_h, "pool_h", 1)
        self.pool_w = int_at_least(pool_w, "pool_w", 1)
        self.stride = int_at_least(stride, "stride", 1)
        self.pad = int_at_least(pad, "pad", 0)
        self.x: Any = None
        self.arg_max: Any = None
        self.xp: Any = None
        self.ops: Any = None
        self._saved: tuple[str, Any] | None = None  # what the operations' backward needs
        self._out_shape: tuple[int, ...] = ()

    @property
    def fast(self) -> bool:
        """Whether the windows neither overlap nor pad (they tile the input, but for the last
        ``H % stride`` rows and ``W % stride`` columns, which no window reads): the mask path."""
        return self.pad == 0 and self.pool_h == self.pool_w == self.stride

    def forward(self, x: Array) -> Array:
        xp = self.xp = namespace(x)
        four_d(x, "Pooling")
        floating_input(xp, x, "Pooling")
        N, C, H, W = x.shape
        ph, pw, s, p = self.pool_h, self.pool_w, self.stride, self.pad
        oh = window_count(H, ph, s, p, "Pooling (height)")
        ow = window_count(W, pw, s, p, "Pooling (width)")
        self.x = x
        self._out_shape = (N, C, oh, ow)
        xt = xp.permute_dims(x, (1, 0, 2, 3))
        self.ops = ops_for(xp)
        out, self._saved = self.ops.max_pool_forward(xt, ph, pw, s, p, oh, ow)
        kind, value = self._saved
        self.arg_max = value if kind == "arg" else None
        return xp.permute_dims(out, (1, 0, 2, 3))

    def backward(self, dout: Array) -> Array:
        xp = self.xp
        if tuple(dout.shape) != self._out_shape:
            msg = (f"Pooling.backward: dout must have the forward output's shape "
                   f"{self._out_shape}, got {tuple(dout.shape)}")
            raise ValueError(msg)
        N, C, oh, ow = self._out_shape
        H, W = self.x.shape[2], self.x.shape[3]
        ph, pw, s, p = self.pool_h, self.pool_w, self.stride, self.pad
        dt = xp.permute_dims(dout, (1, 0, 2, 3))
        dx = self.ops.max_pool_backward(dt, self._saved, (C, N, H, W), ph, pw, s, p, oh, ow)
        return xp.permute_dims(dx, (1, 0, 2, 3))
