"""Aporia training and test sets -> labelwatch baselines (pure: no I/O).

The Aporia v1 SDK sends a set as aggregates per field (its ``FieldTrainingData``): a
50-bin histogram and statistics for numbers, distinct values and their counts for
categories, and, for a dict field, one numeric record per label (``key``). Rows are
never paired across fields, so:

- a **training** set (features and labels) becomes the ``training`` baseline of each dict
  field: the labels, each scored as itself (positives at 1, negatives at 0; a label
  missing from a row is negative, as in labelwatch's actuals). Prevalence and label
  drift against it are exact; score drift compares production scores with 0/1 labels.
- a **test** set (features, predictions, labels) becomes the ``test`` baseline: the
  predictions' score histograms as unlabeled scores (their labels cannot be paired
  with them, so they are not stored).
- features become the baseline's feature summaries (``NumericSketch`` from the
  histogram, spread evenly inside each bin; ``CategoricalCounts`` exactly), the
  reference of feature drift.

Every problem is a warning naming the field (and label), never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelwatch.labels import LabelSpace
from labelwatch.metrics import CategoricalCounts, NumericSketch, ScoreSketch

__all__ = [
    "Aggregate",
    "feature_summaries",
    "label_sketch",
    "parse_aggregates",
    "score_sketch",
    "sketch_edges",
]

_SPREAD = 8  # points per histogram bin standing for the values inside it
_TOP_VALUES = 20
_CATEGORIES = ("categorical", "boolean", "string")


@dataclass(frozen=True)
class Aggregate:
    """One ``FieldTrainingData`` record, checked.

    ``bins``: the histogram's edges (numbers, one more than ``counts``) or the distinct
    values (as many as ``counts``); ``present``: ``numSamples``; ``missing``: missing,
    +inf and -inf values (the SDK sends non-finite values of predictions as null)."""

    field: str
    key: str | None
    bins: list[Any]
    counts: list[float]
    minimum: float | None
    maximum: float | None
    present: float
    missing: float
    average: float | None
    std: float | None

    @property
    def where(self) -> str:
        return self.field if self.key is None else f"{self.field}[{self.key!r}]"

    @property
    def is_histogram(self) -> bool:
        return len(self.bins) == len(self.counts) + 1 and all(map(_is_number, self.bins))


def _is_number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, int | float) and math.isfinite(x)


def _count(value: Any, name: str, where: str) -> float:
    if value is None:
        return 0.0
    if not _is_number(value) or value < 0:
        raise ValueError(f"{where}: {name}: expected a non-negative number, got {value!r}")
    return float(value)


def _optional(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


def parse_aggregates(records: Any, what: str) -> tuple[list[Aggregate], list[str]]:
    """The well-formed records of one argument (``what``: "features", "labels"...) and a
    warning for each other one."""
    out: list[Aggregate] = []
    warnings: list[str] = []
    if records is None:
        return out, warnings
    if not isinstance(records, list):
        return out, [f"{what}: expected a list of field aggregates, got {type(records).__name__}"]
    for i, rec in enumerate(records):
        where = f"{what}[{i}]"
        try:
            if not isinstance(rec, Mapping):
                raise ValueError(f"{where}: expected an object, got {type(rec).__name__}")
            field, key = rec.get("fieldName"), rec.get("key")
            if not isinstance(field, str) or not field:
                raise ValueError(f"{where}: fieldName: expected a field name, got {field!r}")
            if key is not None and (not isinstance(key, str) or not key):
                raise ValueError(f"{where}: key: expected a label name or null, got {key!r}")
            where = f"{what}.{field}" + ("" if key is None else f"[{key!r}]")
            bins, counts = rec.get("bins") or [], rec.get("counts") or []
            if not isinstance(bins, list) or not isinstance(counts, list):
                raise ValueError(f"{where}: bins and counts: expected lists")
            agg = Aggregate(
                field=field,
                key=key,
                bins=bins,
                counts=[_count(c, "counts", where) for c in counts],
                minimum=_optional(rec.get("min")),
                maximum=_optional(rec.get("max")),
                present=_count(rec.get("numSamples"), "numSamples", where),
                missing=sum(
                    _count(rec.get(name), name, where)
                    for name in ("numMissingValues", "numPosinfValues", "numNeginfValues")
                ),
                average=_optional(rec.get("average")),
                std=_optional(rec.get("std")),
            )
            if counts and len(bins) not in (len(counts), len(counts) + 1):
                raise ValueError(
                    f"{where}: expected as many bins as counts (values) or one more (edges), "
                    f"got {len(bins)} bins and {len(counts)} counts"
                )
            out.append(agg)
        except ValueError as exc:
            warnings.append(f"{exc}; not stored")
    return out, warnings


def _points(agg: Aggregate, what: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Values standing for a numeric histogram and their weights: each bin's count spread
    evenly over ``_SPREAD`` points inside it (one point when every value is the same)."""
    lo, hi = agg.minimum, agg.maximum
    if lo is not None and hi is not None and lo == hi:
        return np.array([lo]), np.array([agg.present])
    if not agg.is_histogram:
        raise ValueError(f"{what}.{agg.where}: expected a histogram (bin edges and counts)")
    edges = np.asarray(agg.bins, dtype=np.float64)
    if (np.diff(edges) < 0).any():
        raise ValueError(f"{what}.{agg.where}: bins: expected ascending edges")
    counts = np.asarray(agg.counts, dtype=np.float64)
    offsets = (np.arange(_SPREAD) + 0.5) / _SPREAD
    values = (edges[:-1, None] + np.diff(edges)[:, None] * offsets).ravel()
    weights = np.repeat(counts / _SPREAD, _SPREAD)
    if lo is not None and hi is not None:
        values = np.clip(values, lo, hi)
    keep = weights > 0
    return values[keep], weights[keep]


def sketch_edges(info: Mapping[str, Any], field: str) -> list[float]:
    """The edges of ``field``'s production sketches from ``get_version``'s answer: its
    one threshold, or 0.5 and every per-label threshold."""
    th = (info.get("thresholds") or {}).get(field) or {}
    default = float(th.get("default", 0.5))
    per = [float(v) for v in (th.get("labels") or {}).values()]
    if any(v != default for v in per):
        return sorted({0.5, default, *per})
    return [default]


def _one_label(
    name: str,
    scores: Sequence[float],
    actual: Sequence[int] | None,
    weights: Any,
    edges: list[float],
    bins: int,
) -> ScoreSketch:
    s = np.asarray(scores, dtype=np.float64)[:, None]
    y = None if actual is None else np.asarray(actual, dtype=bool)[:, None]
    return ScoreSketch.from_arrays(
        LabelSpace([name]),
        s,
        y,
        weights=np.asarray(weights, dtype=np.float64),
        thresholds=edges,
        bins=bins,
        engine="numpy",
    )


def _stack(parts: dict[str, ScoreSketch], edges: list[float], bins: int) -> ScoreSketch:
    names = sorted(parts)
    counts = np.concatenate([parts[n].counts for n in names]) if names else None
    if counts is None:
        return ScoreSketch.empty([], thresholds=edges, bins=bins)
    return ScoreSketch(LabelSpace(names), counts, bins=bins, thresholds=edges)


def label_sketch(
    labels: list[Aggregate], edges: list[float], bins: int
) -> tuple[ScoreSketch | None, list[str]]:
    """The training baseline of one dict field from its per-label records of 0/1 labels:
    positives scored 1, negatives (and rows missing the label) scored 0. None when no
    label record is usable; a warning per refused record."""
    parts: dict[str, ScoreSketch] = {}
    warnings: list[str] = []
    for agg in labels:
        try:
            if agg.key is None:
                raise ValueError(f"labels.{agg.field}: expected one record per label (key)")
            positives = _positives(agg)
        except ValueError as exc:
            warnings.append(f"{exc}; not stored")
            continue
        negatives = agg.present - positives + agg.missing
        parts[agg.key] = _one_label(
            agg.key, [1.0, 0.0], [1, 0], [positives, negatives], edges, bins
        )
    return (_stack(parts, edges, bins) if parts else None), warnings


def _positives(agg: Aggregate) -> float:
    """How many of a label's values are 1, all of them being 0 or 1."""
    lo, hi = agg.minimum, agg.maximum
    if agg.present == 0:
        return 0.0
    if lo is not None and lo == hi and lo in (0.0, 1.0):
        return agg.present if lo == 1.0 else 0.0
    inner = agg.counts[1:-1]
    if lo != 0.0 or hi != 1.0 or not agg.is_histogram or any(inner):
        raise ValueError(
            f"labels.{agg.where}: expected labels 0 or 1, got values from {lo!r} to {hi!r}"
        )
    return agg.counts[-1]


def score_sketch(
    predictions: list[Aggregate], edges: list[float], bins: int
) -> tuple[ScoreSketch | None, list[str]]:
    """The test baseline of one dict field from its per-label score histograms, as
    unlabeled scores (a label missing from a prediction is not scored by it)."""
    parts: dict[str, ScoreSketch] = {}
    warnings: list[str] = []
    for agg in predictions:
        try:
            if agg.key is None:
                raise ValueError(f"predictions.{agg.field}: expected one record per label (key)")
            lo, hi = agg.minimum, agg.maximum
            if agg.present and (lo is None or hi is None or lo < 0 or hi > 1):
                raise ValueError(
                    f"predictions.{agg.where}: expected scores in [0, 1], got values from "
                    f"{lo!r} to {hi!r}"
                )
            values, weights = (
                _points(agg, "predictions") if agg.present else (np.zeros(0), np.zeros(0))
            )
        except ValueError as exc:
            warnings.append(f"{exc}; not stored")
            continue
        parts[agg.key] = _one_label(agg.key, values.tolist(), None, weights, edges, bins)
    return (_stack(parts, edges, bins) if parts else None), warnings


def _category(value: Any) -> str:
    """A category's text as the monitor's feature cells store it (an integral float, as
    pandas makes of an int column with gaps, as the int)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def feature_summaries(
    features: list[Aggregate], types: Mapping[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """Per feature of the version (numeric, categorical, boolean, string), the baseline
    statistics labelwatch's own SDK stores (``count``, ``missing``, ``mean``... or
    ``top``, and ``sketch``, the reference of feature drift); a warning per other one."""
    out: dict[str, Any] = {}
    warnings: list[str] = []
    for agg in features:
        kind = types.get(agg.field)
        if agg.key is not None or kind is None:
            warnings.append(
                f"features.{agg.field}: expected a feature of the version's schema, among "
                f"{sorted(types)}; not stored"
            )
            continue
        stats: dict[str, Any] = {
            "type": kind,
            "count": agg.present + agg.missing,
            "missing": agg.missing,
        }
        try:
            if kind == "numeric":
                values, weights = (
                    _points(agg, "features") if agg.present else (np.zeros(0), np.zeros(0))
                )
                sketch = NumericSketch.from_values(
                    np.append(values, np.nan), weights=np.append(weights, agg.missing)
                )
                if agg.present:
                    # the histogram stands for `present` values of weight 1 each
                    sketch.squared_weights = agg.present
                    sketch.min, sketch.max = float(values.min()), float(values.max())
                    if agg.minimum is not None and agg.maximum is not None:
                        sketch.min, sketch.max = agg.minimum, agg.maximum
                for name, value in (
                    ("mean", agg.average),
                    ("std", agg.std),
                    ("min", agg.minimum),
                    ("max", agg.maximum),
                ):
                    if value is not None:
                        stats[name] = value
                stats["sketch"] = sketch.to_dict()
            elif kind in _CATEGORIES:
                if len(agg.bins) != len(agg.counts):
                    raise ValueError(f"features.{agg.field}: expected distinct values and counts")
                texts = [_category(v) for v in agg.bins]
                counts = CategoricalCounts.from_values(
                    [*texts, None], weights=[*agg.counts, agg.missing]
                )
                counts.squared_weights = agg.present  # values of weight 1 each
                top = sorted(zip(texts, agg.counts, strict=True), key=lambda tc: -tc[1])
                stats["top"] = dict(top[:_TOP_VALUES])
                stats["sketch"] = counts.to_dict()
        except ValueError as exc:  # InvalidInputError is one
            warnings.append(f"{exc}; not stored")
            continue
        out[agg.field] = stats
    return out, warnings
