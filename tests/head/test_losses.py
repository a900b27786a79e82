"""The loss functions against slow obvious formulas, torch's own cross-entropy, the ASL
reference implementation, and each other (NumPy == torch); stable at logits of +-100."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labelwatch import InvalidInputError
from labelwatch.head import AsymmetricLoss, FocalLoss, SigmoidCrossEntropy

RNG = np.random.default_rng(0)
X = RNG.normal(size=(50, 6)) * 3
Y = (RNG.random((50, 6)) < 0.4).astype(np.float64)
Q = RNG.uniform(0.5, 4.0, size=6)


def naive_ce(y: np.ndarray, x: np.ndarray, q: np.ndarray | float = 1.0) -> np.ndarray:
    p = 1 / (1 + np.exp(-x))
    return -(q * y * np.log(p) + (1 - y) * np.log(1 - p))


def naive_focal(y: np.ndarray, x: np.ndarray, gamma: float, alpha: float | None) -> np.ndarray:
    """torchvision.ops.sigmoid_focal_loss, written out."""
    p = 1 / (1 + np.exp(-x))
    ce = naive_ce(y, x)
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


def reference_asl(
    x: torch.Tensor, y: torch.Tensor, gamma_neg: float, gamma_pos: float, clip: float
) -> torch.Tensor:
    """The ASL paper's reference code (Alibaba-MIIL), per cell, focal weight without grad."""
    xs_pos = torch.sigmoid(x)
    xs_neg = 1 - xs_pos
    if clip > 0:
        xs_neg = (xs_neg + clip).clamp(max=1)
    loss = y * torch.log(xs_pos.clamp(min=1e-8)) + (1 - y) * torch.log(xs_neg.clamp(min=1e-8))
    with torch.no_grad():
        pt = xs_pos * y + xs_neg * (1 - y)
        w = torch.pow(1 - pt, gamma_pos * y + gamma_neg * (1 - y))
    return -(loss * w)


LOSSES = [
    SigmoidCrossEntropy(),
    SigmoidCrossEntropy(Q),
    FocalLoss(),
    FocalLoss(gamma=0.5, alpha=None),
    FocalLoss(Q, gamma=1.0, alpha=0.7),
    AsymmetricLoss(),
    AsymmetricLoss(gamma_neg=2, gamma_pos=0, clip=0.0),
    AsymmetricLoss(Q, clip=0.1),
    AsymmetricLoss(gamma_neg=0.5, gamma_pos=0.5, detach_focal_weight=False),
]


def test_sigmoid_cross_entropy() -> None:
    np.testing.assert_allclose(SigmoidCrossEntropy().elementwise(Y, X), naive_ce(Y, X), rtol=1e-10)
    np.testing.assert_allclose(
        SigmoidCrossEntropy(Q).elementwise(Y, X), naive_ce(Y, X, Q), rtol=1e-10
    )
    xt, yt = torch.tensor(X), torch.tensor(Y)
    want = F.binary_cross_entropy_with_logits(xt, yt, pos_weight=torch.tensor(Q), reduction="none")
    np.testing.assert_allclose(SigmoidCrossEntropy(Q).elementwise(Y, X), want.numpy(), rtol=1e-10)
    out = SigmoidCrossEntropy()(Y, X)
    assert out.shape == (50, 1)
    np.testing.assert_allclose(out[:, 0], naive_ce(Y, X).mean(axis=1), rtol=1e-10)


@pytest.mark.parametrize(("gamma", "alpha"), [(2.0, 0.25), (0.0, None), (1.5, 0.9)])
def test_focal_loss(gamma: float, alpha: float | None) -> None:
    got = FocalLoss(gamma=gamma, alpha=alpha).elementwise(Y, X)
    np.testing.assert_allclose(got, naive_focal(Y, X, gamma, alpha), rtol=1e-10)
    if gamma == 0 and alpha is None:
        np.testing.assert_allclose(got, naive_ce(Y, X), rtol=1e-10)


@pytest.mark.parametrize(
    ("gamma_neg", "gamma_pos", "clip"), [(4, 1, 0.05), (2, 0, 0.0), (3, 2, 0.2)]
)
def test_asymmetric_loss_matches_reference(gamma_neg: float, gamma_pos: float, clip: float) -> None:
    loss = AsymmetricLoss(gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip)
    np.testing.assert_allclose(
        loss.elementwise(Y, X),
        reference_asl(torch.tensor(X), torch.tensor(Y), gamma_neg, gamma_pos, clip).numpy(),
        rtol=1e-9,
    )
    # the same gradient as the reference (focal weights are constants there by default)
    a = torch.tensor(X, requires_grad=True)
    b = torch.tensor(X, requires_grad=True)
    loss.elementwise(torch.tensor(Y), a).sum().backward()
    reference_asl(b, torch.tensor(Y), gamma_neg, gamma_pos, clip).sum().backward()
    assert a.grad is not None and b.grad is not None
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_numpy_and_torch_agree(loss: Any) -> None:
    got = loss(torch.tensor(Y), torch.tensor(X))
    np.testing.assert_allclose(got.numpy(), loss(Y, X), rtol=1e-10)
    got32 = loss(torch.tensor(Y, dtype=torch.float32), torch.tensor(X, dtype=torch.float32))
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), loss(Y, X), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_stable_at_extreme_logits(loss: Any) -> None:
    x = torch.tensor([[100.0, -100.0, 100.0, -100.0, 50.0, -50.0]] * 2, requires_grad=True)
    y = torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0, 0.0, 1.0]])
    out = loss(y, x)
    out.sum().backward()
    assert torch.isfinite(out).all() and x.grad is not None and torch.isfinite(x.grad).all()
    # right answers cost ~0, wrong ones ~|logit| (the cross-entropy of a confident miss)
    np_out = loss(y.numpy().astype(np.float64), x.detach().numpy().astype(np.float64))
    assert np.isfinite(np_out).all()
    np.testing.assert_allclose(out.detach().numpy(), np_out, rtol=1e-5)


def test_cross_entropy_at_extremes_is_exact() -> None:
    x = np.array([[100.0, -100.0, 100.0, -100.0]])
    y = np.array([[1.0, 0.0, 0.0, 1.0]])
    np.testing.assert_allclose(
        SigmoidCrossEntropy().elementwise(y, x), [[0.0, 0.0, 100.0, 100.0]], atol=1e-40
    )


def test_loss_parameter_validation() -> None:
    with pytest.raises(InvalidInputError, match=r"^gamma: expected a number in \[0, inf\], got -1"):
        FocalLoss(gamma=-1)
    with pytest.raises(InvalidInputError, match=r"^alpha: expected a number in \[0, 1\], got 2"):
        FocalLoss(alpha=2)
    with pytest.raises(InvalidInputError, match=r"^clip: .*got 1.5"):
        AsymmetricLoss(clip=1.5)
    with pytest.raises(InvalidInputError, match=r"^gamma_neg: .*got 'x'"):
        AsymmetricLoss(gamma_neg="x")  # type: ignore[arg-type]
