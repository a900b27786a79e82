"""The PyTorch side of the head: labels and weights as tensors beside the logits, and the
differentiable loss. torch is imported lazily; without it, a clear install line.

Hot path: with dense tensor labels the checks are whole-tensor reductions (a min/max and,
for float labels, a count of fractional values), and the default loss is one fused
``binary_cross_entropy_with_logits`` call.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from labelwatch.head._labels import _check_dense, to_multi_hot
from labelwatch.head._losses import is_torch
from labelwatch.labels import LabelSpace

__all__ = [
    "INSTALL_TORCH",
    "float_labels",
    "reduce_loss",
    "require_torch",
    "tensor_weights",
    "weighted_reduce",
]

INSTALL_TORCH = "pip install 'labelwatch[torch]'"


def require_torch() -> ModuleType:
    """The ``torch`` module, or an ImportError that prints the install line."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is installed in the test env
        raise ImportError(f"the PyTorch head needs torch: {INSTALL_TORCH}") from exc
    return torch


def float_labels(
    labels: Any, logits: Any, space: LabelSpace, *, vocabulary: bool, validate: bool = True
) -> Any:
    """``labels`` as a 0/1 tensor of the logits' shape, dtype and device.

    Dense tensors are checked with reductions only (``validate=False`` skips even those,
    for hot loops whose labels are known good); every other form goes through the NumPy
    conversion (:func:`~labelwatch.head._labels.to_multi_hot`).
    """
    torch = require_torch()
    shape = tuple(logits.shape)
    if is_torch(labels) and labels.layout == torch.strided:
        if tuple(labels.shape) != shape:
            _check_dense(np.zeros(tuple(labels.shape), dtype=bool), shape, space)
        if validate and labels.dtype != torch.bool and labels.numel() and not _is_0_1(labels):
            _check_dense(labels.detach().cpu().numpy(), shape, space)  # names the culprit
        return labels.to(device=logits.device, dtype=logits.dtype)
    y = to_multi_hot(labels, shape[:-1], space, vocabulary=vocabulary)
    return torch.from_numpy(y).to(device=logits.device, dtype=logits.dtype)


def _is_0_1(y: Any) -> bool:
    """Whether every value of a dense tensor is 0 or 1, in two passes and one sync.

    Floats: ``y - y*y`` (one ``addcmul``) is 0 exactly at 0 and 1; it is non-zero for any
    other value, NaN and infinities included (``y*y`` cannot round to ``y`` elsewhere:
    the closest case, ``1 - 2**-24``, leaves ``2**-24``). Integers: the min and the max.
    """
    torch = require_torch()
    if y.is_floating_point():
        return int(torch.count_nonzero(torch.addcmul(y, y, y, value=-1))) == 0
    lo, hi = torch.aminmax(y)
    return bool((lo >= 0) & (hi <= 1))


def tensor_weights(weights: np.ndarray[Any, Any] | Any, logits: Any) -> Any:
    """Example weights (already shape-checked, batch shape) as a tensor like the logits."""
    torch = require_torch()
    return torch.as_tensor(np.array(weights), dtype=logits.dtype, device=logits.device)


def reduce_loss(
    logits: Any,
    y: Any,
    weights: Any | None,
    reduction: str,
    pos_weight: np.ndarray[Any, Any] | None,
) -> Any:
    """The default loss reduced like TF 2: one fused cross-entropy call without weights.

    Without weights, the mean over every cell equals the mean over examples of the mean
    over classes (each example has n_classes cells), so ``reduction="mean"`` is exact.
    """
    torch = require_torch()
    F = torch.nn.functional
    q = (
        None
        if pos_weight is None
        else torch.as_tensor(np.array(pos_weight), dtype=logits.dtype, device=logits.device)
    )
    n_classes = logits.shape[-1]
    if weights is None:
        if reduction == "sum_over_batch_size":
            return F.binary_cross_entropy_with_logits(logits, y, pos_weight=q, reduction="mean")
        return (
            F.binary_cross_entropy_with_logits(logits, y, pos_weight=q, reduction="sum") / n_classes
        )
    # sum_b w_b mean_c l_bc (/ N) = sum_bc (w_b / C (/ N)) l_bc: one fused, weighted call
    scale = n_classes * (max(weights.numel(), 1) if reduction == "sum_over_batch_size" else 1)
    cell_weight = (weights / scale).unsqueeze(-1)
    return F.binary_cross_entropy_with_logits(
        logits, y, weight=cell_weight, pos_weight=q, reduction="sum"
    )


def weighted_reduce(per_example: Any, weights: Any | None, reduction: str) -> Any:
    """``sum(w * loss)`` of per-example losses (tensor), divided by their number for
    ``sum_over_batch_size`` (TF 2: by the examples, not by the weight sum)."""
    total = (per_example * weights).sum() if weights is not None else per_example.sum()
    if reduction == "sum_over_batch_size":
        return total / max(per_example.numel(), 1)
    return total
