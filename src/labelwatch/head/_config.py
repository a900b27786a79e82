"""Validation of ``MultiLabelHead``'s arguments, as TF 2 does it, as pure functions.

Every error is an :class:`~labelwatch.errors.InvalidInputError` naming the argument, what
was expected and what came.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwatch.errors import InvalidInputError
from labelwatch.head._losses import LOSSES, BuiltinLoss, SigmoidCrossEntropy
from labelwatch.labels import LabelSpace

__all__ = [
    "REDUCTIONS",
    "check_classes",
    "check_decision",
    "check_loss_fn",
    "check_n_classes",
    "check_pos_weight",
    "check_reduction",
    "check_thresholds",
    "check_vocabulary",
]

FloatArray = npt.NDArray[np.float64]
REDUCTIONS = ("sum_over_batch_size", "sum")
_LOSS_FN_REQUIRED = ("labels", "logits")
_LOSS_FN_ALLOWED = ("labels", "logits", "features", "loss_reduction")


def _is_real(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _fn_args(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The named parameters of ``fn`` (TF's ``function_utils.fn_args``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return ()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in params if p.kind in kinds)


def check_n_classes(n_classes: object) -> int:
    """An int > 1 (TF: ``n_classes must be > 1``)."""
    if not isinstance(n_classes, int | np.integer) or isinstance(n_classes, bool):
        raise InvalidInputError("n_classes", "an int > 1", n_classes)
    if n_classes < 2:
        raise InvalidInputError(
            "n_classes",
            "an int > 1 for multi-label classification",
            n_classes,
            hint="one class is binary classification",
        )
    return int(n_classes)


def check_reduction(loss_reduction: object) -> str:
    """``"sum_over_batch_size"`` or ``"sum"``."""
    if loss_reduction not in REDUCTIONS:
        hint = (
            "'none' is unreduced_loss(); TF's 'auto' means 'sum_over_batch_size'"
            if loss_reduction in ("none", "auto")
            else None
        )
        raise InvalidInputError(
            "loss_reduction", f"one of {list(REDUCTIONS)}", loss_reduction, hint=hint
        )
    return str(loss_reduction)


def check_thresholds(thresholds: Iterable[float] | None) -> tuple[float, ...]:
    """TF's metric thresholds: floats in the open interval (0, 1)."""
    if thresholds is None:
        return ()
    if isinstance(thresholds, str | bytes) or not isinstance(thresholds, Iterable):
        raise InvalidInputError("thresholds", "an iterable of floats in (0, 1)", thresholds)
    out = []
    for i, t in enumerate(thresholds):
        if not _is_real(t) or not 0 < float(t) < 1:
            raise InvalidInputError(
                "thresholds", "floats in the open interval (0, 1)", t, hint=f"at position {i}"
            )
        out.append(float(t))
    return tuple(out)


def check_vocabulary(vocabulary: Sequence[str] | None, n_classes: int) -> tuple[str, ...] | None:
    """A list or tuple of exactly ``n_classes`` unique non-empty names, or None."""
    if vocabulary is None:
        return None
    if not isinstance(vocabulary, list | tuple):
        raise InvalidInputError("label_vocabulary", "a list or tuple of str", vocabulary)
    if len(vocabulary) != n_classes:
        raise InvalidInputError(
            "label_vocabulary",
            f"exactly n_classes={n_classes} names",
            f"{len(vocabulary)} names",
        )
    seen: dict[str, int] = {}
    for i, v in enumerate(vocabulary):
        if not isinstance(v, str) or not v:
            raise InvalidInputError(
                "label_vocabulary", "non-empty strings", v, hint=f"at position {i}"
            )
        if v in seen:
            raise InvalidInputError(
                "label_vocabulary",
                "unique names",
                v,
                hint=f"it is at positions {seen[v]} and {i}",
            )
        seen[v] = i
    return tuple(str(v) for v in vocabulary)


def check_pos_weight(pos_weight: npt.ArrayLike | None, space: LabelSpace) -> FloatArray | None:
    """One positive weight, or one per class, as a read-only (n_classes,) array; or None."""
    n_classes = len(space)
    if pos_weight is None:
        return None
    try:
        q = np.asarray(pos_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError("pos_weight", f"{n_classes} positive numbers", pos_weight) from None
    if q.ndim == 0:
        q = np.full(n_classes, float(q))
    if q.shape != (n_classes,):
        raise InvalidInputError(
            "pos_weight", f"one number or shape ({n_classes},), one per class", q.shape
        )
    bad = ~(np.isfinite(q) & (q > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInputError(
            "pos_weight", "finite numbers > 0", float(q[i]), label=space.names[i]
        )
    q.flags.writeable = False
    return q


def check_loss_fn(
    loss_fn: Callable[..., Any] | str | None, pos_weight: FloatArray | None
) -> tuple[BuiltinLoss | None, Callable[..., Any] | None, tuple[str, ...]]:
    """``(built-in loss or None, custom loss_fn or None, the custom function's arguments)``;
    the signature checked as TF's ``validate_loss_fn_args``."""
    if loss_fn is None:
        return SigmoidCrossEntropy(pos_weight), None, ()
    if isinstance(loss_fn, str):
        if loss_fn not in LOSSES:
            raise InvalidInputError("loss_fn", f"a callable or one of {sorted(LOSSES)}", loss_fn)
        return LOSSES[loss_fn](pos_weight), None, ()
    if isinstance(loss_fn, BuiltinLoss):
        if loss_fn.pos_weight is not None and pos_weight is not None:
            raise InvalidInputError(
                "pos_weight",
                "None when loss_fn already has a pos_weight",
                "both",
                hint="give pos_weight in one place",
            )
        if pos_weight is not None:
            loss_fn = loss_fn.with_pos_weight(pos_weight)
        return loss_fn, None, ()
    if not callable(loss_fn):
        raise InvalidInputError(
            "loss_fn", f"a callable, a built-in loss or one of {sorted(LOSSES)}", loss_fn
        )
    if pos_weight is not None:
        raise InvalidInputError(
            "pos_weight",
            "None with a custom loss_fn (it applies to the built-in losses)",
            "a pos_weight",
            hint="weight the positives inside your loss_fn",
        )
    args = _fn_args(loss_fn)
    for required in _LOSS_FN_REQUIRED:
        if required not in args:
            raise InvalidInputError(
                "loss_fn",
                "a function with arguments labels and logits (and optionally features)",
                f"arguments {list(args)}",
                hint=f"loss_fn must contain argument: {required}",
            )
    unexpected = [a for a in args if a not in _LOSS_FN_ALLOWED]
    if unexpected:
        raise InvalidInputError(
            "loss_fn",
            f"only the arguments {list(_LOSS_FN_ALLOWED)}",
            f"unexpected arguments {unexpected}",
        )
    return None, loss_fn, args


def check_classes(
    classes: Iterable[int | str] | None, space: LabelSpace, vocabulary: bool
) -> tuple[int, ...]:
    """Class ids of ``classes_for_class_based_metrics``: in-range ids, or names of the
    vocabulary."""
    n_classes = len(space)
    if not classes:
        return ()
    if isinstance(classes, str | bytes) or not isinstance(classes, Iterable):
        raise InvalidInputError(
            "classes_for_class_based_metrics", "a list of class ids or names", classes
        )
    items = list(classes)
    ids: list[int] = []
    by_name = isinstance(items[0], str)
    for c in items:
        if by_name:
            if not vocabulary:
                raise InvalidInputError(
                    "classes_for_class_based_metrics",
                    f"class ids in [0, {n_classes - 1}] (no label_vocabulary)",
                    c,
                    hint="names need MultiLabelHead(..., label_vocabulary=[...])",
                )
            if not isinstance(c, str) or c not in space:
                raise InvalidInputError(
                    "classes_for_class_based_metrics",
                    "names in label_vocabulary",
                    c,
                    hint=space._did_you_mean(c),
                )
            ids.append(space.index(c))
        else:
            if not isinstance(c, int | np.integer) or isinstance(c, bool):
                raise InvalidInputError(
                    "classes_for_class_based_metrics",
                    "class ids (ints) or names, not a mix",
                    c,
                )
            if not 0 <= c < n_classes:
                raise InvalidInputError(
                    "classes_for_class_based_metrics",
                    f"class ids in the range [0, {n_classes - 1}]",
                    int(c),
                )
            ids.append(int(c))
    return tuple(ids)


def check_decision(threshold: float | npt.ArrayLike, space: LabelSpace) -> FloatArray:
    """One decision threshold in [0, 1], or one per class, as a read-only (n_classes,)
    array."""
    n_classes = len(space)
    try:
        t = np.asarray(threshold, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(
            "decision_threshold", "a number in [0, 1] or one per class", threshold
        ) from None
    if t.ndim == 0:
        t = np.full(n_classes, float(t))
    if t.shape != (n_classes,):
        raise InvalidInputError(
            "decision_threshold", f"one number or shape ({n_classes},)", t.shape
        )
    bad = ~((t >= 0) & (t <= 1))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInputError(
            "decision_threshold", "numbers in [0, 1]", float(t[i]), label=space.names[i]
        )
    t.flags.writeable = False
    return t
