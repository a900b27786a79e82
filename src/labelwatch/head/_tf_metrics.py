"""TensorFlow 2's evaluation arithmetic as small pure functions of confusion counts.

``tf.keras.metrics.AUC`` (the ``auc`` and ``auc_precision_recall`` of TF's heads) counts
at 200 thresholds ``[0 - eps, 1/199, 2/199, ..., 198/199, 1 + eps]`` (a score is positive
at a threshold when strictly above it) and sums: the trapezoid rule for ROC, and for PR
the "interpolation" of Davis & Goadrich (2006) in TF's closed form. Every ratio is TF's
``divide_no_nan``: 0 where the denominator is 0 (TF's values, not labelwatch's NaN policy).

A ``ScoreSketch`` built with ``bins=TF_BINS`` has the 198 interior thresholds as edges
(``k / 199``), so :func:`tf_confusion` reads TF's counts off it exactly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from labelwatch.metrics import ScoreSketch

__all__ = [
    "TF_BINS",
    "TF_NUM_THRESHOLDS",
    "divide_no_nan",
    "tf_confusion",
    "tf_pr_auc",
    "tf_roc_auc",
    "threshold_key",
]

FloatArray = npt.NDArray[np.float64]

TF_NUM_THRESHOLDS = 200
#: A sketch grid of ``TF_BINS`` bins has edges k / 199: TF's interior AUC thresholds.
TF_BINS = TF_NUM_THRESHOLDS - 1


def divide_no_nan(num: npt.ArrayLike, den: npt.ArrayLike) -> FloatArray:
    """``num / den``, and 0 where ``den == 0`` (``tf.math.divide_no_nan``)."""
    n = np.asarray(num, dtype=np.float64)
    d = np.asarray(den, dtype=np.float64)
    safe = np.where(d == 0, 1.0, d)
    return np.asarray(np.where(d == 0, 0.0, n / safe), dtype=np.float64)


def tf_confusion(
    sketch: ScoreSketch, label: int | None = None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """``(tp, fp, fn, tn)``, each (200,), at TF's AUC thresholds from a sketch whose grid
    has ``TF_BINS`` bins; one label, or every (example, label) cell pooled (None).

    The first threshold (-eps) counts every score positive, zeros included; the last
    (1 + eps) none.
    """
    if sketch.bins != TF_BINS:
        raise ValueError(f"sketch.bins: expected {TF_BINS} (TF's thresholds), got {sketch.bins}")
    edges, tp, fp, _, _ = sketch.confusion_at_edges()
    grid = np.arange(1, TF_BINS, dtype=np.float64) / TF_BINS
    cols = np.searchsorted(edges, grid)
    totals = sketch.counts.sum(axis=-1)  # (L, 3): negative, positive, unlabeled
    if label is None:
        tp_in, fp_in = tp[:, cols].sum(axis=0), fp[:, cols].sum(axis=0)
        neg, pos = totals[:, 0].sum(), totals[:, 1].sum()
    else:
        tp_in, fp_in = tp[label, cols], fp[label, cols]
        neg, pos = totals[label, 0], totals[label, 1]
    tps = np.concatenate([[pos], tp_in, [0.0]])
    fps = np.concatenate([[neg], fp_in, [0.0]])
    return tps, fps, pos - tps, neg - fps


def tf_roc_auc(tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray) -> float:
    """TF's ROC AUC: trapezoids over (fpr, tpr) at decreasing-strictness thresholds."""
    tpr = divide_no_nan(tp, tp + fn)
    fpr = divide_no_nan(fp, fp + tn)
    return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))


def tf_pr_auc(tp: FloatArray, fp: FloatArray, fn: FloatArray) -> float:
    """TF's PR AUC ("interpolation", ``keras.metrics.AUC.interpolate_pr_auc``).

    Between consecutive thresholds A (lower) and B, tp and p = tp + fp vary linearly, so
    precision is (intercept + slope p) / p and its integral over recall is
    ``slope * (dtp + intercept * log(p_A / p_B)) / (tp_B + fn_B)`` (the log ratio taken as
    0 when either end has no predicted positive).
    """
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    dp = p[:-1] - p[1:]
    slope = divide_no_nan(dtp, np.maximum(dp, 0))
    intercept = tp[1:] - slope * p[1:]
    both = (p[:-1] > 0) & (p[1:] > 0)
    ratio = np.where(both, divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
    increment = divide_no_nan(
        slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0)
    )
    return float(np.sum(increment))


def threshold_key(metric: str, threshold: float) -> str:
    """TF's key of a metric at a threshold: ``'<metric>/positive_threshold_%g'``.

    >>> threshold_key("precision", 0.1234567)
    'precision/positive_threshold_0.123457'
    """
    return f"{metric}/positive_threshold_%g" % threshold
