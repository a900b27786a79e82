"""Baselines (training / test sets) built on the client: a ``ScoreSketch`` and the
``SampleStats`` of a field, edged at the field's thresholds, plus feature statistics."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from labelwatch.errors import InvalidInputError
from labelwatch.labels import LabelSpace
from labelwatch.metrics import CategoricalCounts, NumericSketch, SampleStats, ScoreSketch

__all__ = ["build_field_baseline", "feature_stats", "field_thresholds", "split_fields"]

DEFAULT_THRESHOLD = 0.5
_TOP_VALUES = 20


def _field_thresholds(info: Mapping[str, Any], field: str) -> tuple[dict[str, float], float]:
    """``({label: threshold}, default)`` of ``field`` from ``get_version``'s answer
    (``{"thresholds": {field: {"default": t, "labels": {label: t}}}}``)."""
    value = (info.get("thresholds") or {}).get(field, DEFAULT_THRESHOLD)
    if isinstance(value, Mapping):
        per = value.get("labels")
        if not isinstance(per, Mapping):
            per = {k: v for k, v in value.items() if k != "default"}
        default = float(value.get("default", DEFAULT_THRESHOLD))
        return {str(k): float(v) for k, v in per.items()}, default
    return {}, float(value)


def field_thresholds(info: Mapping[str, Any], field: str, labels: list[str]) -> list[float]:
    """Each label's decision threshold in ``field`` (the version's, default 0.5)."""
    per, default = _field_thresholds(info, field)
    return [per.get(label, default) for label in labels]


def _edges(info: Mapping[str, Any], field: str) -> list[float]:
    """The sketch edges of ``field``, as the monitor's production sketches have them:
    the field's one threshold, or 0.5 and every per-label threshold."""
    per, default = _field_thresholds(info, field)
    if any(t != default for t in per.values()):
        return sorted({DEFAULT_THRESHOLD, default, *per.values()})
    return [default]


def split_fields(
    data: Any, dict_fields: list[str], what: str, field: str | None
) -> dict[str, Any]:
    """``{field: data}`` from either that mapping or one field's data (``field`` or the
    version's only dict field)."""
    if data is None:
        return {}
    if isinstance(data, Mapping) and data and set(data) <= set(dict_fields):
        if field is not None:
            return {field: data[field]} if field in data else {}
        return dict(data)
    name = field
    if name is None:
        if len(dict_fields) != 1:
            raise InvalidInputError(
                "field", f"one of the dict fields {dict_fields}", None,
                hint=f"pass {what}={{field: ...}} or field=...",
            )
        name = dict_fields[0]
    return {name: data}


def _label_names(info: Mapping[str, Any], field: str, *data: Any) -> list[str]:
    declared = (info.get("declared_labels") or {}).get(field)
    if declared:
        return list(declared)
    names: dict[str, None] = {}
    for rows in data:
        if isinstance(rows, Mapping):
            rows = [rows]
        if not isinstance(rows, list | tuple) or not all(isinstance(r, Mapping) for r in rows):
            raise InvalidInputError(
                field, "a list of {label: score} dicts (the field has no declared labels)",
                type(rows).__name__,
                hint="declare labels={field: [...]} in create_model_version to log arrays",
            )
        for row in rows:
            names.update(dict.fromkeys(row))
    if not names:
        raise InvalidInputError(field, "at least one label", None)
    return sorted(names)


def build_field_baseline(
    info: Mapping[str, Any],
    field: str,
    predictions: Any,
    actuals: Any = None,
    weights: Any = None,
) -> tuple[ScoreSketch, SampleStats]:
    """The sketch (the version's bins, the field's thresholds as edges) and the sample
    stats (at each label's threshold) of one field's predictions and optional actuals;
    ``info`` is the version as ``get_version`` describes it.

    ``predictions``: an (n, L) array in the order of the field's declared labels, or a
    list of ``{label: score}`` dicts (a label absent from a dict scores 0); ``actuals``
    alike with 0/1.
    """
    names = _label_names(info, field, predictions, *([] if actuals is None else [actuals]))
    space = LabelSpace(names)
    bins = int(info.get("bins", 200))
    scores = space.encode_scores(predictions)
    y = None if actuals is None else space.encode_labels(actuals)
    sketch = ScoreSketch.from_arrays(
        space, scores, y, weights=weights, thresholds=_edges(info, field), bins=bins
    )
    samples = SampleStats.from_arrays(
        space, scores, y, thresholds=field_thresholds(info, field, names), weights=weights,
        cooccurrence=False,
    )
    return sketch, samples


def _columns(features: Any) -> dict[str, list[Any]]:
    if hasattr(features, "columns") and hasattr(features, "__getitem__"):  # a DataFrame
        return {str(c): list(features[c]) for c in features.columns}
    if isinstance(features, Mapping):
        return {str(k): list(v) for k, v in features.items()}
    if isinstance(features, list | tuple) and all(isinstance(r, Mapping) for r in features):
        cols: dict[str, list[Any]] = {}
        for row in features:
            for key, value in row.items():
                cols.setdefault(str(key), []).append(value)
        return cols
    raise InvalidInputError(
        "features", "a DataFrame, a dict of columns or a list of row dicts",
        type(features).__name__,
    )


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _category(value: Any) -> str:
    """A category's text as the monitor's feature cells store it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def feature_stats(features: Any, types: Mapping[str, str]) -> dict[str, Any]:
    """Per feature: ``count`` and ``missing``; numeric ones ``mean``, ``std``, ``min``,
    ``max``; the others the counts of their ``top`` 20 values; numeric, categorical,
    boolean and string ones their ``sketch`` (``NumericSketch`` / ``CategoricalCounts``
    as JSON), the baseline of feature drift."""
    out: dict[str, Any] = {}
    for name, values in _columns(features).items():
        kind = types.get(name, "categorical")
        present = [v for v in values if v is not None and not (isinstance(v, float) and v != v)]
        stats: dict[str, Any] = {"type": kind, "count": len(values)}
        stats["missing"] = len(values) - len(present)
        if kind == "numeric":
            nums = np.array([x for x in map(_number, present) if x is not None])
            if nums.size:
                stats.update(
                    mean=float(nums.mean()), std=float(nums.std()), min=float(nums.min()),
                    max=float(nums.max()),
                )
            # the mergeable summary feature drift compares production cells with
            stats["sketch"] = NumericSketch.from_values(
                np.concatenate([nums, np.full(stats["missing"], np.nan)])
            ).to_dict()
        elif kind in ("categorical", "boolean", "string"):
            texts = [_category(v) for v in present]
            top = Counter(texts).most_common(_TOP_VALUES)
            stats["top"] = dict(top)
            stats["sketch"] = CategoricalCounts.from_values(
                [*texts, *([None] * stats["missing"])]
            ).to_dict()
        out[name] = stats
    return out
