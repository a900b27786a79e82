"""The fused sigmoid + cross-entropy kernel against the plain NumPy formulas."""

from __future__ import annotations

import numpy as np
import pytest

from labelwatch.head import _kernels


def reference(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x64 = x.astype(np.float64)
    p = 1 / (1 + np.exp(-x64))
    loss = (np.maximum(x64, 0) - x64 * y + np.log1p(np.exp(-np.abs(x64)))).mean(axis=1)
    return p, loss


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("n", "n_classes", "scale"), [(1000, 7, 3.0), (40, 1500, 2.0), (3, 4, 200.0), (0, 5, 1.0)]
)
def test_kernel_matches_numpy(dtype: type, n: int, n_classes: int, scale: float) -> None:
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(n, n_classes)) * scale).astype(dtype)
    y = rng.random((n, n_classes)) < 0.3
    p, loss = _kernels.probabilities_and_loss(x, y)
    want_p, want_loss = reference(x, y)
    assert p.dtype == dtype and loss.dtype == np.float64
    rtol = 5e-7 if dtype == np.float32 else 1e-14  # float32: a few ulp
    np.testing.assert_allclose(p, want_p, rtol=rtol, atol=np.finfo(dtype).tiny)  # underflow to 0
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12 if dtype == np.float64 else 1e-6)


def test_numpy_fallback_matches_the_kernel() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 9)) * 4
    y = rng.random((50, 9)) < 0.5
    e, p, loss = np.empty_like(x), np.empty_like(x), np.empty(50)
    _kernels._numpy_block(x, y, e, p, loss)
    want_p, want_loss = _kernels.probabilities_and_loss(x, y)
    np.testing.assert_allclose(p, want_p, rtol=1e-15)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)


def test_nan_stays_nan() -> None:
    p, loss = _kernels.probabilities_and_loss(np.array([[0.0, np.nan]]), np.zeros((1, 2), bool))
    assert np.isnan(p[0, 1]) and p[0, 0] == 0.5 and np.isnan(loss[0])
