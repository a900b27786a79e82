"""The head's one hot loop: sigmoid probabilities and per-example cross-entropy in one go.

``probabilities_and_loss(x, y)`` returns ``sigmoid(x)`` (n, L) and the mean over classes
of the sigmoid cross-entropy (n,), the two things evaluation needs from the logits.
Per cell it needs one ``e = exp(-|x|)``: ``sigmoid(x)`` is ``1 / (1 + e)`` or
``e / (1 + e)``, and the loss ``max(x, 0) - x z + log(1 + e)``, whose logs are summed
per row as the log of a product (one log per row and per 512 classes, not per cell;
the product stays below 2**512).

The exponentials run through NumPy (SIMD on every recent CPU), the rest through a small
compiled kernel when numba is installed (``labelwatch[fast]``), over blocks of rows that
stay in cache. Without numba a chunked NumPy path gives the same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["probabilities_and_loss"]

try:  # the compiled path is optional: pip install 'labelwatch[fast]'
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised in environments without numba
    numba = None  # type: ignore[assignment]
    HAVE_NUMBA = False

# Reassociation lets LLVM vectorize the row sums; no "nnan"/"ninf", so NaN logits stay
# NaN (and are reported by the sketch), and numpy's error model (no zero-division checks).
_FAST = {"reassoc", "contract", "arcp", "nsz"}
_BLOCK_CELLS = 1 << 16  # ~256 KB of float32 per block: stays in L2
_PRODUCT_SPAN = 512  # (1 + e) <= 2, so a product of 512 of them stays finite

FloatArray = npt.NDArray[np.floating[Any]]


if HAVE_NUMBA:

    @numba.njit(nogil=True, cache=True, fastmath=_FAST, error_model="numpy")
    def _neg_abs(x: Any, out: Any) -> None:  # pragma: no cover - compiled
        n, n_classes = x.shape
        for i in range(n):
            for j in range(n_classes):
                out[i, j] = -abs(x[i, j])

    @numba.njit(nogil=True, cache=True, fastmath=_FAST, error_model="numpy")
    def _finish(x: Any, y: Any, e: Any, p: Any, total: Any, one: Any) -> None:  # pragma: no cover
        # Adds each row's summed cross-entropy to ``total``. ``one`` has the dtype of x, so
        # float32 blocks stay float32 (and SIMD-wide); the inner loop has no branch and
        # fixed bounds (a run-time flag, or an inner span loop, there cost 2.5-3x).
        n, n_classes = x.shape
        zero = one - one
        for i in range(n):
            linear = 0.0
            prod = 1.0
            for j in range(n_classes):
                v = x[i, j]
                ej = e[i, j]
                inv = one / (one + ej)
                p[i, j] = inv if v >= zero else ej * inv
                linear += np.float64(max(v, zero) - v * y[i, j])
                prod *= 1.0 + np.float64(ej)
            total[i] += linear + np.log(prod)


def _block_rows(n_classes: int) -> int:
    return max(1, _BLOCK_CELLS // max(n_classes, 1))


def probabilities_and_loss(
    x: FloatArray,
    y: npt.NDArray[np.bool_],
    p_out: FloatArray | None = None,
    loss_out: npt.NDArray[np.float64] | None = None,
) -> tuple[FloatArray, npt.NDArray[np.float64]]:
    """``(sigmoid(x), mean over classes of the sigmoid cross-entropy)`` of (n, L) logits.

    ``x`` float32 or float64 (the probabilities keep its dtype); ``y`` (n, L) bool labels.
    ``p_out`` (n, L) / ``loss_out`` (n,): buffers to fill instead of new arrays (callers
    that go through a large batch in chunks reuse them, sparing the page faults of
    fresh memory).
    """
    x = np.ascontiguousarray(x)
    n, n_classes = x.shape
    p = np.empty_like(x) if p_out is None else p_out
    loss = np.empty(n, dtype=np.float64) if loss_out is None else loss_out
    if n == 0 or n_classes == 0:
        return p, loss
    yy = np.ascontiguousarray(y).view(np.uint8)
    rows = _block_rows(n_classes)
    buf = np.empty((min(rows, n), n_classes), dtype=x.dtype)
    one = x.dtype.type(1)
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        xs, e = x[start:stop], buf[: stop - start]
        ys = yy[start:stop]
        if HAVE_NUMBA:
            _neg_abs(xs, e)
            np.exp(e, out=e)
            total = loss[start:stop]
            total[:] = 0
            # the product of up to _PRODUCT_SPAN factors (1 + e) <= 2 stays finite
            for j0 in range(0, n_classes, _PRODUCT_SPAN):
                cols = slice(j0, j0 + _PRODUCT_SPAN)
                _finish(xs[:, cols], ys[:, cols], e[:, cols], p[start:stop, cols], total, one)
            total /= n_classes
        else:  # pragma: no cover - exercised in environments without numba
            _numpy_block(xs, ys, e, p[start:stop], loss[start:stop])
    return p, loss


def _numpy_block(
    x: FloatArray,
    y: npt.NDArray[np.bool_] | npt.NDArray[np.uint8],
    e: FloatArray,
    p: FloatArray,
    loss: npt.NDArray[np.float64],
) -> None:
    np.abs(x, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)
    np.add(e, 1, out=p)
    np.reciprocal(p, out=p)
    np.multiply(p, e, out=p, where=x < 0)
    linear = np.maximum(x, 0).sum(axis=1, dtype=np.float64)
    linear -= np.where(y != 0, x, 0).sum(axis=1, dtype=np.float64)
    loss[:] = (linear + np.log1p(e.astype(np.float64)).sum(axis=1)) / x.shape[1]
