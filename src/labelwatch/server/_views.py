"""The data of each dashboard page (and of the offline report), built from ``Monitor`` calls.

Pure data, no HTML: each function returns a JSON-able dict that a template embeds in a
``<script type="application/json">`` block and ``dashboard.js`` draws. The same dicts,
built from one saved ``ScoreSketch`` or from a version's window, make the report.
Undefined metric values are None (JSON null); nothing here reads tables directly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from labelwatch.errors import (
    InvalidInputError,
    LabelwatchError,
    NotFoundError,
    UndefinedMetricWarning,
)
from labelwatch.metrics import SampleStats, ScoreSketch
from labelwatch.monitor import MAX_PAIR_LABELS, Monitor
from labelwatch.monitor._util import _iso
from labelwatch.server._errors import jsonable
from labelwatch.server._summary import summarize

__all__ = [
    "DRIFT_CHOICES",
    "RANGES",
    "Query",
    "baseline_sketch",
    "cooccurrence_view",
    "drift_view",
    "dumps_for_script",
    "estimated_f1_view",
    "incidents_view",
    "label_view",
    "labels_view",
    "monitors_view",
    "overview_view",
    "sketch_json",
]

HOUR = 3600.0
DAY = 24 * HOUR
RANGES: dict[str, float | None] = {
    "24h": 24 * HOUR,
    "7d": 7 * 24 * HOUR,
    "30d": 30 * 24 * HOUR,
    "90d": 90 * 24 * HOUR,
    "all": None,
}
DEFAULT_RANGE = "7d"
DRIFT_CHOICES = ("psi", "js", "hellinger", "ks", "wasserstein", "prevalence_drift",
                 "predicted_positive_rate_drift")
_MAX_HEATMAP = 40  # labels shown in the co-occurrence heatmap (the most prevalent)
_MAX_ESTIMATE_PERIODS = 96
_BRIEF_BREACHES = 5  # breaching labels an incident shows on the overview


def dumps_for_script(data: Any) -> str:
    """``data`` as JSON safe inside ``<script type="application/json">``: NaN as null and
    ``<``, ``>``, ``&``, U+2028/9 as ``\\u`` escapes, so no text can close the element."""
    text = json.dumps(jsonable(data), allow_nan=False, separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _parse_when(value: str | None, what: str) -> float | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(
            what, "an ISO 8601 date-time such as 2024-05-01T00:00", value
        ) from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


@dataclass
class Query:
    """What every version page is about: the version, environment, field, time range and
    segment (from the pickers). ``start`` / ``end``: seconds (the window ``[start, end)``)."""

    model_id: str
    version: str
    environment: str = "production"
    field: str = ""
    range: str = DEFAULT_RANGE
    start: float = 0.0
    end: float = 0.0
    segment: tuple[str, str] | None = None
    custom_start: str = ""
    custom_end: str = ""
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    environments: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def resolve(
        cls,
        mon: Monitor,
        model_id: str,
        version: str,
        *,
        environment: str | None = None,
        field_name: str | None = None,
        range_: str | None = None,
        start: str | None = None,
        end: str | None = None,
        seg_feature: str | None = None,
        seg_value: str | None = None,
        now: float | None = None,
    ) -> Query:
        """The query of the pickers' values, checked against the version (a
        ``LabelwatchError`` names what is wrong)."""
        info = mon.get_version(model_id, version)
        envs = mon.environments(model_id, version)
        env = environment or ("production" if "production" in envs or not envs else envs[0])
        fields = list(info["predictions"])
        dict_fields = [f for f in fields if info["predictions"][f] == "dict"]
        fld = field_name or (dict_fields[0] if dict_fields else "")
        if fld not in dict_fields:
            raise NotFoundError("prediction field", str(fld), hint=f"dict fields: {dict_fields}")
        rng = range_ or DEFAULT_RANGE
        at = time.time() if now is None else now
        hi = math.ceil(at / HOUR) * HOUR  # through the end of the current hour
        if rng == "custom":
            lo_c, hi_c = _parse_when(start, "start"), _parse_when(end, "end")
            lo = 0.0 if lo_c is None else lo_c
            hi = hi if hi_c is None else hi_c
            if not lo < hi:
                raise InvalidInputError("start", "a time before end", start)
        elif rng in RANGES:
            span = RANGES[rng]
            if span is None or span >= 7 * DAY:  # whole UTC days, today's included
                hi = (math.floor(at / DAY) + 1) * DAY
            lo = 0.0 if span is None else hi - span
        else:
            raise InvalidInputError("range", f"one of {[*RANGES, 'custom']}", rng)
        segment = None
        if seg_feature:
            if seg_feature not in info["segments"]:
                raise NotFoundError("segment", seg_feature, hint=f"segments: {info['segments']}")
            segment = (seg_feature, seg_value or "")
        return cls(
            model_id=model_id, version=version, environment=env, field=fld, range=rng,
            start=lo, end=hi, segment=segment, custom_start=start or "", custom_end=end or "",
            info=info, environments=envs,
        )

    @property
    def granularity(self) -> str:
        return "hour" if self.end - self.start <= 3 * 24 * HOUR else "day"

    @property
    def labels(self) -> list[str]:
        return list(self.info["labels"].get(self.field, []))

    def threshold(self, label: str) -> float:
        th = self.info["thresholds"][self.field]
        return float(th["labels"].get(label, th["default"]))

    def window(self) -> dict[str, Any]:
        return {"start": _iso(self.start) if self.start > 0 else None, "end": _iso(self.end)}

    def _args(self) -> tuple[str, str, str, str]:
        return self.model_id, self.version, self.environment, self.field

    def sketch(self, mon: Monitor, labels: list[str] | None = None) -> ScoreSketch:
        """The merged sketch of the window (and segment), of every label or ``labels``."""
        return mon.sketch(
            *self._args(), self.start, self.end, segment=self.segment, labels=labels
        )

    def stats(self, mon: Monitor) -> SampleStats:
        """The merged sample stats of the window (and segment)."""
        return mon.sample_stats(*self._args(), self.start, self.end, segment=self.segment)


def _num(x: Any) -> float | None:
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _short(value: Any) -> Any:
    """A table's float to 7 significant digits (the table shows 3 decimals; half the
    bytes of 1,000 rows), other values as they are."""
    return float(f"{value:.7g}") if isinstance(value, float) else value


def _segment_arg(q: Query) -> list[str] | None:
    return None if q.segment is None else [q.segment[0], q.segment[1]]


def _timeseries(
    mon: Monitor, q: Query, metric: str, *, average: str | None = None,
    labels: list[str] | None = None,
) -> list[dict[str, Any]]:
    try:
        return mon.timeseries(
            *q._args(), metric, granularity=q.granularity, start=q.start, end=q.end,
            labels=labels, average=average, segment=q.segment,
        )
    except NotFoundError:  # no label named yet: no points
        return []


def _open_incidents(mon: Monitor, q: Query) -> list[dict[str, Any]]:
    found = mon.incidents(model_id=q.model_id, model_version=q.version)
    return [i for i in found if i["status"] in ("open", "acknowledged")]


def sketch_json(sketch: ScoreSketch, labels: list[int] | None = None) -> dict[str, Any]:
    """A sketch's edges and counts (of ``labels``' positions, default all) for the page:
    ``{"labels", "edges", "thresholds", "counts": [label][outcome][bin]}``."""
    idx = list(range(len(sketch.labels))) if labels is None else labels
    return {
        "labels": [sketch.labels.names[i] for i in idx],
        "edges": sketch.edges.tolist(),
        "thresholds": list(sketch.thresholds),
        "counts": sketch.counts[idx].tolist(),
        # per label and outcome, summed as ScoreSketch sums them (so the page's
        # recall at a threshold is the very float the API gives)
        "totals": sketch.counts[idx].sum(axis=-1).tolist(),
    }


# ------------------------------------------------------------------- pages
def overview_view(mon: Monitor, q: Query) -> dict[str, Any]:
    """Volume and realized micro / macro F1 per period, window totals, open incidents.
    Estimated F1 comes apart (``estimated_f1_view``): it costs one estimate per period."""
    micro = _timeseries(mon, q, "f1", average="micro")
    macro = {p["start"]: p["value"] for p in _timeseries(mon, q, "f1", average="macro")}
    ts = [_epoch(p["start"]) for p in micro]
    totals: dict[str, Any] = {"labels": len(q.labels), "predictions": 0.0, "labeled": 0.0}
    if q.labels:
        stats = q.stats(mon)
        totals["predictions"], totals["labeled"] = stats.n_predicted, stats.n_labeled
        # the window's example-based F1 comes from the sums, not from merging every
        # label's score cells (the labels page does that)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            totals["samples_f1"] = _num(stats.f1())
            totals["subset_accuracy"] = _num(stats.subset_accuracy())
    return {
        "series": {
            "t": ts,
            "volume": [p["count"] for p in micro],
            "micro_f1": [p["value"] for p in micro],
            "macro_f1": [macro.get(p["start"]) for p in micro],
        },
        "granularity": q.granularity,
        "totals": totals,
        # the first breaches of each (the incidents page lists them all)
        "incidents": [
            {**i, "breaches": i["breaches"][:_BRIEF_BREACHES], "n_breaches": len(i["breaches"])}
            for i in _open_incidents(mon, q)
        ],
    }


def estimated_f1_view(mon: Monitor, q: Query) -> dict[str, Any]:
    """Estimated micro F1 (with its band) per period with data, from the training
    baseline's calibration (no actuals needed); a note instead when there is none."""
    out: dict[str, list[float | None]] = {"t": [], "value": [], "lower": [], "upper": []}
    try:
        points = mon.performance_series(
            q.model_id, q.version, q.environment, q.field, q.start, q.end,
            granularity=q.granularity, segment=_segment_arg(q), last=_MAX_ESTIMATE_PERIODS,
            per_label=False,
        )
    except NotFoundError as exc:
        return {"note": f"no estimate: {exc}"}
    width = HOUR if q.granularity == "hour" else 24 * HOUR
    for p in points:
        value, lower, upper = p["micro"]["f1"]
        start = _epoch(p["window_start"])
        out["t"].append(start - start % width)  # the period's start, as the other series
        out["value"].append(_num(value))
        out["lower"].append(_num(lower))
        out["upper"].append(_num(upper))
    return {"series": out, "note": None}


def labels_view(mon: Monitor, q: Query) -> dict[str, Any]:
    """Every label's row: volume, prevalence, precision / recall / F1 at its threshold,
    ROC AUC, PSI drift against the training baseline (when there is one), alert state."""
    if not q.labels:
        return {"rows": [], "drift_note": "no label seen yet", "averages": {}}
    sk = q.sketch(mon)
    stats = q.stats(mon)
    summary = summarize(sk, stats)
    drift: dict[str, Any] = {}
    drift_note = None
    try:
        result = mon.drift(
            q.model_id, q.version, q.environment, q.field, q.start, q.end,
            metric="psi", baseline="training", segment=_segment_arg(q),
        )
        drift = {e["label"]: e for e in result["entries"]}
        drift_note = result["note"]
    except LabelwatchError as exc:
        drift_note = str(exc)
    alerts: dict[str, list[dict[str, Any]]] = {}
    for inc in _open_incidents(mon, q):
        for b in inc["breaches"]:
            alerts.setdefault(b.get("label", "*"), []).append(
                {"incident": inc["id"], "monitor": inc["monitor"], "severity": inc["severity"]}
            )
    keep = ("label", "count", "labeled", "prevalence", "threshold", "precision", "recall", "f1",
            "roc_auc", "average_precision", "predicted_positive_rate")
    rows = []
    for row in summary["labels"]:
        d = drift.get(row["label"])
        rows.append({
            **{k: _short(row.get(k)) for k in keep},
            "drift": None if d is None else _short(d["value"]),
            "drift_flagged": bool(d is not None and d["status"] == "breach"),
            "alerts": alerts.get(row["label"], []),
        })
    return {"rows": rows, "averages": summary["average"], "drift_note": drift_note,
            "field_alerts": alerts.get("*", [])}


def baseline_sketch(
    mon: Monitor, q: Query
) -> tuple[ScoreSketch | None, SampleStats | None, str]:
    """The version's training baseline of the field (else its test one): ``(sketch,
    samples or None, kind)``, or ``(None, None, "")`` when it has none."""
    for kind in ("training", "test"):
        try:
            sk, samples = mon.baseline(q.model_id, q.version, kind, q.field)
        except NotFoundError:
            continue
        return sk, samples, kind
    return None, None, ""


def label_view(mon: Monitor, q: Query, label: str) -> dict[str, Any]:
    """One label: the window's and the baseline's score histograms by outcome (their own
    edges; the page computes precision / recall / F1 at any edge from them, exactly as
    ``ScoreSketch`` does), AUC, and precision / recall / F1 per period."""
    if label not in q.labels:
        raise NotFoundError("label", label, hint=f"{len(q.labels)} labels in {q.field!r}")
    one = q.sketch(mon, [label])
    base, _samples, kind = baseline_sketch(mon, q)
    baseline = None
    if base is not None and label in base.labels:
        baseline = sketch_json(base, [base.labels.index(label)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        auc = _num(one.roc_auc(average="macro"))
        ap = _num(one.average_precision(average="macro"))
    series: dict[str, Any] = {"t": []}
    for metric in ("precision", "recall", "f1"):
        points = _timeseries(mon, q, metric, labels=[label])
        series["t"] = [_epoch(p["start"]) for p in points]
        series[metric] = [None if p["value"] is None else p["value"][0] for p in points]
    return {
        "label": label,
        "threshold": q.threshold(label),
        "current": sketch_json(one),
        "baseline": baseline,
        "baseline_kind": kind or None,
        "roc_auc": auc,
        "average_precision": ap,
        "series": series,
        "granularity": q.granularity,
    }


def _top_cooccurrence(
    stats: SampleStats, names: list[str] | None
) -> tuple[list[str], list[list[float | None]]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        co = stats.cooccurrence("actual")
    pos = {x: j for j, x in enumerate(stats.labels)}
    if names is None:
        order = np.argsort(-np.nan_to_num(np.diag(co)), kind="stable")[:_MAX_HEATMAP]
        names = [stats.labels[j] for j in order]
    idx = [pos.get(x) for x in names]
    matrix = [[None if a is None or b is None else _num(co[a, b]) for b in idx] for a in idx]
    return names, matrix


def cooccurrence_view(mon: Monitor, q: Query) -> dict[str, Any]:
    """Share of labelled rows where two labels are both actual, for the most prevalent
    labels: the baseline's (when stored with co-occurrence) and the window's (when the
    stored sums carry it; production cells do not yet: "not collected")."""
    _sk, samples, kind = baseline_sketch(mon, q)
    names: list[str] | None = None
    baseline = None
    baseline_note: str | None
    if samples is None:
        baseline_note = "no baseline with sample statistics"
    elif not samples.has_cooccurrence:
        baseline_note = f"the {kind} baseline's sample stats have no co-occurrence sums"
    else:
        names, baseline = _top_cooccurrence(samples, None)
        baseline_note = None
    current = None
    current_note: str | None = "no label logged yet"
    if q.labels:
        stats = mon.sample_stats(
            q.model_id, q.version, q.environment, q.field, q.start, q.end,
            segment=q.segment, cooccurrence=True,
        )
        if stats.has_cooccurrence:
            names, current = _top_cooccurrence(stats, names)
            current_note = None
        else:
            current_note = (
                f"not collected: co-occurrence is kept for fields of at most "
                f"{MAX_PAIR_LABELS} labels"
            )
    return {
        "labels": names or [],
        "baseline": baseline,
        "baseline_kind": kind or None,
        "baseline_note": baseline_note,
        "current": current,
        "current_note": current_note,
    }


def drift_view(mon: Monitor, q: Query, metric: str, baseline: str) -> dict[str, Any]:
    """Drift of every label of the window against ``baseline``, largest first."""
    if metric not in DRIFT_CHOICES:
        raise InvalidInputError("metric", f"one of {list(DRIFT_CHOICES)}", metric)
    if baseline not in ("training", "test", "previous"):
        raise InvalidInputError("baseline", "'training', 'test' or 'previous'", baseline)
    base = {"metric": metric, "baseline": baseline, "choices": list(DRIFT_CHOICES)}
    try:
        result = mon.drift(
            q.model_id, q.version, q.environment, q.field, q.start, q.end,
            metric=metric, baseline=baseline, segment=_segment_arg(q),
        )
    except LabelwatchError as exc:
        return {**base, "entries": [], "note": str(exc)}
    entries = sorted(
        result["entries"], key=lambda e: (e["value"] is None, -(e["value"] or 0.0), e["label"])
    )
    return {**base, "entries": entries, "note": result["note"],
            "window_start": result["window_start"], "window_end": result["window_end"]}


def incidents_view(mon: Monitor, q: Query) -> dict[str, Any]:
    """Every incident of the version, newest first."""
    return {"incidents": mon.incidents(model_id=q.model_id, model_version=q.version)}


def monitors_view(mon: Monitor, q: Query) -> dict[str, Any]:
    """The version's monitors and, per monitor, its breaching labels per run."""
    out = []
    for spec in mon.list_monitors(q.model_id, q.version):
        history = mon.monitor_history(spec["name"])[-200:]
        out.append({
            **spec,
            "history": {
                "t": [_epoch(h["window_end"]) for h in history],
                "breaching": [
                    sum(1 for e in h.get("entries", []) if e.get("status") == "breach")
                    for h in history
                ],
            },
        })
    return {"monitors": out}
