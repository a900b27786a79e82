"""``ScoreSketch``: the one mergeable summary of a multi-label model's scores.

``counts[label, outcome, bin]`` is a weighted histogram of each label's score split by
outcome (0 negative, 1 positive, 2 unlabeled). Its edges are a uniform grid united with
the decision thresholds; bin ``b`` holds ``edges[b-1] < s <= edges[b]`` and bin 0 the
exact zeros, so ``s > edges[j]`` (predicted positive) is exactly "bin > j": every metric
at an edge is exact. Every metric below is a small function of cumulative counts.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from labelwatch.errors import IncompatibleMergeError, InvalidInputError
from labelwatch.labels import LabelSpace
from labelwatch.metrics._average import (
    Average,
    average_ratio,
    average_values,
    check_average,
    warn_undefined,
)
from labelwatch.metrics._binning import N_OUTCOMES, bin_counts, make_edges

__all__ = ["OUTCOMES", "ScoreSketch"]

FloatArray = npt.NDArray[np.float64]
OUTCOMES = ("negative", "positive", "unlabeled")
Outcome = Literal["negative", "positive", "unlabeled"]
_MAGIC = b"LWSKETCH"
_FORMAT = "labelwatch.ScoreSketch/1"
_MAX_BINS = 100_000


def _as_space(space: LabelSpace | Iterable[str]) -> LabelSpace:
    return space if isinstance(space, LabelSpace) else LabelSpace(space)


def _check_thresholds(thresholds: npt.ArrayLike) -> tuple[float, ...]:
    try:
        arr = np.asarray(thresholds, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InvalidInputError("thresholds", "numbers in [0, 1]", thresholds) from None
    bad = ~((arr >= 0) & (arr <= 1))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInputError(
            "thresholds", "numbers in [0, 1]", float(arr[i]), hint=f"at position {i}"
        )
    return tuple(float(t) for t in np.unique(arr))


def _check_bins(bins: object) -> int:
    if (
        isinstance(bins, bool)
        or not isinstance(bins, int | np.integer)
        or not 1 <= bins <= _MAX_BINS
    ):
        raise InvalidInputError("bins", f"an integer from 1 to {_MAX_BINS}", bins)
    return int(bins)


class ScoreSketch:
    """Weighted per-label score histograms split by outcome; exact metrics at thresholds.

    Build one with :meth:`from_arrays`, merge with ``+``, store with :meth:`to_bytes`.

    >>> sk = ScoreSketch.from_arrays(["a", "b"], [[0.9, 0.2], [0.4, 0.7]], [[1, 0], [0, 1]])
    >>> sk.precision(0.5).tolist()
    [1.0, 1.0]
    >>> sk.roc_auc(average="macro")
    1.0
    """

    def __init__(
        self,
        labels: LabelSpace | Iterable[str],
        counts: npt.ArrayLike,
        *,
        bins: int = 200,
        thresholds: npt.ArrayLike = (0.5,),
    ) -> None:
        """A sketch from its parts; ``counts`` has shape (L, 3, len(edges))."""
        self.labels = _as_space(labels)
        self.bins = _check_bins(bins)
        self.thresholds = _check_thresholds(thresholds)
        self.edges = make_edges(self.bins, self.thresholds)
        self.edges.flags.writeable = False
        shape = (len(self.labels), N_OUTCOMES, len(self.edges))
        try:
            arr = np.array(counts, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(
                "counts", f"numbers in an array of shape {shape}", "ragged or non-numeric data"
            ) from None
        if arr.shape != shape:
            raise InvalidInputError("counts", f"an array of shape {shape}", arr.shape)
        if not (np.isfinite(arr).all() and (arr >= 0).all()):
            raise InvalidInputError("counts", "finite non-negative numbers", "other values")
        arr.flags.writeable = False
        self.counts = arr

    # ----------------------------------------------------------------- building
    @classmethod
    def empty(
        cls,
        labels: LabelSpace | Iterable[str],
        *,
        thresholds: npt.ArrayLike = (0.5,),
        bins: int = 200,
    ) -> ScoreSketch:
        """A sketch with no data: the identity of ``+``."""
        space = _as_space(labels)
        m = len(make_edges(_check_bins(bins), _check_thresholds(thresholds)))
        return cls(space, np.zeros((len(space), N_OUTCOMES, m)), bins=bins, thresholds=thresholds)

    @classmethod
    def from_arrays(
        cls,
        space: LabelSpace | Iterable[str],
        scores: Any,
        actuals: Any = None,
        weights: npt.ArrayLike | None = None,
        thresholds: npt.ArrayLike = (0.5,),
        bins: int = 200,
        *,
        engine: str | None = None,
    ) -> ScoreSketch:
        """Summarize ``scores`` (n, L) in [0, 1] and optional ``actuals`` (n, L) in one pass.

        ``scores`` and ``actuals`` take any form ``LabelSpace.encode_scores`` /
        ``encode_labels`` takes (arrays, dicts, names, sparse, tensors); a float32 or
        float64 array is used without a copy. ``actuals=None`` counts every score as
        unlabeled. ``weights`` (n,): non-negative example weights (default 1).
        ``thresholds``: decision thresholds made exact edges beside the uniform grid of
        ``bins`` bins. ``engine``: "numba" (default when installed) or "numpy".
        """
        space = _as_space(space)
        bins = _check_bins(bins)
        ths = _check_thresholds(thresholds)
        edges = make_edges(bins, ths)
        s = _prepare_scores(space, scores)
        n = s.shape[0]
        y = None
        if actuals is not None:
            y = actuals if _is_bool_matrix(actuals, space) else space.encode_labels(actuals)
            if y.shape != s.shape:
                raise InvalidInputError("actuals", f"shape {s.shape} like the scores", y.shape)
            y = np.ascontiguousarray(y)
        w = _prepare_weights(weights, n)
        counts, bad = bin_counts(edges, bins, s, y, w, engine)
        if bad is not None:
            row, j = bad
            raise InvalidInputError(
                "scores", "a number in [0, 1]", float(s[row, j]), row=row, label=space.names[j]
            )
        assert counts is not None
        return cls(space, counts, bins=bins, thresholds=ths)

    # ------------------------------------------------------------------ merging
    def _check_compatible(self, other: ScoreSketch) -> None:
        if self.labels != other.labels:
            raise IncompatibleMergeError(
                f"cannot merge sketches of different label spaces: left {self.labels!r}, "
                f"right {other.labels!r}"
            )
        if self.bins != other.bins or self.thresholds != other.thresholds:
            raise IncompatibleMergeError(
                "cannot merge sketches with different edges: left has bins="
                f"{self.bins}, thresholds={list(self.thresholds)}; right has bins="
                f"{other.bins}, thresholds={list(other.thresholds)}"
            )

    def __add__(self, other: object) -> ScoreSketch:
        if not isinstance(other, ScoreSketch):
            return NotImplemented
        self._check_compatible(other)
        return ScoreSketch(
            self.labels, self.counts + other.counts, bins=self.bins, thresholds=self.thresholds
        )

    def __radd__(self, other: object) -> ScoreSketch:
        if isinstance(other, int) and other == 0:  # sum(sketches)
            return self
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScoreSketch):
            return NotImplemented
        return (
            self.labels == other.labels
            and self.bins == other.bins
            and self.thresholds == other.thresholds
            and np.array_equal(self.counts, other.counts)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"ScoreSketch({len(self.labels)} labels, {len(self.edges)} bins, "
            f"thresholds={list(self.thresholds)}, "
            f"n={self.counts.sum(axis=(1, 2)).max(initial=0):g})"
        )

    # ------------------------------------------------------------ serialization
    def _header(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "labels": list(self.labels.names),
            "bins": self.bins,
            "thresholds": list(self.thresholds),
        }

    def to_bytes(self) -> bytes:
        """Compact binary form: a JSON header and the little-endian float64 counts."""
        header = json.dumps(self._header(), separators=(",", ":")).encode()
        body = self.counts.astype("<f8", copy=False).tobytes()
        return _MAGIC + struct.pack("<I", len(header)) + header + body

    @classmethod
    def from_bytes(cls, data: bytes) -> ScoreSketch:
        """Inverse of :meth:`to_bytes` (exact)."""
        if not isinstance(data, bytes | bytearray | memoryview) or bytes(data[:8]) != _MAGIC:
            raise InvalidInputError("data", f"bytes starting with {_MAGIC!r}", bytes(data[:8]))
        (size,) = struct.unpack("<I", bytes(data[8:12]))
        try:
            header = json.loads(bytes(data[12 : 12 + size]))
        except ValueError:
            raise InvalidInputError("data", "a JSON header", bytes(data[12 : 12 + size])) from None
        sketch = cls.empty(header["labels"], thresholds=header["thresholds"], bins=header["bins"])
        body = np.frombuffer(bytes(data[12 + size :]), dtype="<f8")
        if body.size != sketch.counts.size:
            raise InvalidInputError(
                "data", f"{sketch.counts.size} float64 counts after the header", body.size
            )
        return cls(
            sketch.labels,
            body.reshape(sketch.counts.shape),
            bins=sketch.bins,
            thresholds=sketch.thresholds,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (floats round-trip exactly through ``json``)."""
        return {**self._header(), "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreSketch:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            got = data.get("format") if isinstance(data, dict) else data
            raise InvalidInputError("format", repr(_FORMAT), got)
        missing = [k for k in ("labels", "counts", "bins", "thresholds") if k not in data]
        if missing:
            raise InvalidInputError(
                "sketch", "keys labels, counts, bins and thresholds", f"no {missing}"
            )
        return cls(data["labels"], data["counts"], bins=data["bins"], thresholds=data["thresholds"])

    # ------------------------------------------------------------ raw counts
    @cached_property
    def _above(self) -> FloatArray:
        """``above[l, o, j]``: weight with score > edges[j] (bins > j), shape (L, 3, m)."""
        tail = np.cumsum(self.counts[..., ::-1], axis=-1)[..., ::-1]
        out = np.zeros_like(self.counts)
        out[..., :-1] = tail[..., 1:]
        return out

    @cached_property
    def _totals(self) -> FloatArray:
        return np.asarray(self.counts.sum(axis=-1))

    def _label_index(self, label: str | int | None) -> int | None:
        if label is None:
            return None
        if isinstance(label, str):
            if label not in self.labels:
                raise InvalidInputError(
                    "label", f"one of the sketch's {len(self.labels)} labels", label
                )
            return self.labels.index(label)
        if isinstance(label, int | np.integer) and 0 <= label < len(self.labels):
            return int(label)
        raise InvalidInputError("label", f"a name or an index in [0, {len(self.labels)})", label)

    def _threshold_index(self, t: npt.ArrayLike | None) -> npt.NDArray[np.intp]:
        """Per-label edge index of threshold ``t`` (one, per label, or the sketch's own)."""
        n_labels = len(self.labels)
        if t is None:
            if len(self.thresholds) != 1:
                raise InvalidInputError(
                    "t",
                    f"a threshold (the sketch has several: {list(self.thresholds)})",
                    None,
                )
            t = self.thresholds[0]
        arr = np.asarray(t, dtype=np.float64)
        if arr.ndim == 0:
            arr = np.full(n_labels, float(arr))
        if arr.shape != (n_labels,):
            raise InvalidInputError("t", f"one threshold or {n_labels} (one per label)", t)
        idx = np.searchsorted(self.edges, arr)
        clipped = np.minimum(idx, len(self.edges) - 1)
        missing = self.edges[clipped] != arr
        if missing.any():
            i = int(np.argmax(missing))
            raise InvalidInputError(
                "t",
                "a threshold on the sketch's edges",
                float(arr[i]),
                label=self.labels.names[i],
                hint=f"build the sketch with thresholds=[..., {float(arr[i])!r}] "
                f"(its grid has {self.bins} bins)",
            )
        return np.asarray(clipped, dtype=np.intp)

    def count(self, outcome: Outcome | None = None) -> FloatArray:
        """Weighted examples per label (L,): all, or those of one outcome."""
        if outcome is None:
            return np.asarray(self._totals.sum(axis=1))
        if outcome not in OUTCOMES:
            raise InvalidInputError("outcome", f"one of {list(OUTCOMES)} or None", outcome)
        return np.asarray(self._totals[:, OUTCOMES.index(outcome)])

    def confusion(
        self, t: npt.ArrayLike | None = None
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Weighted ``(tp, fp, fn, tn)`` per label (L,) at threshold ``t`` (labelled only)."""
        j = self._threshold_index(t)
        rows = np.arange(len(self.labels))
        tp = self._above[rows, 1, j]
        fp = self._above[rows, 0, j]
        return tp, fp, self._totals[:, 1] - tp, self._totals[:, 0] - fp

    def confusion_at_edges(
        self,
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """``(edges (m,), tp, fp, fn, tn)`` with each count of shape (L, m): every threshold."""
        tp = self._above[:, 1, :]
        fp = self._above[:, 0, :]
        return (
            np.asarray(self.edges),
            tp,
            fp,
            self._totals[:, 1, None] - tp,
            self._totals[:, 0, None] - fp,
        )

    # ----------------------------------------------------- threshold metrics
    def _names(self) -> tuple[str, ...]:
        return self.labels.names

    def precision(
        self, t: npt.ArrayLike | None = None, average: Average = None
    ) -> FloatArray | float:
        """tp / (tp + fp) at ``t``: per label (L,) or averaged (micro/macro/weighted)."""
        tp, fp, fn, _ = self.confusion(t)
        return average_ratio(
            tp, tp + fp, average, tp + fn, "precision", "no predicted positives", self._names()
        )

    def recall(self, t: npt.ArrayLike | None = None, average: Average = None) -> FloatArray | float:
        """tp / (tp + fn) at ``t``."""
        tp, _, fn, _ = self.confusion(t)
        return average_ratio(
            tp, tp + fn, average, tp + fn, "recall", "no positive actuals", self._names()
        )

    def fbeta(
        self, t: npt.ArrayLike | None = None, beta: float = 1.0, average: Average = None
    ) -> FloatArray | float:
        """(1 + b²) tp / ((1 + b²) tp + b² fn + fp) at ``t``."""
        if not (isinstance(beta, int | float) and beta > 0 and np.isfinite(beta)):
            raise InvalidInputError("beta", "a positive number", beta)
        tp, fp, fn, _ = self.confusion(t)
        b2 = float(beta) ** 2
        return average_ratio(
            (1 + b2) * tp,
            (1 + b2) * tp + b2 * fn + fp,
            average,
            tp + fn,
            "f-score",
            "no positives and no predicted positives",
            self._names(),
        )

    def f1(self, t: npt.ArrayLike | None = None, average: Average = None) -> FloatArray | float:
        """2 tp / (2 tp + fn + fp) at ``t``."""
        return self.fbeta(t, 1.0, average)

    def accuracy(
        self, t: npt.ArrayLike | None = None, average: Average = None
    ) -> FloatArray | float:
        """(tp + tn) / labelled at ``t``; micro accuracy is 1 - hamming loss."""
        tp, fp, fn, tn = self.confusion(t)
        return average_ratio(
            tp + tn, tp + fp + fn + tn, average, tp + fn, "accuracy", "no actuals", self._names()
        )

    def specificity(
        self, t: npt.ArrayLike | None = None, average: Average = None
    ) -> FloatArray | float:
        """tn / (tn + fp) at ``t`` (the true negative rate)."""
        tp, fp, fn, tn = self.confusion(t)
        return average_ratio(
            tn, tn + fp, average, tp + fn, "specificity", "no negative actuals", self._names()
        )

    def prevalence(self, average: Average = None) -> FloatArray | float:
        """Share of labelled examples whose actual is positive."""
        neg, pos = self._totals[:, 0], self._totals[:, 1]
        return average_ratio(
            pos, pos + neg, average, pos, "prevalence", "no actuals", self._names()
        )

    def predicted_positive_rate(
        self, t: npt.ArrayLike | None = None, average: Average = None
    ) -> FloatArray | float:
        """Share of all examples (labelled or not) with score > ``t``."""
        j = self._threshold_index(t)
        above = self._above[np.arange(len(self.labels)), :, j].sum(axis=1)
        total = self._totals.sum(axis=1)
        return average_ratio(
            above,
            total,
            average,
            self._totals[:, 1],
            "predicted positive rate",
            "no examples",
            self._names(),
        )

    @cached_property
    def _centers(self) -> FloatArray:
        """Representative score of each bin: 0 for the zeros bin, else the bin's midpoint."""
        centers = np.zeros(len(self.edges))
        centers[1:] = (self.edges[1:] + self.edges[:-1]) / 2
        return centers

    def mean_score(
        self, average: Average = None, outcome: Outcome | None = None
    ) -> FloatArray | float:
        """Mean score per label, from bin midpoints (within half a bin width of the exact)."""
        if outcome is not None and outcome not in OUTCOMES:
            raise InvalidInputError("outcome", f"one of {list(OUTCOMES)} or None", outcome)
        counts = (
            self.counts.sum(axis=1) if outcome is None else self.counts[:, OUTCOMES.index(outcome)]
        )
        return average_ratio(
            counts @ self._centers,
            counts.sum(axis=1),
            average,
            self._totals[:, 1],
            "mean score",
            "no examples",
            self._names(),
        )

    # ----------------------------------------------------------------- curves
    def _pooled(self, label: str | int | None) -> FloatArray:
        """(3, m) counts of one label, or of all labels pooled (micro) when None."""
        i = self._label_index(label)
        return np.asarray(self.counts.sum(axis=0) if i is None else self.counts[i])

    @staticmethod
    def _cum_from_top(counts: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Cumulative (fp, tp) from the top bin down, with a leading 0: shape (..., m+1)."""
        rev = counts[..., ::-1]
        zero = np.zeros((*counts.shape[:-2], 1))
        fps = np.concatenate([zero, np.cumsum(rev[..., 0, :], axis=-1)], axis=-1)
        tps = np.concatenate([zero, np.cumsum(rev[..., 1, :], axis=-1)], axis=-1)
        return fps, tps

    def _curve_thresholds(self) -> FloatArray:
        return np.concatenate([self.edges[::-1], [-np.inf]])

    def roc_curve(
        self, label: str | int | None = None
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(fpr, tpr, thresholds)`` of one label (None: all labels pooled).

        ``thresholds`` decrease from 1 to -inf; point k predicts positive when
        score > thresholds[k]. Undefined rates (no positives / negatives) are NaN.
        """
        fps, tps = self._cum_from_top(self._pooled(label))
        with np.errstate(invalid="ignore", divide="ignore"):
            fpr = fps / fps[-1] if fps[-1] > 0 else np.full_like(fps, np.nan)
            tpr = tps / tps[-1] if tps[-1] > 0 else np.full_like(tps, np.nan)
        return fpr, tpr, self._curve_thresholds()

    def pr_curve(self, label: str | int | None = None) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(precision, recall, thresholds)`` of one label (None: pooled), thresholds as in
        :meth:`roc_curve`; precision is NaN where nothing is predicted positive."""
        fps, tps = self._cum_from_top(self._pooled(label))
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = np.where(tps + fps > 0, tps / np.where(tps + fps > 0, tps + fps, 1), np.nan)
            rec = tps / tps[-1] if tps[-1] > 0 else np.full_like(tps, np.nan)
        return prec, rec, self._curve_thresholds()

    def _area_metric(
        self,
        per_label: FloatArray,
        pooled: float,
        average: Average,
        metric: str,
        why: str,
        undefined: npt.NDArray[np.bool_],
    ) -> FloatArray | float:
        check_average(average)
        if average == "micro":
            return pooled
        if undefined.any():
            warn_undefined(metric, why, undefined, self._names())
        return average_values(per_label, average, self._totals[:, 1])

    def roc_auc(self, average: Average = "macro") -> FloatArray | float:
        """Area under the ROC curve by the trapezoid rule over the bins (exact up to ties
        within a bin: at 200 bins within ~1e-4 of the exact area). NaN for a label with no
        positives or no negatives."""
        per_label, undefined = _roc_auc(self.counts)
        pooled, _ = _roc_auc(self.counts.sum(axis=0, keepdims=True))
        if average == "micro" and np.isnan(pooled[0]):
            warn_undefined("ROC AUC", "no positives or no negatives", np.array(True))
        return self._area_metric(
            per_label,
            float(pooled[0]),
            average,
            "ROC AUC",
            "no positives or no negatives",
            undefined,
        )

    def average_precision(self, average: Average = "macro") -> FloatArray | float:
        """Area under the PR curve, precision interpolated inside each bin (positives and
        negatives spread evenly through it). NaN for a label with no positives."""
        per_label, undefined = _average_precision(self.counts)
        pooled, _ = _average_precision(self.counts.sum(axis=0, keepdims=True))
        if average == "micro" and np.isnan(pooled[0]):
            warn_undefined("average precision", "no positives", np.array(True))
        return self._area_metric(
            per_label, float(pooled[0]), average, "average precision", "no positives", undefined
        )

    # ------------------------------------------------------------ calibration
    def reliability_table(
        self, label: str | int | None = None, n_bins: int = 10
    ) -> dict[str, FloatArray]:
        """Calibration table of one label (None: pooled) over ``n_bins`` equal-width bins
        ``(lower, upper]`` (the first includes 0): keys ``lower``, ``upper``, ``count``
        (labelled weight), ``mean_score`` and ``fraction_positive`` (NaN when empty).

        A sketch bin goes wholly to the calibration bin of its upper edge (exact when
        ``n_bins`` divides ``bins``); its scores count at the sketch bin's midpoint.
        """
        n_bins = _check_bins(n_bins)
        counts = self._pooled(label)[:2]  # labelled only
        group = self._calibration_groups(n_bins)
        weight = np.bincount(group, weights=counts.sum(axis=0), minlength=n_bins)
        pos = np.bincount(group, weights=counts[1], minlength=n_bins)
        score = np.bincount(group, weights=counts.sum(axis=0) * self._centers, minlength=n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(weight > 0, score / np.where(weight > 0, weight, 1), np.nan)
            frac = np.where(weight > 0, pos / np.where(weight > 0, weight, 1), np.nan)
        grid = np.arange(n_bins + 1) / n_bins
        return {
            "lower": grid[:-1],
            "upper": grid[1:],
            "count": weight,
            "mean_score": mean,
            "fraction_positive": frac,
        }

    def _calibration_groups(self, n_bins: int) -> npt.NDArray[np.intp]:
        grid = np.arange(n_bins + 1) / n_bins
        return np.clip(np.searchsorted(grid, self.edges, side="left") - 1, 0, n_bins - 1)

    def expected_calibration_error(
        self, n_bins: int = 10, average: Average = "micro"
    ) -> FloatArray | float:
        """Σ_bins (n_bin / n) |fraction_positive - mean_score| over ``n_bins`` equal-width
        bins (see :meth:`reliability_table`); per label, pooled (micro) or averaged."""
        check_average(average)
        if average == "micro":
            return _ece(self.reliability_table(None, n_bins))
        values = np.array(
            [_ece(self.reliability_table(i, n_bins)) for i in range(len(self.labels))]
        )
        if np.isnan(values).any():
            warn_undefined("calibration error", "no actuals", np.isnan(values), self._names())
        return average_values(values, average, self._totals[:, 1])


def _ece(table: dict[str, FloatArray]) -> float:
    w = table["count"]
    total = w.sum()
    if total <= 0:
        return float("nan")
    keep = w > 0
    gap = np.abs(table["fraction_positive"][keep] - table["mean_score"][keep])
    return float(np.dot(w[keep], gap) / total)


def _roc_auc(counts: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Trapezoid ROC AUC of (L, 3, m) counts: (auc (L,), undefined mask (L,))."""
    fps, tps = ScoreSketch._cum_from_top(counts)
    neg, pos = fps[:, -1], tps[:, -1]
    undefined = (neg <= 0) | (pos <= 0)
    area = np.sum(np.diff(fps, axis=-1) * (tps[:, 1:] + tps[:, :-1]), axis=-1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.where(undefined, np.nan, area / np.where(undefined, 1, neg * pos))
    return auc, undefined


def _average_precision(counts: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Average precision of (L, 3, m) counts with precision interpolated inside each bin.

    Going down through a bin with ``dp`` positives and ``dn`` negatives after ``tp0``,
    ``fp0``, precision at fraction a of the bin is (A + aB) / (C + aD) with A = tp0,
    B = dp, C = tp0 + fp0, D = dp + dn; its mean over a in [0, 1] is
    B/D + (A - BC/D) ln(1 + D/C) / D (B/D when C = 0), weighted by the recall gain dp/P.
    """
    fps, tps = ScoreSketch._cum_from_top(counts)
    pos = tps[:, -1:]
    a_, c_ = tps[:, :-1], tps[:, :-1] + fps[:, :-1]
    b_ = np.diff(tps, axis=-1)
    d_ = b_ + np.diff(fps, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(d_ > 0, b_ / np.where(d_ > 0, d_, 1), 0.0)
        safe_c = np.where(c_ > 0, c_, 1)
        curved = slope + (a_ - slope * c_) * np.log1p(d_ / safe_c) / np.where(d_ > 0, d_, 1)
        mean_prec = np.where(c_ > 0, curved, slope)
        ap = np.sum(np.where(b_ > 0, b_ * mean_prec, 0.0), axis=-1) / np.where(
            pos[:, 0] > 0, pos[:, 0], 1
        )
    undefined = pos[:, 0] <= 0
    return np.where(undefined, np.nan, ap), undefined


def _is_bool_matrix(x: Any, space: LabelSpace) -> bool:
    return (
        isinstance(x, np.ndarray)
        and x.dtype == np.bool_
        and x.ndim == 2
        and x.shape[1] == len(space)
    )


def _prepare_scores(space: LabelSpace, scores: Any) -> npt.NDArray[np.floating[Any]]:
    """Dense (n, L) float scores; float32/float64 arrays pass without a copy (the binning
    engine validates them in its own pass), other forms go through the label space."""
    n_labels = len(space)
    if (
        isinstance(scores, np.ndarray)
        and scores.dtype in (np.float32, np.float64)
        and scores.ndim == 2
        and scores.shape[1] == n_labels
    ):
        return np.ascontiguousarray(scores)
    return np.ascontiguousarray(space.encode_scores(scores))


def _prepare_weights(weights: npt.ArrayLike | None, n: int) -> FloatArray | None:
    if weights is None:
        return None
    try:
        w = np.ascontiguousarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError("weights", f"{n} non-negative numbers", weights) from None
    if w.ndim == 2 and w.shape[1:] == (1,):
        w = w[:, 0].copy()
    if w.shape != (n,):
        raise InvalidInputError("weights", f"shape ({n},), one per example", w.shape)
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInputError("weights", "a finite non-negative number", float(w[i]), row=i)
    return w


def sum_sketches(sketches: Sequence[ScoreSketch]) -> ScoreSketch:
    """Merge many sketches at once (one array sum instead of a chain of ``+``)."""
    if not sketches:
        raise InvalidInputError("sketches", "at least one sketch", [])
    first = sketches[0]
    for other in sketches[1:]:
        first._check_compatible(other)
    total = np.sum([s.counts for s in sketches], axis=0)
    return ScoreSketch(first.labels, total, bins=first.bins, thresholds=first.thresholds)
