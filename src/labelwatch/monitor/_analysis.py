"""Ad-hoc analysis on the :class:`~labelwatch.monitor.Monitor` facade (mixed in
through ``AlertsMixin``): merged feature summaries of a window or a baseline, and the
drift and estimated performance of any window (per hour or day for a series), evaluated
as monitors are but stored nowhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from itertools import compress
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from labelwatch.errors import InvalidInputError, NotFoundError
from labelwatch.labels import LabelSpace
from labelwatch.metrics import ScoreSketch
from labelwatch.monitor import _tables as t
from labelwatch.monitor._api_values import _at, _iso
from labelwatch.monitor._cells import merge_counts
from labelwatch.monitor._evaluate import Evaluator
from labelwatch.monitor._feature_cells import SUMMARIZED, Summary, merge_window, summary_from_dict
from labelwatch.monitor._ingest import segment_value
from labelwatch.monitor._monitors import DRIFT_METRICS, MonitorSpec
from labelwatch.monitor._schema import check_name
from labelwatch.monitor._sketch_views import _subset
from labelwatch.monitor._windows import HOUR

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from labelwatch.monitor._schema import VersionSpec

__all__ = ["AnalysisMixin"]


class AnalysisMixin:
    """Feature summaries, drift and estimated performance queries (mixed into ``Monitor``)."""

    _engine: Engine

    if TYPE_CHECKING:

        def _version(self, model_id: str, model_version: str) -> tuple[int, VersionSpec]: ...

    # --------------------------------------------------------------- queries
    def feature_summary(
        self,
        model_id: str,
        model_version: str,
        environment: str,
        feature: str,
        start: Any = None,
        end: Any = None,
        segment: Any = None,
    ) -> Summary | None:
        """The merged summary (``NumericSketch`` or ``CategoricalCounts``) of a numeric,
        categorical, boolean or string feature over the hours of ``[start, end)``; None
        when no prediction falls there."""
        vid, vspec = self._version(model_id, model_version)
        check_name(environment, "environment")
        if vspec.features.get(feature) not in SUMMARIZED:
            raise InvalidInputError(
                "feature",
                "a numeric, categorical, boolean or string feature of the version",
                feature,
            )
        seg = ("", "")
        if segment is not None:
            if not (isinstance(segment, tuple | list) and len(segment) == 2):
                raise InvalidInputError("segment", "a (feature, value) pair or None", segment)
            value = segment_value(segment[1])
            seg = (str(segment[0]), value if value is not None else "")
        lo = None if start is None else math.ceil(_at(start, "start") / HOUR)
        hi = None if end is None else math.ceil(_at(end, "end") / HOUR)
        with self._engine.connect() as conn:
            return merge_window(conn, vid, environment, feature, seg, lo, hi)

    def baseline_features(self, model_id: str, model_version: str, kind: str) -> dict[str, Summary]:
        """The feature summaries logged with the ``kind`` baseline ({} when none)."""
        vid, _spec = self._version(model_id, model_version)
        b = t.baselines
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(b.c.feature_stats).where(
                    b.c.version_id == vid, b.c.kind == kind, b.c.feature_stats.is_not(None)
                )
            ).all()
        out: dict[str, Summary] = {}
        for row in rows:
            for name, stats in json.loads(row.feature_stats).items():
                if isinstance(stats, Mapping) and isinstance(stats.get("sketch"), Mapping):
                    out[name] = summary_from_dict(stats["sketch"])
        return out

    def drift(
        self,
        model_id: str,
        model_version: str,
        environment: str = "production",
        field: str | None = None,
        start: Any = None,
        end: Any = None,
        *,
        metric: str = "psi",
        baseline: Any = "training",
        labels: Any = "all",
        segment: Any = None,
        min_samples: float = 100,
        threshold: float | None = None,
    ) -> dict[str, Any]:
        """Drift of the window ``[start, end)`` (default: the 24 hours before ``end``,
        itself default now) against ``baseline`` ("training", "test", "previous" or
        ``{"start", "end"}``): one entry per label (or the field, for cardinality) with
        the value, sample size and whether it is flagged (significant)."""
        if metric not in DRIFT_METRICS:
            raise InvalidInputError("metric", f"one of {list(DRIFT_METRICS)}", metric)
        spec = MonitorSpec.from_dict(
            {
                "name": "drift-query",
                "model_id": model_id,
                "model_version": model_version,
                "environment": environment,
                "field": field,
                "metric": metric,
                "baseline": baseline,
                "labels": labels,
                "segment": segment,
                "min_samples": min_samples,
                "condition": {
                    "significant": True,
                    **({} if threshold is None else {"value": threshold}),
                },
            },
            "",  # errors name the parameter ("baseline"), not a monitor's key
        )
        lo, hi = _hours(start, end)
        ev = Evaluator(self)  # type: ignore[arg-type]
        fld = ev._field(spec)
        result = ev.evaluate_window(spec, fld, lo, hi)
        return {
            "metric": metric,
            "field": fld,
            "baseline": spec.to_dict()["baseline"],
            "window_start": _iso(result.window_start),
            "window_end": _iso(result.window_end),
            "note": result.note,
            "flagged": [e.label for e in result.breaches],
            "entries": [e.to_dict() for e in result.entries],
        }

    def performance(
        self,
        model_id: str,
        model_version: str,
        environment: str = "production",
        field: str | None = None,
        start: Any = None,
        end: Any = None,
        *,
        baseline: str = "training",
        segment: Any = None,
        level: float = 0.95,
    ) -> dict[str, Any]:
        """Estimated precision / recall / F1 of the window per label (expected confusion
        counts from probabilities calibrated on the labelled ``baseline``), micro and
        macro, with a ``level`` confidence band, and beside each the realized value where
        actuals arrived (None where none did)."""
        ev, spec, fld, base = self._estimator(model_id, model_version, environment, field,
                                              baseline, segment)  # fmt: skip
        lo, hi = _hours(start, end)
        window, _sums = ev.window_sketch(spec, fld, lo, hi)
        return _estimated(ev, spec, fld, base, window, lo, hi, level, True)

    def performance_series(
        self,
        model_id: str,
        model_version: str,
        environment: str = "production",
        field: str | None = None,
        start: Any = None,
        end: Any = None,
        *,
        granularity: str = "day",
        baseline: str = "training",
        segment: Any = None,
        level: float = 0.95,
        last: int | None = None,
        per_label: bool = True,
    ) -> list[dict[str, Any]]:
        """:meth:`performance` of each hour or day (UTC) of ``[start, end)`` that has
        predictions, its window clipped to ``[start, end)``; ``last``: only the latest
        that many periods; ``per_label=False``: only the micro and macro estimates. The
        window's cells and the baseline are read once."""
        if granularity not in ("hour", "day"):
            raise InvalidInputError("granularity", "'hour' or 'day'", granularity)
        if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 1):
            raise InvalidInputError("last", "a positive integer or None", last)
        ev, spec, fld, base = self._estimator(model_id, model_version, environment, field,
                                              baseline, segment)  # fmt: skip
        lo, hi = _hours(start, end)
        width = 1 if granularity == "hour" else 24
        w = self._window(  # type: ignore[attr-defined]
            model_id, model_version, environment, fld, lo * HOUR, hi * HOUR, spec.segment,
            "counts", unit=1 if granularity == "hour" else 24,
        )
        periods, inverse = np.unique(w.buckets // width, return_inverse=True)
        edges = w.spec.edges(fld)
        empty = ScoreSketch.empty(LabelSpace(w.labels), thresholds=edges, bins=w.spec.bins)
        first = 0 if last is None else max(len(periods) - last, 0)
        wanted = inverse.reshape(-1) >= first
        shape = (len(periods) - first, *empty.counts.shape)
        counts = merge_counts(
            shape,
            (inverse.reshape(-1)[wanted] - first) * len(w.labels) + w.label_pos[wanted],
            list(compress(w.blobs, wanted)),
        )
        out = []
        for k, period in enumerate(periods[first:].tolist()):
            window = ScoreSketch(empty.labels, counts[k], bins=w.spec.bins, thresholds=edges)
            p_lo, p_hi = max(period * width, lo), min((period + 1) * width, hi)
            out.append(_estimated(ev, spec, fld, base, window, p_lo, p_hi, level, per_label))
        return out

    def _estimator(
        self,
        model_id: str,
        model_version: str,
        environment: str,
        field: str | None,
        baseline: str,
        segment: Any,
    ) -> tuple[Evaluator, MonitorSpec, str, tuple[ScoreSketch, Any]]:
        """An evaluator, the query's spec and field, and its baseline (checked)."""
        if baseline not in ("training", "test"):
            raise InvalidInputError("baseline", "'training' or 'test'", baseline)
        spec = MonitorSpec.from_dict(
            {
                "name": "performance-query",
                "model_id": model_id,
                "model_version": model_version,
                "environment": environment,
                "field": field,
                "metric": "estimated_f1",
                "baseline": baseline,
                "segment": segment,
                "condition": {"below": 0.0},
            },
            "",
        )
        ev = Evaluator(self)  # type: ignore[arg-type]
        fld = ev._field(spec)
        base = ev.baseline(spec, fld, baseline)
        if base is None:
            raise NotFoundError("baseline", f"{model_id}/{model_version} {baseline} {fld}")
        return ev, spec, fld, base


def _hours(start: Any, end: Any) -> tuple[int, int]:
    """The hour buckets ``[lo, hi)`` of a query window (default: the 24 h before now)."""
    hi_ts = _at(end, "end")
    lo_ts = hi_ts - 24 * HOUR if start is None else _at(start, "start")
    if not lo_ts < hi_ts:
        raise InvalidInputError("start", "a time before end", _iso(lo_ts))
    return math.ceil(lo_ts / HOUR), math.ceil(hi_ts / HOUR)


def _estimated(
    ev: Evaluator,
    spec: MonitorSpec,
    fld: str,
    base: tuple[ScoreSketch, Any],
    window: ScoreSketch,
    lo: int,
    hi: int,
    level: float,
    per_label: bool,
) -> dict[str, Any]:
    """The estimate of one window's sketch (hours ``[lo, hi)``) from the baseline."""
    in_base = set(base[0].labels.names)
    known = [j for j, x in enumerate(window.labels.names) if x in in_base]
    est = ev.estimate(
        spec.model_id, spec.model_version, fld, str(spec.baseline), base[0],
        _subset(window, known), level, per_label,
    )
    return {"field": fld, "window_start": _iso(lo * HOUR), "window_end": _iso(hi * HOUR), **est}
