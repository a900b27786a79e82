"""``SampleStats``: additive per-sample sums at the decision thresholds, beside the sketch.

The per-label histogram of a ``ScoreSketch`` cannot tell which labels came together in
one sample; these sums can: subset accuracy, hamming loss, example-based precision /
recall / F1 / Jaccard, label cardinality and co-occurrence. Every field is a weighted sum
over rows, so two ``SampleStats`` of the same label space and thresholds merge with
``+``, exactly like sketches. A label is predicted positive when its score is strictly
above its threshold.

Undefined per-sample values (precision of a row without predicted labels, recall of a row
without actual labels, F1 and Jaccard of a row where both sets are empty) are left out of
the average: each ratio keeps the weight of the rows where it is defined. A metric with
no defined row is NaN, with an ``UndefinedMetricWarning``.
"""

from __future__ import annotations

import json
import struct
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from labelwatch.errors import IncompatibleMergeError, InvalidInputError, UndefinedMetricWarning
from labelwatch.labels import LabelSpace

__all__ = ["SampleStats"]

FloatArray = npt.NDArray[np.float64]
Kind = Literal["actual", "predicted"]
_MAGIC = b"LWSAMPLE"
_FORMAT = "labelwatch.SampleStats/1"
# The scalar sums, in their order on the wire.
_SUMS = (
    "n_predicted",
    "n_labeled",
    "exact_match",
    "hamming",
    "precision_sum",
    "precision_weight",
    "recall_sum",
    "recall_weight",
    "f1_sum",
    "f1_weight",
    "jaccard_sum",
    "jaccard_weight",
    "predicted_cardinality",
    "actual_cardinality",
)
_SAMPLES_HINT = (
    "SampleStats gives example-based ('samples') averages only; per-label, micro and "
    "macro values come from ScoreSketch (e.g. sketch.precision(0.5, average='macro'))"
)


def _check_thresholds(thresholds: Any, names: tuple[str, ...]) -> tuple[float, ...]:
    """One number, or one per label, each in [0, 1] -> a tuple of ``len(names)`` floats."""
    n_labels = len(names)
    try:
        arr = np.asarray(thresholds, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(
            "thresholds", f"a number or {n_labels} numbers in [0, 1]", thresholds
        ) from None
    if arr.ndim == 0:
        arr = np.full(n_labels, float(arr))
    if arr.shape != (n_labels,):
        raise InvalidInputError(
            "thresholds", f"a number or an array of shape ({n_labels},), one per label", arr.shape
        )
    bad = ~((arr >= 0) & (arr <= 1))
    if bad.any():
        j = int(np.argmax(bad))
        raise InvalidInputError("thresholds", "a number in [0, 1]", float(arr[j]), label=names[j])
    return tuple(float(t) for t in arr)


def _check_weights(weights: Any, n: int) -> FloatArray:
    if weights is None:
        return np.ones(n)
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError("weights", f"{n} non-negative numbers", weights) from None
    if w.shape != (n,):
        raise InvalidInputError("weights", f"an array of shape ({n},), one per row", w.shape)
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInputError("weights", "a finite non-negative number", float(w[i]), row=i)
    return w


def _row_ratio(
    num: npt.NDArray[np.intp], den: npt.NDArray[np.intp], w: FloatArray
) -> tuple[float, float]:
    """``(sum of w * num/den, sum of w)`` over the rows where ``den > 0``."""
    defined = den > 0
    values = np.divide(num, den, out=np.zeros(len(num)), where=defined)
    return float(w[defined] @ values[defined]), float(w[defined].sum())


def _warn_undefined(metric: str, why: str, stacklevel: int = 3) -> float:
    """Warn (``stacklevel`` counted from the caller to the user's call) and return NaN."""
    warnings.warn(
        f"{metric} is undefined ({why}); it is NaN",
        UndefinedMetricWarning,
        stacklevel=stacklevel + 1,
    )
    return float("nan")


def _check_kind(kind: object) -> None:
    if kind not in ("actual", "predicted"):
        raise InvalidInputError("kind", "'actual' or 'predicted'", kind)


def _check_samples(average: object) -> None:
    if average != "samples":
        raise InvalidInputError("average", "'samples'", average, hint=_SAMPLES_HINT)


def _matrix(value: Any, field: str, n_labels: int) -> FloatArray | None:
    if value is None:
        return None
    arr = np.array(value, dtype=np.float64)
    if arr.shape != (n_labels, n_labels):
        raise InvalidInputError(field, f"an array of shape ({n_labels}, {n_labels})", arr.shape)
    if not (np.isfinite(arr).all() and (arr >= 0).all()):
        raise InvalidInputError(field, "finite non-negative sums", "other values")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class SampleStats:
    """Weighted per-sample sums at fixed thresholds; merge with ``+``.

    Build with :meth:`from_arrays`. Fields are weighted sums over rows: ``n_predicted``
    (every row) and ``n_labeled`` (rows with actuals); ``exact_match`` and ``hamming``
    (mismatched labels); ``<metric>_sum`` / ``<metric>_weight`` for per-row precision,
    recall, F1 and Jaccard and the weight of the rows where each is defined; label
    cardinalities; and optionally the co-occurrence sums ``Y.T @ (w * Y)`` (L, L) of the
    actual and the predicted label sets.

    >>> st = SampleStats.from_arrays(["a", "b"], [[0.9, 0.2], [0.4, 0.7]], [[1, 1], [0, 1]])
    >>> st.subset_accuracy(), st.recall()
    (0.5, 0.75)
    """

    labels: tuple[str, ...]
    thresholds: tuple[float, ...]
    n_predicted: float = 0.0
    n_labeled: float = 0.0
    exact_match: float = 0.0
    hamming: float = 0.0
    precision_sum: float = 0.0
    precision_weight: float = 0.0
    recall_sum: float = 0.0
    recall_weight: float = 0.0
    f1_sum: float = 0.0
    f1_weight: float = 0.0
    jaccard_sum: float = 0.0
    jaccard_weight: float = 0.0
    predicted_cardinality: float = 0.0
    actual_cardinality: float = 0.0
    actual_cooccurrence: FloatArray | None = None
    predicted_cooccurrence: FloatArray | None = None

    def __post_init__(self) -> None:
        labels = tuple(self.labels)
        if not labels or not all(isinstance(name, str) for name in labels):
            raise InvalidInputError("labels", "a non-empty sequence of label names", self.labels)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "thresholds", _check_thresholds(self.thresholds, labels))
        for name in _SUMS:
            value = float(getattr(self, name))
            if not (np.isfinite(value) and value >= 0):
                raise InvalidInputError(name, "a finite non-negative sum", value)
            object.__setattr__(self, name, value)
        actual = _matrix(self.actual_cooccurrence, "actual_cooccurrence", len(labels))
        predicted = _matrix(self.predicted_cooccurrence, "predicted_cooccurrence", len(labels))
        if (actual is None) != (predicted is None):
            raise InvalidInputError(
                "cooccurrence", "both matrices or neither", "only one", hint="pass both or None"
            )
        object.__setattr__(self, "actual_cooccurrence", actual)
        object.__setattr__(self, "predicted_cooccurrence", predicted)

    # ----------------------------------------------------------------- building
    @classmethod
    def empty(
        cls,
        space: LabelSpace | Iterable[str],
        thresholds: npt.ArrayLike = 0.5,
        *,
        cooccurrence: bool = True,
    ) -> SampleStats:
        """Stats of no rows: the identity of ``+``."""
        names = tuple(space.names if isinstance(space, LabelSpace) else space)
        zeros = np.zeros((len(names), len(names))) if cooccurrence else None
        return cls(names, _check_thresholds(thresholds, names), **_kwargs({}, zeros, zeros))

    @classmethod
    def from_arrays(
        cls,
        space: LabelSpace | Iterable[str],
        scores: Any,
        actuals: Any = None,
        thresholds: npt.ArrayLike = 0.5,
        weights: npt.ArrayLike | None = None,
        cooccurrence: bool = True,
    ) -> SampleStats:
        """Sum one batch: ``scores`` (n, L) in [0, 1] and optional ``actuals`` (n, L).

        ``scores`` / ``actuals`` take any form ``space.encode_scores`` /
        ``encode_labels`` takes. ``actuals=None``: the rows are unlabeled and only the
        prediction side (count, predicted cardinality and co-occurrence) is summed; add
        the stats of a labeled batch to combine both. ``thresholds``: one number or one
        per label (L,), default 0.5; a label is predicted when its score is strictly
        above. ``weights`` (n,): non-negative, default 1. ``cooccurrence``: keep the two
        (L, L) co-occurrence sums.

        >>> SampleStats.from_arrays(["a", "b"], [[0.9, 0.6]], thresholds=[0.5, 0.6]).n_predicted
        1.0
        """
        if not isinstance(space, LabelSpace):
            space = LabelSpace(space)
        names = tuple(space.names)
        n_labels = len(space)
        ths = np.asarray(_check_thresholds(thresholds, names))
        s = np.asarray(space.encode_scores(scores))
        if s.ndim != 2 or s.shape[1] != n_labels:
            raise InvalidInputError("scores", f"an array of shape (n, {n_labels})", s.shape)
        w = _check_weights(weights, s.shape[0])
        pred = s > ths
        n_pred = pred.sum(axis=1)
        sums: dict[str, float] = {
            "n_predicted": float(w.sum()),
            "predicted_cardinality": float(w @ n_pred),
        }
        pf = pred.astype(np.float64)
        pred_co = pf.T @ (w[:, None] * pf) if cooccurrence else None
        actual_co = np.zeros((n_labels, n_labels)) if cooccurrence else None
        if actuals is not None:
            y = np.asarray(space.encode_labels(actuals), dtype=bool)
            if y.shape != s.shape:
                raise InvalidInputError(
                    "actuals", f"an array of shape {s.shape} like the scores", y.shape
                )
            n_true = y.sum(axis=1)
            tp = np.sum(pred & y, axis=1)
            mismatched = n_pred + n_true - 2 * tp
            sums["n_labeled"] = float(w.sum())
            sums["exact_match"] = float(w @ (mismatched == 0))
            sums["hamming"] = float(w @ mismatched)
            sums["precision_sum"], sums["precision_weight"] = _row_ratio(tp, n_pred, w)
            sums["recall_sum"], sums["recall_weight"] = _row_ratio(tp, n_true, w)
            sums["f1_sum"], sums["f1_weight"] = _row_ratio(2 * tp, n_pred + n_true, w)
            sums["jaccard_sum"], sums["jaccard_weight"] = _row_ratio(tp, n_pred + n_true - tp, w)
            sums["actual_cardinality"] = float(w @ n_true)
            if cooccurrence:
                yf = y.astype(np.float64)
                actual_co = yf.T @ (w[:, None] * yf)
        return cls(names, tuple(ths.tolist()), **_kwargs(sums, actual_co, pred_co))

    # ------------------------------------------------------------------ merging
    @property
    def has_cooccurrence(self) -> bool:
        """Whether the (L, L) co-occurrence sums are kept."""
        return self.actual_cooccurrence is not None

    def _check_compatible(self, other: SampleStats) -> None:
        if self.labels != other.labels:
            raise IncompatibleMergeError(
                "cannot merge SampleStats of different label spaces: left "
                f"{list(self.labels)}, right {list(other.labels)}"
            )
        if self.thresholds != other.thresholds:
            raise IncompatibleMergeError(
                "cannot merge SampleStats at different thresholds: left "
                f"{list(self.thresholds)}, right {list(other.thresholds)}"
            )
        if self.has_cooccurrence != other.has_cooccurrence:
            side = "left" if self.has_cooccurrence else "right"
            raise IncompatibleMergeError(
                f"cannot merge SampleStats with and without co-occurrence: only the {side} "
                "keeps it (build both with the same cooccurrence=...)"
            )

    def __add__(self, other: object) -> SampleStats:
        if not isinstance(other, SampleStats):
            return NotImplemented
        self._check_compatible(other)
        sums = {name: getattr(self, name) + getattr(other, name) for name in _SUMS}
        actual = predicted = None
        if self.actual_cooccurrence is not None and other.actual_cooccurrence is not None:
            actual = self.actual_cooccurrence + other.actual_cooccurrence
        if self.predicted_cooccurrence is not None and other.predicted_cooccurrence is not None:
            predicted = self.predicted_cooccurrence + other.predicted_cooccurrence
        return SampleStats(self.labels, self.thresholds, **_kwargs(sums, actual, predicted))

    def __radd__(self, other: object) -> SampleStats:
        if isinstance(other, int) and other == 0:  # sum(stats)
            return self
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SampleStats):
            return NotImplemented
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if a is None or b is None or not np.array_equal(a, b):
                    return False
            elif a != b:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        ths = self.thresholds
        shown = ths[0] if len(set(ths)) == 1 else list(ths)
        return (
            f"SampleStats({len(self.labels)} labels, thresholds={shown}, "
            f"n_predicted={self.n_predicted:g}, n_labeled={self.n_labeled:g})"
        )

    # ------------------------------------------------------------ serialization
    def _header(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "labels": list(self.labels),
            "thresholds": list(self.thresholds),
            "cooccurrence": self.has_cooccurrence,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; floats round-trip exactly through ``json``."""
        out = self._header()
        out["sums"] = {name: getattr(self, name) for name in _SUMS}
        if self.actual_cooccurrence is not None and self.predicted_cooccurrence is not None:
            out["actual_cooccurrence"] = self.actual_cooccurrence.tolist()
            out["predicted_cooccurrence"] = self.predicted_cooccurrence.tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SampleStats:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            got = data.get("format") if isinstance(data, dict) else data
            raise InvalidInputError("format", repr(_FORMAT), got)
        sums = data.get("sums")
        if not isinstance(sums, dict) or set(sums) != set(_SUMS):
            raise InvalidInputError("sums", f"a dict with keys {list(_SUMS)}", sums)
        return cls(
            data["labels"],
            data["thresholds"],
            **_kwargs(
                {name: float(sums[name]) for name in _SUMS},
                data.get("actual_cooccurrence"),
                data.get("predicted_cooccurrence"),
            ),
        )

    def to_bytes(self) -> bytes:
        """Compact binary form: a JSON header, then the little-endian float64 sums."""
        header = json.dumps(self._header(), separators=(",", ":")).encode()
        parts = [np.array([getattr(self, name) for name in _SUMS])]
        if self.actual_cooccurrence is not None and self.predicted_cooccurrence is not None:
            parts += [self.actual_cooccurrence.ravel(), self.predicted_cooccurrence.ravel()]
        body = np.concatenate(parts).astype("<f8").tobytes()
        return _MAGIC + struct.pack("<I", len(header)) + header + body

    @classmethod
    def from_bytes(cls, data: bytes) -> SampleStats:
        """Inverse of :meth:`to_bytes` (exact)."""
        if not isinstance(data, bytes | bytearray | memoryview) or bytes(data[:8]) != _MAGIC:
            got = bytes(data[:8]) if isinstance(data, bytes | bytearray | memoryview) else data
            raise InvalidInputError("data", f"bytes starting with {_MAGIC!r}", got)
        data = bytes(data)
        (size,) = struct.unpack("<I", data[8:12])
        try:
            header = json.loads(data[12 : 12 + size])
        except ValueError:
            raise InvalidInputError("data", "a JSON header", data[12 : 12 + size]) from None
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise InvalidInputError("format", repr(_FORMAT), header)
        n_labels = len(header["labels"])
        body = np.frombuffer(data[12 + size :], dtype="<f8").astype(np.float64)
        n_sums = len(_SUMS)
        expected = n_sums + (2 * n_labels * n_labels if header["cooccurrence"] else 0)
        if body.size != expected:
            raise InvalidInputError(
                "data", f"{expected} float64 values after the header", body.size
            )
        actual = predicted = None
        if header["cooccurrence"]:
            mats = body[n_sums:].reshape(2, n_labels, n_labels)
            actual, predicted = mats[0], mats[1]
        return cls(
            header["labels"],
            header["thresholds"],
            **_kwargs(dict(zip(_SUMS, body[:n_sums].tolist(), strict=True)), actual, predicted),
        )

    # ------------------------------------------------------------------ metrics
    def _ratio(self, num: float, den: float, metric: str, why: str) -> float:
        return num / den if den > 0 else _warn_undefined(metric, why)

    def subset_accuracy(self) -> float:
        """Weighted fraction of labeled rows whose predicted label set equals the actual."""
        return self._ratio(self.exact_match, self.n_labeled, "subset_accuracy", "no labeled row")

    def hamming_loss(self) -> float:
        """Weighted fraction of (labeled row, label) pairs predicted wrongly."""
        return self._ratio(
            self.hamming, self.n_labeled * len(self.labels), "hamming_loss", "no labeled row"
        )

    def precision(self, average: Literal["samples"] = "samples") -> float:
        """Mean over labeled rows with a predicted label of ``|pred & actual| / |pred|``."""
        _check_samples(average)
        return self._ratio(
            self.precision_sum,
            self.precision_weight,
            "precision (samples)",
            "no labeled row has a predicted label",
        )

    def recall(self, average: Literal["samples"] = "samples") -> float:
        """Mean over labeled rows with an actual label of ``|pred & actual| / |actual|``."""
        _check_samples(average)
        return self._ratio(
            self.recall_sum,
            self.recall_weight,
            "recall (samples)",
            "no labeled row has an actual label",
        )

    def f1(self, average: Literal["samples"] = "samples") -> float:
        """Mean of ``2 |pred & actual| / (|pred| + |actual|)`` over rows where either is set."""
        _check_samples(average)
        return self._ratio(
            self.f1_sum, self.f1_weight, "f1 (samples)", "no labeled row has any label"
        )

    def jaccard(self, average: Literal["samples"] = "samples") -> float:
        """Mean of ``|pred & actual| / |pred | actual|`` over rows where either is set."""
        _check_samples(average)
        return self._ratio(
            self.jaccard_sum,
            self.jaccard_weight,
            "jaccard (samples)",
            "no labeled row has any label",
        )

    def label_cardinality(self, kind: Kind = "actual") -> float:
        """Mean number of labels per row: actual (labeled rows) or predicted (every row)."""
        _check_kind(kind)
        if kind == "actual":
            return self._ratio(
                self.actual_cardinality, self.n_labeled, "label_cardinality", "no labeled row"
            )
        return self._ratio(
            self.predicted_cardinality, self.n_predicted, "label_cardinality", "no row"
        )

    def cooccurrence(self, kind: Kind = "actual", *, normalize: bool = True) -> FloatArray:
        """(L, L): weighted fraction of rows where labels i and j are both present (the
        diagonal is each label's prevalence), or the raw weighted counts with
        ``normalize=False``. ``kind``: "actual" (labeled rows) or "predicted" (every row).
        """
        _check_kind(kind)
        matrix = self.actual_cooccurrence if kind == "actual" else self.predicted_cooccurrence
        if matrix is None:
            raise InvalidInputError(
                "cooccurrence",
                "stats built with cooccurrence=True",
                False,
                hint="pass cooccurrence=True to SampleStats.from_arrays",
            )
        if not normalize:
            return matrix.copy()
        total = self.n_labeled if kind == "actual" else self.n_predicted
        if total <= 0:
            why = "no labeled row" if kind == "actual" else "no row"
            _warn_undefined("cooccurrence", why, stacklevel=2)
            return np.full(matrix.shape, np.nan)
        return matrix / total


def _kwargs(sums: dict[str, float], actual: Any, predicted: Any) -> dict[str, Any]:
    """The keyword arguments of ``SampleStats`` after its labels and thresholds."""
    return {**sums, "actual_cooccurrence": actual, "predicted_cooccurrence": predicted}
