"""Portable convolution and pooling kernels (Array API only): the column matrices of a
convolution, their adjoint, a convolution's input gradient, max pooling and its gradient. The
layers of :mod:`xpnet.conv` reach them through :class:`xpnet.ops.Ops`.

Layouts: images ``(C, N, H, W)``, transposed columns ``(C*FH*FW, N*OH*OW)``, pooled
``(C, N, OH, OW)`` (see :mod:`xpnet.conv`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..backend import Array, Namespace, device

__all__ = ["Split", "Workspace", "col2im_t", "conv_input_grad", "fill_unpadded_taps",
           "im2col_t", "max_pool_backward", "max_pool_forward", "route_to_maxima", "split_into"]


def _win(start: int, stride: int, count: int) -> slice:
    """``count`` positions from ``start`` in steps of ``stride`` (the stop stays in bounds:
    array-api-strict refuses stops past the end)."""
    return slice(start, start + stride * (count - 1) + 1, stride)


class Workspace:
    """A layer's reusable buffers, by name: made once, written in place on every step.

    Fresh arrays of tens of megabytes (a DeepConvNet column matrix) cost more in page faults
    than in copying: the allocator hands large blocks back to the system when they are freed,
    so each step would touch brand-new memory. A buffer is made again only when the shape,
    dtype, array type or device it is asked for changes (another batch size), so a layer holds
    one step's worth, as it holds its columns between ``forward`` and ``backward`` anyway.
    Zeroed buffers rely on their callers writing only the same region on every use.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, Array] = {}

    def get(self, xp: Namespace, name: str, shape: tuple[int, ...], like: Array, *,
            zeros: bool = False) -> Array:
        buf = self._arrays.get(name)
        dev = device(like)
        if (buf is None or tuple(buf.shape) != shape or type(buf) is not type(like)
                or buf.dtype != like.dtype or device(buf) != dev):
            make = xp.zeros if zeros else xp.empty
            buf = self._arrays[name] = make(shape, dtype=like.dtype, device=dev)
        return buf


def _padded(xp: Namespace, xt: Array, pad: int, work: Workspace | None = None,
            tag: str = "") -> Array:
    """``xt`` (``(C, N, H, W)``) with ``pad`` zeros around its last two axes, on its device
    (in ``work``'s buffer, whose border stays zero, when given)."""
    if pad == 0:
        return xt
    C, N, H, W = xt.shape
    shape = (C, N, H + 2 * pad, W + 2 * pad)
    if work is None:
        out = xp.zeros(shape, dtype=xt.dtype, device=device(xt))
    else:
        out = work.get(xp, tag + "padded", shape, xt, zeros=True)
    out[:, :, pad:pad + H, pad:pad + W] = xt
    return out


def fill_unpadded_taps(col: Array, xt: Array, fh: int, fw: int, pad: int, oh: int,
                       ow: int) -> None:
    """Stride-1 columns ``col`` (``(C, fh, fw, N, oh, ow)``, zeroed) straight from ``xt``
    (``(C, N, H, W)``) with no padded copy: tap ``(i, j)`` of output ``(y, x)`` reads input
    ``(y + i - pad, x + j - pad)``; only outputs whose input lies inside are written."""
    H, W = xt.shape[2], xt.shape[3]
    for i in range(fh):
        y0, y1 = max(0, pad - i), min(oh, H + pad - i)
        for j in range(fw):
            x0, x1 = max(0, pad - j), min(ow, W + pad - j)
            if y1 > y0 and x1 > x0:
                col[:, i, j, :, y0:y1, x0:x1] = xt[:, :, y0 + i - pad:y1 + i - pad,
                                                   x0 + j - pad:x1 + j - pad]


def im2col_t(xp: Namespace, xt: Array, fh: int, fw: int, stride: int, pad: int,
            oh: int, ow: int, work: Workspace | None = None, tag: str = "") -> Array:
    """The transposed columns ``(C*FH*FW, N*OH*OW)`` of ``xt`` ``(C, N, H, W)`` (written into
    ``work``'s buffers named ``tag...`` when given)."""
    C, N = xt.shape[0], xt.shape[1]
    shape = (C, fh, fw, N, oh, ow)
    if work is not None and stride == 1 and pad:
        # Straight from xt, no padded copy: tap (i, j) of output (y, x) reads input
        # (y + i - pad, x + j - pad); only the outputs whose input lies inside are written,
        # every step the same ones, so the rest of the reused buffer keeps its zeros.
        col = work.get(xp, tag + "col_unpadded", shape, xt, zeros=True)
        fill_unpadded_taps(col, xt, fh, fw, pad, oh, ow)
        return xp.reshape(col, (C * fh * fw, N * oh * ow))
    img = _padded(xp, xt, pad, work, tag)
    col = (xp.empty(shape, dtype=xt.dtype, device=device(xt)) if work is None
           else work.get(xp, tag + "col", shape, xt))
    for i in range(fh):
        for j in range(fw):
            col[:, i, j, ...] = img[:, :, _win(i, stride, oh), _win(j, stride, ow)]
    return xp.reshape(col, (C * fh * fw, N * oh * ow))


def col2im_t(xp: Namespace, col_t: Array, shape_t: tuple[int, int, int, int], fh: int, fw: int,
              stride: int, pad: int, oh: int, ow: int) -> Array:
    """Sum the transposed columns back into an image ``(C, N, H, W)`` (the adjoint of
    :func:`im2col_t`): every input pixel gets the sum over the windows that read it."""
    C, N, H, W = shape_t
    col = xp.reshape(col_t, (C, fh, fw, N, oh, ow))
    img = xp.zeros((C, N, H + 2 * pad, W + 2 * pad), dtype=col_t.dtype, device=device(col_t))
    for i in range(fh):
        for j in range(fw):
            img[:, :, _win(i, stride, oh), _win(j, stride, ow)] += col[:, i, j, ...]
    if pad:
        img = img[:, :, pad:pad + H, pad:pad + W]
    return img


def _dx_full(xp: Namespace, d4: Array, w: Array, pad: int, work: Workspace) -> Array:
    """The input gradient ``(C, N, H, W)`` of a stride-1 convolution with ``pad < FH, FW``,
    from ``d4`` (``dout`` as ``(FN, N, OH, OW)``) and the filters ``w`` ``(FN, C, FH, FW)``,
    as the "full" convolution of ``dout`` with the flipped filters:
    ``dx[c, y, x] = sum_{f, i, j} dpad[f, y + i, x + j] * w[f, c, FH-1-i, FW-1-j]``, where
    ``dpad`` is ``dout`` padded by ``FH-1-pad`` (``FW-1-pad``) zeros. Its columns hold exactly
    the ``N*H*W`` positions of ``dx``: one matmul gives ``dx`` in ``(C, N, H, W)`` order, with
    no ``(C*FH*FW, N*OH*OW)`` product to fold back (``col2im``)."""
    FH, FW = w.shape[2], w.shape[3]
    N, oh, ow = d4.shape[1], d4.shape[2], d4.shape[3]
    H, W = oh + FH - 1 - 2 * pad, ow + FW - 1 - 2 * pad  # stride 1: OH = H + 2*pad - FH + 1
    # One padding for both axes (the caller makes sure that FH == FW).
    cols = im2col_t(xp, d4, FH, FW, 1, FH - 1 - pad, H, W, work, tag="d")
    flipped = xp.flip(w, axis=(2, 3))
    wt = xp.reshape(xp.permute_dims(flipped, (1, 0, 2, 3)), (w.shape[1], -1))
    return xp.reshape(wt @ cols, (w.shape[1], N, H, W))




def conv_input_grad(xp: Namespace, d2: Array, w2: Array, shape_t: tuple[int, int, int, int],
                    fh: int, fw: int, stride: int, pad: int, oh: int, ow: int,
                    work: Workspace) -> Array:
    """The input gradient ``(C, N, H, W)`` of a convolution from ``d2`` (``dout`` as
    ``(FN, N*oh*ow)``) and ``w2`` (the filters as ``(FN, C*fh*fw)``): ``col2im(w2.T @ d2)``,
    or for stride 1 the full convolution of ``dout`` with the flipped filters (:func:`_dx_full`)
    where its columns are the smaller product."""
    FN = d2.shape[0]
    C, N = shape_t[0], shape_t[1]
    # The full convolution's columns have FN*FH*FW rows, col2im's product C*FH*FW: take
    # it unless the filters outnumber the input channels (a first layer on a gray image).
    if stride == 1 and fh == fw and pad < fh and FN <= 2 * C:
        w = xp.reshape(w2, (FN, C, fh, fw))
        return _dx_full(xp, xp.reshape(d2, (FN, N, oh, ow)), w, pad, work)
    return col2im_t(xp, w2.T @ d2, shape_t, fh, fw, stride, pad, oh, ow)


# --------------------------------------------------------------------------- max pooling

def max_pool_forward(xp: Namespace, xt: Array, ph: int, pw: int, s: int, p: int, oh: int,
                     ow: int) -> tuple[Array, Any]:
    """Max pooling of ``xt`` ``(C, N, H, W)`` with zero padding: ``(out, saved)``.

    Windows that neither overlap nor pad (``s == ph == pw``, ``p == 0``: they tile the input
    but for the last ``H % s`` rows and ``W % s`` columns, which no window reads) take the mask
    path, ``saved = ("masks", (column masks, row masks))``; all others keep
    ``saved = ("arg", arg_max)``, the row-major window position of each first maximum."""
    if p == 0 and ph == pw == s:
        # Max over the columns of each window, then over its rows: row-major first maximum.
        cols, col_masks = _first_max(xp, [xt[:, :, :s * oh, _win(j, s, ow)] for j in range(s)])
        out, row_masks = _first_max(xp, [cols[:, :, i::s, :] for i in range(s)])
        return out, ("masks", (col_masks, row_masks))
    img = _padded(xp, xt, p)
    win = xp.stack([img[:, :, _win(i, s, oh), _win(j, s, ow)]
                    for i in range(ph) for j in range(pw)], axis=-1)
    arg_max = xp.argmax(win, axis=-1)  # first maximum, as the standard says
    return xp.max(win, axis=-1), ("arg", arg_max)


def max_pool_backward(xp: Namespace, dt: Array, saved: Any,
                      shape_t: tuple[int, int, int, int], ph: int, pw: int, s: int, p: int,
                      oh: int, ow: int) -> Array:
    """``dx`` ``(C, N, H, W)`` from ``dt`` ``(C, N, oh, ow)``: each element to its window's
    first maximum (``saved`` from :func:`max_pool_forward`)."""
    C, N, H, W = shape_t
    dev = device(dt)
    kind, value = saved
    if kind == "masks":
        # Where the windows tile x every element is written; the rows and columns the
        # floor drops (H % s, W % s) are read by no window and keep zeros.
        tiled = H % s == 0 and W % s == 0  # (oh, ow) = (H // s, W // s)
        dx = (xp.empty if tiled else xp.zeros)((C, N, H, W), dtype=dt.dtype, device=dev)
        route_to_maxima(xp, dx, dt, value, s, oh, ow, split_into)
        return dx
    arg_max = value
    hot = arg_max[..., None] == xp.arange(ph * pw, dtype=arg_max.dtype, device=dev)
    dcol = xp.astype(hot, dt.dtype)
    dcol *= dt[..., None]
    img = xp.zeros((C, N, H + 2 * p, W + 2 * p), dtype=dt.dtype, device=dev)
    for i in range(ph):
        for j in range(pw):
            img[:, :, _win(i, s, oh), _win(j, s, ow)] += dcol[..., i * pw + j]
    return img[:, :, p:p + H, p:p + W] if p else img


def _first_max(xp: Namespace, parts: list[Array]) -> tuple[Array, list[Array]]:
    """Elementwise maximum of ``parts`` and, for all but the last, the mask of where that
    part holds the first maximum (the last part takes what is left)."""
    top = parts[0]
    for part in parts[1:]:
        top = xp.maximum(top, part)
    if len(parts) == 2:
        return top, [parts[0] >= parts[1]]
    masks, found = [], None
    for part in parts[:-1]:
        hit = part == top
        if found is not None:
            hit = xp.logical_and(hit, xp.logical_not(found))
            found = xp.logical_or(found, hit)
        else:
            found = hit
        masks.append(hit)
    return top, masks


def split_into(xp: Namespace, target: Array, keys: list[Any], grad: Array,
               masks: list[Array]) -> None:
    """``grad`` split by first-maximum masks, part ``i`` written to ``target[keys[i]]`` (one
    key more than masks: the last part takes what is left); the parts sum exactly to ``grad``."""
    rest = grad
    for key, mask in zip(keys[:-1], masks, strict=True):
        part = xp.astype(mask, grad.dtype)
        part *= rest  # multiplying by a 0/1 array: NumPy's where() is ~10x slower
        target[key] = part
        rest = rest - part
    target[keys[-1]] = rest


#: ``split(xp, target, keys, grad, masks)``: :func:`split_into` or a backend's own.
Split = Callable[[Namespace, Array, list[Any], Array, list[Array]], None]


def route_to_maxima(xp: Namespace, dx: Array, dt: Array, masks: Any, k: int, oh: int, ow: int,
                    split: Split) -> None:
    """The masks path of :func:`max_pool_backward` (``k x k`` windows, stride ``k``): each
    element of ``dt`` ``(C, N, oh, ow)`` into ``dx`` ``(C, N, H, W)`` at its window's first
    maximum, through the row masks, then the column masks (``masks`` as
    :func:`max_pool_forward` saved them); the rows and columns no window reads are not
    written. ``split`` writes the parts (NumPy's writes them in place, without temporaries)."""
    col_masks, row_masks = masks
    C, N = dx.shape[0], dx.shape[1]
    dcols = xp.empty((C, N, k * oh, ow), dtype=dx.dtype, device=device(dx))
    split(xp, dcols, [(slice(None), slice(None), slice(i, None, k), slice(None))
                      for i in range(k)], dt, row_masks)
    split(xp, dx, [(slice(None), slice(None), slice(None, k * oh), _win(j, k, ow))
                   for j in range(k)], dcols, col_masks)
