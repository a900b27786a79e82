"""Multi-label losses as pure functions of ``(labels, logits)``, on NumPy or PyTorch.

Each ``*_elementwise`` function returns the loss of every (example, class) cell, shape
``logits.shape``; the loss objects (:class:`SigmoidCrossEntropy`, :class:`FocalLoss`,
:class:`AsymmetricLoss`) average it over classes, the per-example loss of TF's
``multi_label_head`` (shape ``logits.shape[:-1] + (1,)``), and can be passed as a
head's ``loss_fn``. Labels are 0/1 values of the logits' float dtype. Everything is
written with log-sigmoids, so logits of +-100 give finite values and gradients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwatch.errors import InvalidInputError

__all__ = [
    "LOSSES",
    "AsymmetricLoss",
    "BuiltinLoss",
    "FocalLoss",
    "SigmoidCrossEntropy",
    "asymmetric_elementwise",
    "focal_elementwise",
    "is_torch",
    "log_sigmoid",
    "sigmoid",
    "sigmoid_cross_entropy_elementwise",
]


def is_torch(x: object) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))`` without overflow, in the dtype of ``x``."""
    if is_torch(x):
        return x.sigmoid()
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    inv = 1 / (1 + e)
    return np.where(x >= 0, inv, e * inv)


def log_sigmoid(x: Any) -> Any:
    """``log(sigmoid(x)) = -softplus(-x)``, stable at any magnitude."""
    if is_torch(x):
        import torch.nn.functional as F

        return F.logsigmoid(x)
    x = np.asarray(x)
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def _pos_weight_like(pos_weight: npt.NDArray[np.float64] | None, like: Any) -> Any:
    if pos_weight is None:
        return None
    if is_torch(like):
        import torch

        return torch.as_tensor(np.array(pos_weight), dtype=like.dtype, device=like.device)
    return pos_weight.astype(np.asarray(like).dtype, copy=False)


def sigmoid_cross_entropy_elementwise(
    labels: Any, logits: Any, pos_weight: npt.NDArray[np.float64] | None = None
) -> Any:
    """``-[q z log σ(x) + (1 - z) log(1 - σ(x))]`` per cell (q = ``pos_weight``, default 1).

    Without ``pos_weight`` this is TF's ``sigmoid_cross_entropy_with_logits``
    (``max(x, 0) - x z + log(1 + exp(-|x|))``); with it, TF's
    ``weighted_cross_entropy_with_logits`` and torch's ``pos_weight``.
    """
    q = _pos_weight_like(pos_weight, logits)
    if is_torch(logits):
        import torch.nn.functional as F

        return F.binary_cross_entropy_with_logits(logits, labels, reduction="none", pos_weight=q)
    x, z = np.asarray(logits), np.asarray(labels)
    softplus_neg = np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))  # -log σ(x)
    if q is None:
        return (1 - z) * x + softplus_neg
    return (1 - z) * x + (1 + (q - 1) * z) * softplus_neg


def focal_elementwise(
    labels: Any,
    logits: Any,
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    pos_weight: npt.NDArray[np.float64] | None = None,
) -> Any:
    """Sigmoid focal loss (Lin et al. 2017; torchvision's ``sigmoid_focal_loss``) per cell:
    ``α_t (1 - p_t)^γ CE``, with ``α_t = α z + (1 - α)(1 - z)`` (no α when None)."""
    ce = sigmoid_cross_entropy_elementwise(labels, logits, pos_weight)
    # (1 - p_t)^γ = exp(γ log(1 - p_t)), log(1 - p_t) = z log σ(-x) + (1 - z) log σ(x):
    # no cancellation in 1 - p, and a finite gradient where 1 - p_t underflows to 0
    log_miss = labels * log_sigmoid(-logits) + (1 - labels) * log_sigmoid(logits)
    loss = ce * _exp(gamma * log_miss)
    if alpha is not None:
        loss = loss * (alpha * labels + (1 - alpha) * (1 - labels))
    return loss


def asymmetric_elementwise(
    labels: Any,
    logits: Any,
    gamma_neg: float = 4.0,
    gamma_pos: float = 1.0,
    clip: float = 0.05,
    pos_weight: npt.NDArray[np.float64] | None = None,
    detach_focal_weight: bool = True,
) -> Any:
    """Asymmetric loss (ASL, Ridnik et al. 2021) per cell.

    Positives: ``-q (1 - p)^γ+ log p``; negatives: ``-p_m^γ- log(1 - p_m)`` with the
    shifted probability ``p_m = max(p - clip, 0)``. ``detach_focal_weight`` treats the
    ``(.)^γ`` factors as constants in backprop, like the reference implementation's
    default ``disable_torch_grad_focal_loss=True`` (values are the same either way).
    """
    torch_in = is_torch(logits)
    pos_log = -log_sigmoid(logits)
    w_pos = _exp(gamma_pos * log_sigmoid(-logits))  # (1 - p)^γ+
    if clip > 0:
        p_m = sigmoid(logits) - clip
        keep = sigmoid(-logits) + clip  # 1 - p_m, >= clip
        keep = keep.clamp(max=1) if torch_in else np.minimum(keep, 1)
        neg_log = -(keep.log() if torch_in else np.log(keep))
        # p_m^γ- as exp(γ- log p_m) where p_m > 0, else 0: finite gradients for any γ-
        shifted = p_m > 0
        safe = _where(shifted, p_m, 1.0)
        w_neg = _where(shifted, _exp(gamma_neg * (safe.log() if torch_in else np.log(safe))), 0.0)
    else:
        neg_log = -log_sigmoid(-logits)
        w_neg = _exp(gamma_neg * log_sigmoid(logits))  # p^γ-
    if torch_in and detach_focal_weight:
        w_pos, w_neg = w_pos.detach(), w_neg.detach()
    q = _pos_weight_like(pos_weight, logits)
    pos = labels * w_pos * pos_log
    if q is not None:
        pos = pos * q
    return pos + (1 - labels) * w_neg * neg_log


def _exp(x: Any) -> Any:
    return x.exp() if is_torch(x) else np.exp(x)


def _where(cond: Any, a: Any, b: float) -> Any:
    if is_torch(cond):
        import torch

        return torch.where(cond, a, torch.as_tensor(b, dtype=a.dtype, device=a.device))
    return np.where(cond, a, b)


def _mean_classes(loss: Any) -> Any:
    if is_torch(loss):
        return loss.mean(dim=-1, keepdim=True)
    return np.mean(loss, axis=-1, keepdims=True)


def _check_number(name: str, value: object, lo: float, hi: float, *, low_open: bool) -> float:
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    v = float(value) if ok else math.nan  # type: ignore[arg-type]
    inside = (v > lo if low_open else v >= lo) and v <= hi
    if not inside:
        bound = f"{'(' if low_open else '['}{lo:g}, {hi:g}]"
        raise InvalidInputError(name, f"a number in {bound}", value)
    return v


@dataclass(frozen=True)
class BuiltinLoss:
    """Base of the built-in losses: ``loss(labels, logits)`` -> per-example (..., 1)."""

    pos_weight: npt.NDArray[np.float64] | None = field(default=None, compare=False)

    def elementwise(self, labels: Any, logits: Any) -> Any:  # pragma: no cover - abstract
        """Loss per (example, class) cell, shape ``logits.shape``."""
        raise NotImplementedError

    def __call__(self, labels: Any, logits: Any) -> Any:
        """Per-example loss, the mean over classes: shape ``logits.shape[:-1] + (1,)``."""
        return _mean_classes(self.elementwise(labels, logits))

    def with_pos_weight(self, pos_weight: npt.NDArray[np.float64] | None) -> BuiltinLoss:
        """The same loss with another per-class ``pos_weight``."""
        return replace(self, pos_weight=pos_weight)


@dataclass(frozen=True)
class SigmoidCrossEntropy(BuiltinLoss):
    """TF's default: sigmoid cross-entropy averaged over classes (``pos_weight`` optional).

    >>> float(SigmoidCrossEntropy()(np.array([[1.0, 0.0]]), np.array([[-1.0, 1.0]]))[0, 0])
    1.3132616875182228
    """

    def elementwise(self, labels: Any, logits: Any) -> Any:
        """Per-cell sigmoid cross-entropy."""
        return sigmoid_cross_entropy_elementwise(labels, logits, self.pos_weight)


@dataclass(frozen=True)
class FocalLoss(BuiltinLoss):
    """Sigmoid focal loss averaged over classes: ``gamma`` (>= 0) focuses on hard cells,
    ``alpha`` in [0, 1] balances positives against negatives (None: no balancing)."""

    gamma: float = 2.0
    alpha: float | None = 0.25

    def __post_init__(self) -> None:
        _check_number("gamma", self.gamma, 0.0, math.inf, low_open=False)
        if self.alpha is not None:
            _check_number("alpha", self.alpha, 0.0, 1.0, low_open=False)

    def elementwise(self, labels: Any, logits: Any) -> Any:
        """Per-cell focal loss."""
        return focal_elementwise(labels, logits, self.gamma, self.alpha, self.pos_weight)


@dataclass(frozen=True)
class AsymmetricLoss(BuiltinLoss):
    """Asymmetric loss (ASL) averaged over classes: ``gamma_neg`` / ``gamma_pos`` focusing
    of negatives / positives, ``clip`` the probability margin that discards easy
    negatives. Defaults are the paper's (4, 1, 0.05)."""

    gamma_neg: float = 4.0
    gamma_pos: float = 1.0
    clip: float = 0.05
    detach_focal_weight: bool = True

    def __post_init__(self) -> None:
        _check_number("gamma_neg", self.gamma_neg, 0.0, math.inf, low_open=False)
        _check_number("gamma_pos", self.gamma_pos, 0.0, math.inf, low_open=False)
        _check_number("clip", self.clip, 0.0, 1.0, low_open=False)

    def elementwise(self, labels: Any, logits: Any) -> Any:
        """Per-cell asymmetric loss."""
        return asymmetric_elementwise(
            labels,
            logits,
            self.gamma_neg,
            self.gamma_pos,
            self.clip,
            self.pos_weight,
            self.detach_focal_weight,
        )


#: The built-in losses by the names ``loss_fn`` accepts.
LOSSES: Mapping[str, type[BuiltinLoss]] = {
    "sigmoid_cross_entropy": SigmoidCrossEntropy,
    "focal": FocalLoss,
    "asymmetric": AsymmetricLoss,
    "asl": AsymmetricLoss,
}
