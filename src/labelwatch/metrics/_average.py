"""Per-label ratios, the undefined-value policy, and averaging over labels.

Policy (everywhere in labelwatch): a metric whose denominator is zero for a label is NaN
there, an ``UndefinedMetricWarning`` says which labels and why, and NaN labels are left
out of the ``macro`` and ``weighted`` averages. An average over no defined label is NaN.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from labelwatch.errors import InvalidInputError, UndefinedMetricWarning

__all__ = ["AVERAGES", "Average", "average_ratio", "average_values", "ratio"]

Average = Literal["micro", "macro", "weighted"] | None
AVERAGES: tuple[Average, ...] = (None, "micro", "macro", "weighted")
FloatArray = npt.NDArray[np.float64]


def check_average(average: object, allowed: Sequence[object] = AVERAGES) -> None:
    if average not in allowed:
        raise InvalidInputError("average", f"one of {list(allowed)}", average)


def ratio(
    num: FloatArray,
    den: FloatArray,
    metric: str,
    why: str,
    labels: Sequence[str] | None = None,
) -> FloatArray:
    """``num / den`` with NaN (and one warning naming the labels) where ``den == 0``."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    undefined = den == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(undefined, np.nan, num / np.where(undefined, 1.0, den))
    if np.any(undefined):
        warn_undefined(metric, why, undefined, labels)
    return np.asarray(out, dtype=np.float64)


def warn_undefined(
    metric: str,
    why: str,
    undefined: npt.NDArray[np.bool_],
    labels: Sequence[str] | None = None,
) -> None:
    where = ""
    if labels is not None and np.ndim(undefined) == 1:
        names = [labels[int(i)] for i in np.flatnonzero(undefined)]
        shown = ", ".join(repr(n) for n in names[:5]) + (" ..." if len(names) > 5 else "")
        where = f" for {len(names)} label(s): {shown}"
    warnings.warn(
        f"{metric} is undefined{where} ({why}); it is NaN there and left out of averages",
        UndefinedMetricWarning,
        stacklevel=4,
    )


def average_values(
    values: FloatArray, average: Average, support: FloatArray | None = None
) -> FloatArray | float:
    """Average per-label ``values`` (L,) leaving NaN out: ``macro`` plain, ``weighted`` by
    ``support``; ``None`` returns the array. (``micro`` is not an average of values.)"""
    if average is None:
        return values
    keep = ~np.isnan(values)
    if average == "macro":
        return float(values[keep].mean()) if keep.any() else float("nan")
    if average == "weighted":
        if support is None:
            raise ValueError("weighted average needs the support")
        w = support[keep]
        total = w.sum()
        return float(np.dot(values[keep], w) / total) if total > 0 else float("nan")
    raise InvalidInputError("average", "one of [None, 'macro', 'weighted'] here", average)


def average_ratio(
    num: FloatArray,
    den: FloatArray,
    average: Average,
    support: FloatArray,
    metric: str,
    why: str,
    labels: Sequence[str] | None = None,
) -> FloatArray | float:
    """A per-label ratio ``num / den`` (L,), or its average: ``micro`` pools the counts."""
    check_average(average)
    if average == "micro":
        return float(ratio(np.asarray(np.sum(num)), np.asarray(np.sum(den)), metric, why))
    return average_values(ratio(num, den, metric, why, labels), average, support)
