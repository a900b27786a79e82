"""Evaluating monitors: a spec and a window -> one value per label (or per field), the
condition applied, too-small samples stated.

Everything is read from merged cells and baselines through the :class:`Monitor`'s
queries, never from raw events. One :class:`Evaluator` serves one run of many monitors:
windows, baselines and calibrations are read once and shared between monitors, and
metrics at the thresholds read a whole time range of coarse cells once (their anomaly
history then costs a subtraction of cumulative sums).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from labelwatch.errors import (
    IncompatibleMergeError,
    InvalidInputError,
    NotFoundError,
    UndefinedMetricWarning,
)
from labelwatch.labels import LabelSpace
from labelwatch.metrics import (
    SampleStats,
    ScoreSketch,
    benjamini_hochberg,
    cardinality_drift,
    cooccurrence_drift,
    drift,
    estimate_performance,
    feature_drift,
    label_changes,
    rate_drift,
)
from labelwatch.metrics._drift import DEFAULT_THRESHOLDS
from labelwatch.monitor._cells import merge_counts
from labelwatch.monitor._feature_cells import SUMMARIZED
from labelwatch.monitor._ingest import SUM_NAMES
from labelwatch.monitor._monitors import (
    DISTANCES,
    DRIFT_METRICS,
    ESTIMATED_METRICS,
    FEATURE_METRICS,
    MonitorSpec,
)
from labelwatch.monitor._pairs import MAX_PAIR_LABELS
from labelwatch.monitor._queries import (
    COARSE_METRICS,
    SAMPLE_METRICS,
    sample_metric,
    sketch_metric,
    stats_of,
)

if TYPE_CHECKING:
    from labelwatch.monitor._monitor import Monitor

__all__ = ["Entry", "Evaluator", "RunResult"]

FloatArray = npt.NDArray[np.float64]
HOUR = 3600.0
DISTANCE_GROUPS = 10
_N_PREDICTED = SUM_NAMES.index("n_predicted")
_N_LABELED = SUM_NAMES.index("n_labeled")
# ScoreSketch metrics whose sample size is the labelled count (else every prediction)
_LABELED = (
    "precision",
    "recall",
    "f1",
    "accuracy",
    "specificity",
    "roc_auc",
    "average_precision",
    "prevalence",
)


@dataclass
class Entry:
    """One label's (or the field's, label ``"*"``) value in one window."""

    label: str
    value: float | None
    n: float
    status: str  # breach | ok | too_few | undefined
    reference: float | None = None  # the baseline value or the history's mean
    excess: float = 0.0  # how far beyond the condition, in the condition's units (ranking)
    prevalence: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "label": self.label,
            "value": self.value,
            "n": self.n,
            "status": self.status,
            "reference": self.reference,
            "excess": self.excess,
            "prevalence": self.prevalence,
        }
        out.update(self.extra)
        return out


@dataclass
class RunResult:
    """A monitor's evaluation of one window."""

    monitor: str
    window_start: float
    window_end: float
    status: str  # breach | ok | too_few
    entries: list[Entry]
    note: str | None = None
    metric: str = ""
    condition: dict[str, Any] = field(default_factory=dict)
    min_samples: float = 0.0

    @property
    def breaches(self) -> list[Entry]:
        """The breaching entries, most severe first (then the most prevalent)."""
        out = [e for e in self.entries if e.status == "breach"]
        out.sort(key=lambda e: (-e.excess, -(e.prevalence or 0.0), e.label))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "status": self.status,
            "note": self.note,
            "metric": self.metric,
            "condition": self.condition,
            "min_samples": self.min_samples,
            "entries": [e.to_dict() for e in self.entries],
        }


def _num(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


_PRF = ("precision", "recall", "f1")


def _nums(values: FloatArray) -> list[float | None]:
    """Floats of an array, NaN as None."""
    return [None if v != v else v for v in np.asarray(values, dtype=np.float64).tolist()]


@dataclass
class _Range:
    """Coarse counts and sample sums per hour over ``[lo, hi)`` hours, as cumulative sums
    so that any window inside costs one subtraction."""

    lo: int
    labels: list[str]
    counts: FloatArray  # (hours + 1, L, 3, m) cumulative
    sums: FloatArray  # (hours + 1, S) cumulative

    def window(self, lo: int, hi: int) -> tuple[FloatArray, FloatArray]:
        a, b = lo - self.lo, hi - self.lo
        return self.counts[b] - self.counts[a], self.sums[b] - self.sums[a]


class Evaluator:
    """Evaluates monitors against one monitor facade, sharing reads within a run."""

    def __init__(self, mon: Monitor) -> None:
        self.mon = mon
        self._sketches: dict[tuple[Any, ...], tuple[ScoreSketch, FloatArray]] = {}
        self._ranges: dict[tuple[Any, ...], _Range] = {}
        self._baselines: dict[tuple[Any, ...], tuple[ScoreSketch, SampleStats | None] | None] = {}
        self._wanted: dict[tuple[Any, ...], tuple[int, int]] = {}
        self._stats_cache: dict[tuple[Any, ...], SampleStats | None] = {}
        self._calibrations: dict[tuple[Any, ...], Any] = {}

    def plan(self, spec: MonitorSpec, now: float) -> None:
        """Note the hours a monitor's coarse reads will cover (its window, the previous
        one or a fixed baseline range, its anomaly history), so that the first read of
        a field covers every planned monitor of it."""
        if not (
            spec.metric in COARSE_METRICS
            or spec.metric in SAMPLE_METRICS
            or spec.metric == "volume"
        ):
            return
        fld = self._field(spec)
        hi = math.ceil(now / HOUR)
        lo = hi - spec.window_hours
        cond = spec.condition
        if cond.kind == "anomaly":
            lo -= cond.history * spec.window_hours
        elif cond.kind == "relative_change" and spec.baseline == "previous":
            lo -= spec.window_hours
        elif cond.kind == "relative_change" and isinstance(spec.baseline, tuple):
            a, b = _reference_hours(spec, lo, hi)
            lo, hi = min(lo, a), max(hi, b)
        key = self._key(spec, fld)
        old = self._wanted.get(key)
        self._wanted[key] = (lo, hi) if old is None else (min(lo, old[0]), max(hi, old[1]))

    # ----------------------------------------------------------------- reads
    def _field(self, spec: MonitorSpec) -> str:
        info = self.mon._version(spec.model_id, spec.model_version)[1]
        if spec.field is not None:
            self.mon._check_field(info, spec.field)
            return spec.field
        if len(info.dict_fields) != 1:
            raise InvalidInputError(
                f"monitors.{spec.name}.field",
                f"one of the dict fields {list(info.dict_fields)}",
                None,
                hint="the version has several dict fields: name one",
            )
        return info.dict_fields[0]

    def _key(self, spec: MonitorSpec, fld: str) -> tuple[Any, ...]:
        return (spec.model_id, spec.model_version, spec.environment, fld, spec.segment)

    def window_sketch(
        self, spec: MonitorSpec, fld: str, lo: int, hi: int
    ) -> tuple[ScoreSketch, FloatArray]:
        """The full-resolution sketch and summed sample sums of hours ``[lo, hi)``."""
        key = (*self._key(spec, fld), lo, hi)
        got = self._sketches.get(key)
        if got is None:
            w = self.mon._window(
                spec.model_id,
                spec.model_version,
                spec.environment,
                fld,
                lo * HOUR,
                hi * HOUR,
                spec.segment,
                "counts",
            )
            sk = w.sketch_of(fld)
            got = self._sketches[key] = (
                sk,
                w.sums.sum(axis=0) if len(w.sums) else np.zeros(len(SUM_NAMES)),
            )
        return got

    def window_stats(self, spec: MonitorSpec, fld: str, lo: int, hi: int) -> SampleStats | None:
        """The window's sample sums with co-occurrence (None: no label logged yet)."""
        key = (*self._key(spec, fld), lo, hi, "pairs")
        if key not in self._stats_cache:
            try:
                self._stats_cache[key] = self.mon.sample_stats(
                    spec.model_id, spec.model_version, spec.environment, fld,
                    lo * HOUR, hi * HOUR, spec.segment, cooccurrence=True,
                )  # fmt: skip
            except NotFoundError:
                self._stats_cache[key] = None
        return self._stats_cache[key]

    def coarse_range(self, spec: MonitorSpec, fld: str, lo: int, hi: int) -> _Range:
        """Coarse counts and sums per hour covering ``[lo, hi)`` (read once per run and
        field; a later wider request reads again)."""
        key = self._key(spec, fld)
        got = self._ranges.get(key)
        if got is not None and got.lo <= lo and hi <= got.lo + len(got.sums) - 1:
            return got
        if got is not None:
            lo, hi = min(lo, got.lo), max(hi, got.lo + len(got.sums) - 1)
        wanted = self._wanted.get(key)
        if wanted is not None:  # what the run's planned monitors need: one read for all
            lo, hi = min(lo, wanted[0]), max(hi, wanted[1])
        w = self.mon._window(
            spec.model_id,
            spec.model_version,
            spec.environment,
            fld,
            lo * HOUR,
            hi * HOUR,
            spec.segment,
            "coarse",
            unit=1,  # cumulated per hour
        )
        edges = w.spec.edges(fld)
        m = len(ScoreSketch.empty([], bins=1, thresholds=edges).edges)
        n_hours, n_labels = hi - lo, len(w.labels)
        counts = merge_counts(
            (n_hours, n_labels, 3, m), (w.buckets - lo) * n_labels + w.label_pos, w.blobs
        )
        sums = np.zeros((n_hours, len(SUM_NAMES)))
        if len(w.sum_buckets):
            np.add.at(sums, w.sum_buckets - lo, w.sums)
        cum_counts = np.zeros((n_hours + 1, n_labels, 3, m))
        np.cumsum(counts, axis=0, out=cum_counts[1:])
        cum_sums = np.zeros((n_hours + 1, len(SUM_NAMES)))
        np.cumsum(sums, axis=0, out=cum_sums[1:])
        got = self._ranges[key] = _Range(lo, list(w.labels), cum_counts, cum_sums)
        return got

    def baseline(
        self, spec: MonitorSpec, fld: str, kind: str
    ) -> tuple[ScoreSketch, SampleStats | None] | None:
        key = (spec.model_id, spec.model_version, fld, kind)
        if key not in self._baselines:
            try:
                self._baselines[key] = self.mon.baseline(
                    spec.model_id, spec.model_version, kind, fld
                )
            except NotFoundError:
                self._baselines[key] = None
        return self._baselines[key]

    # -------------------------------------------------------------- evaluate
    def evaluate(self, spec: MonitorSpec, now: float) -> RunResult:
        """The monitor over the window ``[now - window, now)`` (hours whose start is in it)."""
        fld = self._field(spec)
        hi = math.ceil(now / HOUR)
        lo = hi - spec.window_hours
        return self.evaluate_window(spec, fld, lo, hi)

    def evaluate_window(self, spec: MonitorSpec, fld: str, lo: int, hi: int) -> RunResult:
        entries, note = self._entries(spec, fld, lo, hi)
        if any(e.status == "breach" for e in entries):
            status = "breach"
        elif entries and all(e.status in ("too_few", "undefined") for e in entries):
            status = "too_few"
        elif not entries:
            status = "too_few"
            note = note or "no data in the window"
        else:
            status = "ok"
        cond = spec.condition.to_dict()
        if spec.condition.kind == "significant" and spec.metric in DISTANCES:
            cond.setdefault("value", DEFAULT_THRESHOLDS[spec.metric])
        return RunResult(
            spec.name,
            lo * HOUR,
            hi * HOUR,
            status,
            entries,
            note,
            metric=spec.metric,
            condition=cond,
            min_samples=spec.min_samples,
        )

    def _baseline_of(
        self, spec: MonitorSpec, fld: str, lo: int, hi: int
    ) -> tuple[ScoreSketch, SampleStats | None] | None:
        """The reference side: a stored baseline, the previous window or a fixed range."""
        if spec.baseline in ("training", "test"):
            return self.baseline(spec, fld, str(spec.baseline))
        a, b = _reference_hours(spec, lo, hi)
        sk, sums = self.window_sketch(spec, fld, a, b)
        stats = self._stats(spec, fld, sk.labels.names, sums)
        return sk, stats

    def _stats(
        self, spec: MonitorSpec, fld: str, labels: Sequence[str], sums: FloatArray
    ) -> SampleStats | None:
        vspec = self.mon._version(spec.model_id, spec.model_version)[1]
        if not labels:
            return None
        return stats_of(vspec, fld, list(labels), sums)

    def _entries(
        self, spec: MonitorSpec, fld: str, lo: int, hi: int
    ) -> tuple[list[Entry], str | None]:
        metric = spec.metric
        if metric in FEATURE_METRICS:
            return self._feature_entries(spec, lo, hi)
        if metric in DRIFT_METRICS:
            return self._drift_entries(spec, fld, lo, hi)
        if metric in ESTIMATED_METRICS:
            return self._estimated_entries(spec, fld, lo, hi)
        values, n, labels, prevalence = self._metric_values(spec, fld, lo, hi)
        if values is None:
            return [], "no labels logged yet"
        reference = None
        hist = None
        cond = spec.condition
        if cond.kind == "relative_change":
            reference = self._reference_values(spec, fld, lo, hi, labels)
        elif cond.kind == "anomaly":
            width = hi - lo
            rows = []
            for k in range(1, cond.history + 1):
                v, _n, _l, _p = self._metric_values(
                    spec, fld, lo - k * width, hi - k * width, labels
                )
                if v is not None:
                    rows.append(v)
            hist = np.array(rows) if rows else np.full((0, len(labels)), np.nan)
        out = []
        for j, label in enumerate(labels):
            out.append(
                self._judge(
                    spec,
                    label,
                    float(values[j]),
                    float(n[j]),
                    None if reference is None else reference[j],
                    None if hist is None else hist[:, j],
                    None if prevalence is None else prevalence[j],
                )
            )
        return out, None

    # the plain metric of a window, per selected label (or one value for the field)
    def _metric_values(
        self, spec: MonitorSpec, fld: str, lo: int, hi: int, labels: list[str] | None = None
    ) -> tuple[FloatArray | None, FloatArray, list[str], FloatArray | None]:
        metric = spec.metric
        vspec = self.mon._version(spec.model_id, spec.model_version)[1]
        if metric in COARSE_METRICS or metric in SAMPLE_METRICS or metric == "volume":
            rng = self.coarse_range(spec, fld, lo, hi)
            counts, sums = rng.window(lo, hi)
            names = rng.labels
            edges = vspec.edges(fld)
            sk = ScoreSketch(LabelSpace(names), counts, bins=1, thresholds=edges) if names else None
        else:
            full, sums = self.window_sketch(spec, fld, lo, hi)
            names = list(full.labels.names)
            sk = full if names else None
        if metric == "volume":
            return np.array([sums[_N_PREDICTED]]), np.array([sums[_N_PREDICTED]]), ["*"], None
        if sk is None:
            return None, np.zeros(0), [], None
        if metric in SAMPLE_METRICS:
            stats = stats_of(vspec, fld, names, sums)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                value = sample_metric(stats, metric)
            n_rows = sums[_N_PREDICTED] if metric == "label_cardinality" else sums[_N_LABELED]
            return np.array([value]), np.array([n_rows]), ["*"], None
        if labels is None:
            labels = self._select(spec, fld, sk)
        idx = _positions(sk, labels)
        sub = _subset(sk, idx)
        ths = np.array([vspec.threshold(fld, x) for x in labels])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            value = sketch_metric(sub, metric, ths, spec.average, sums)
        counted = (
            sub.counts[:, :2].sum(axis=(1, 2))
            if metric in _LABELED
            else sub.counts.sum(axis=(1, 2))
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            prev = sub.counts[:, 1].sum(axis=1) / sub.counts[:, :2].sum(axis=(1, 2))
        if spec.average is not None:
            return np.array([float(value)]), np.array([counted.sum()]), ["*"], None
        return np.asarray(value, dtype=float), counted, labels, prev

    def _reference_values(
        self, spec: MonitorSpec, fld: str, lo: int, hi: int, labels: list[str]
    ) -> FloatArray:
        """The metric on the baseline side, per entry (NaN where it has none)."""
        if spec.baseline == "previous" or isinstance(spec.baseline, tuple):
            a, b = _reference_hours(spec, lo, hi)
            v, _n, _got, _p = self._metric_values(
                spec, fld, a, b, labels if labels != ["*"] else None
            )
            if v is None:
                return np.full(len(labels), np.nan)
            return v
        base = self.baseline(spec, fld, str(spec.baseline))
        if base is None:
            return np.full(len(labels), np.nan)
        sk, samples = base
        vspec = self.mon._version(spec.model_id, spec.model_version)[1]
        metric = spec.metric
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            if metric in SAMPLE_METRICS:
                return np.array([np.nan if samples is None else sample_metric(samples, metric)])
            if metric == "volume":
                return np.array([np.nan])
            idx = _positions(sk, labels)
            sub = _subset(sk, idx) if labels != ["*"] else sk
            names = list(sub.labels.names)
            ths = np.array([vspec.threshold(fld, x) for x in names])
            zero = np.zeros(len(SUM_NAMES))
            value = sketch_metric(sub, metric, ths, spec.average, zero)
        return np.atleast_1d(np.asarray(value, dtype=float))

    def _select(self, spec: MonitorSpec, fld: str, sk: ScoreSketch) -> list[str]:
        names = list(sk.labels.names)
        if spec.labels == "all":
            return names
        if isinstance(spec.labels, tuple):
            return list(spec.labels)
        k = int(spec.labels)
        base = self.baseline(spec, fld, "training")
        ref = base[0] if base is not None else sk
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            counts = ref.counts
            labelled = counts[:, :2].sum(axis=(1, 2))
            positives = counts[:, 1].sum(axis=1)
            if labelled.sum() > 0:
                with np.errstate(invalid="ignore", divide="ignore"):
                    rate = np.where(labelled > 0, positives / labelled, 0.0)
            else:  # no actuals: the mean score stands in for prevalence
                rate = np.nan_to_num(np.asarray(ref.mean_score(None), dtype=float))
        order = sorted(range(len(ref.labels.names)), key=lambda j: (-rate[j], ref.labels.names[j]))
        return [ref.labels.names[j] for j in order[:k]]

    # ------------------------------------------------------------- judging
    def _judge(
        self,
        spec: MonitorSpec,
        label: str,
        value: float,
        n: float,
        reference: float | None,
        history: FloatArray | None,
        prevalence: float | None,
    ) -> Entry:
        cond = spec.condition
        prev = None if prevalence is None or math.isnan(prevalence) else float(prevalence)
        entry = Entry(label, _num(value), float(n), "ok", prevalence=prev)
        if n < spec.min_samples:
            entry.status = "too_few"
            return entry
        if math.isnan(value):
            entry.status = "undefined"
            return entry
        excess = 0.0
        if cond.kind == "above":
            excess = value - float(cond.value)  # type: ignore[arg-type]
        elif cond.kind == "below":
            excess = float(cond.value) - value  # type: ignore[arg-type]
        elif cond.kind == "relative_change":
            if reference is None or math.isnan(reference) or reference == 0:
                entry.status = "undefined"
                entry.reference = None if reference is None else _num(reference)
                return entry
            entry.reference = float(reference)
            change = (value - reference) / abs(reference)
            entry.extra["change"] = change
            signed = {"up": change, "down": -change, "any": abs(change)}[cond.direction]
            excess = signed - float(cond.value)  # type: ignore[arg-type]
        elif cond.kind == "anomaly":
            hist = history[~np.isnan(history)] if history is not None else np.zeros(0)
            if len(hist) < 3:
                entry.status = "too_few"
                entry.extra["history"] = len(hist)
                return entry
            mean, sd = float(hist.mean()), float(hist.std(ddof=1))
            sd = max(sd, 1e-9, 1e-6 * abs(mean))
            z = (value - mean) / sd
            entry.reference = mean
            entry.extra["z"] = z
            signed = {"up": z, "down": -z, "any": abs(z)}[cond.direction]
            excess = signed - float(cond.value)  # type: ignore[arg-type]
        if excess > 0:
            entry.status = "breach"
            entry.excess = excess
        return entry

    # ---------------------------------------------------------------- drift
    def _drift_entries(
        self, spec: MonitorSpec, fld: str, lo: int, hi: int
    ) -> tuple[list[Entry], str | None]:
        base = self._baseline_of(spec, fld, lo, hi)
        if base is None:
            return [], f"no {spec.baseline} baseline logged for {fld!r}"
        base_sk, base_stats = base
        if not base_sk.counts.any():
            return [], "the baseline has no data"
        cur_sk, _sums = self.window_sketch(spec, fld, lo, hi)
        metric, cond = spec.metric, spec.condition
        threshold = cond.value if cond.kind == "significant" else None
        if metric in ("cardinality_drift", "cooccurrence_drift", "predicted_cooccurrence_drift"):
            # the sample sums with their co-occurrence (exact cardinality variance)
            cur_stats = self.window_stats(spec, fld, lo, hi)
            if spec.baseline not in ("training", "test"):
                base_stats = self.window_stats(spec, fld, *_reference_hours(spec, lo, hi))
            if base_stats is None or cur_stats is None:
                return [], "no sample sums on one side"
            if metric == "cardinality_drift":
                res = cardinality_drift(
                    base_stats,
                    cur_stats,
                    "predicted",
                    min_samples=spec.min_samples,
                    threshold=threshold or 0.0,
                )
                return self._from_drift(spec, res, None), None
            if not base_stats.has_cooccurrence:
                return [], "the baseline keeps no co-occurrence sums"
            if not cur_stats.has_cooccurrence:
                return [], (
                    f"co-occurrence is not collected: {fld!r} has more than "
                    f"{MAX_PAIR_LABELS} labels"
                )
            kind: Literal["actual", "predicted"] = (
                "actual" if metric == "cooccurrence_drift" else "predicted"
            )
            res = cooccurrence_drift(
                base_stats,
                cur_stats,
                kind,
                min_samples=spec.min_samples,
                threshold=threshold or 0.0,
            )
            entries = self._from_drift(spec, res, None)
            if spec.labels != "all":
                chosen = set(self._select(spec, fld, cur_sk))
                entries = [e for e in entries if set(e.label.split("&")) <= chosen]
            return entries, None
        labels = self._select(spec, fld, cur_sk) if cur_sk.labels.names else []
        if not labels:
            return [], "no labels logged yet"
        cur = _subset(cur_sk, [j for j in _positions(cur_sk, labels) if j >= 0])
        keep_base = [j for j, x in enumerate(base_sk.labels.names) if x in labels]
        if spec.labels == "all":
            keep_base = list(range(len(base_sk.labels.names)))
        base_sub = _subset(base_sk, keep_base)
        base_sub, cur = align_edges(base_sub, cur)
        if metric in ("new_labels", "silent_labels"):
            ch = label_changes(base_sub, cur)
            names = ch.unseen + ch.new if metric == "new_labels" else ch.silent
            names = tuple(dict.fromkeys(names))
            entries = [
                Entry(
                    x,
                    1.0,
                    float(cur.count()[cur.labels.names.index(x)]) if x in cur.labels.names else 0.0,
                    "breach",
                    excess=1.0,
                )
                for x in names
            ]
            return entries, None
        if metric in DISTANCES:
            # psi / js / hellinger on baseline deciles (the usual PSI; 200 fine bins
            # would measure sampling noise), ks / wasserstein on the full grid
            groups = DISTANCE_GROUPS if metric in ("psi", "js", "hellinger") else None
            res = drift(
                base_sub,
                cur,
                metric,  # type: ignore[arg-type]
                threshold=threshold,
                min_samples=spec.min_samples,
                groups=groups,
            )
            prevalence = _prevalence(cur, res.labels)
            return self._from_drift(spec, res, prevalence), None
        rate: Literal["prevalence", "predicted_positive_rate"] = (
            "prevalence" if metric == "prevalence_drift" else "predicted_positive_rate"
        )
        vspec = self.mon._version(spec.model_id, spec.model_version)[1]
        by_threshold: dict[float, list[str]] = {}
        for x in cur.labels.names:
            by_threshold.setdefault(vspec.threshold(fld, x), []).append(x)
        parts = []
        for t, group in by_threshold.items():
            c = _subset(cur, _positions(cur, group))
            b = _subset(
                base_sub,
                [j for j in _positions(base_sub, group) if j >= 0],
            )
            parts.append(
                rate_drift(
                    b, c, rate, t=t, min_samples=spec.min_samples, threshold=threshold or 0.0
                )
            )
        res = _concat(parts)
        return self._from_drift(spec, res, _prevalence(cur, res.labels)), None

    def _from_drift(
        self, spec: MonitorSpec, res: Any, prevalence: dict[str, float] | None
    ) -> list[Entry]:
        cond = spec.condition
        out = []
        for j, label in enumerate(res.labels):
            n = float(min(res.n_baseline[j], res.n_current[j]))
            value = float(res.value[j])
            prev = None if prevalence is None else prevalence.get(label)
            if cond.kind == "significant":
                entry = Entry(label, _num(value), n, "ok", prevalence=prev)
                if res.pvalue is not None:
                    entry.extra["pvalue"] = _num(res.pvalue[j])
                    entry.extra["adjusted"] = _num(res.adjusted[j])
                if res.baseline is not None:
                    entry.reference = _num(res.baseline[j])
                    entry.extra["current"] = _num(res.current[j])
                if bool(res.too_few[j]):
                    entry.status = "too_few"
                elif bool(res.significant[j]):
                    entry.status = "breach"
                    adj = entry.extra.get("adjusted")
                    entry.excess = (
                        -math.log10(max(adj, 1e-300))
                        if adj is not None
                        else abs(value) / max(res.threshold, 1e-12)
                    )
                out.append(entry)
            else:
                if bool(res.too_few[j]):
                    out.append(Entry(label, _num(value), n, "too_few", prevalence=prev))
                else:
                    out.append(self._judge(spec, label, value, n, None, None, prev))
        return out

    # ------------------------------------------------------------- features
    def _feature_entries(
        self, spec: MonitorSpec, lo: int, hi: int
    ) -> tuple[list[Entry], str | None]:
        """Per feature: its drift against the baseline's summary (Benjamini-Hochberg over
        the features for the tested methods, ks and chi2), or its missing rate."""
        vspec = self.mon._version(spec.model_id, spec.model_version)[1]
        names = (
            list(spec.features)
            if spec.features
            else [f for f, kind in vspec.features.items() if kind in SUMMARIZED]
        )
        unknown = [f for f in names if vspec.features.get(f) not in SUMMARIZED]
        if unknown:
            return [], f"not a numeric, categorical, boolean or string feature: {unknown[0]}"
        current = {
            f: self.mon.feature_summary(
                spec.model_id, spec.model_version, spec.environment, f,
                lo * HOUR, hi * HOUR, spec.segment,
            )
            for f in names
        }  # fmt: skip
        if spec.metric == "missing_rate":
            out = []
            for f in names:
                cur = current[f]
                total = 0.0 if cur is None else cur.count + cur.missing
                rate = cur.missing / total if cur is not None and total > 0 else math.nan
                out.append(self._judge(spec, f, rate, total, None, None, None))
            return out, None
        if spec.baseline in ("training", "test"):
            base = self.mon.baseline_features(spec.model_id, spec.model_version, str(spec.baseline))
        else:
            a, b = _reference_hours(spec, lo, hi)
            base = {
                f: s
                for f in names
                if (s := self.mon.feature_summary(
                    spec.model_id, spec.model_version, spec.environment, f,
                    a * HOUR, b * HOUR, spec.segment,
                )) is not None
            }  # fmt: skip
        if not base:
            return [], f"no feature summaries in the {spec.to_dict()['baseline']} baseline"
        cond = spec.condition
        threshold = cond.value if cond.kind == "significant" else None
        results = []
        for f in names:
            if f not in base or current[f] is None or type(base[f]) is not type(current[f]):
                continue
            method = spec.method
            if vspec.features[f] != "numeric" and method in ("ks", "wasserstein"):
                method = "chi2"  # categories have no order: their test is chi-square
            results.append(
                feature_drift(
                    base[f],
                    current[f],  # type: ignore[arg-type]
                    method=method,  # type: ignore[arg-type]
                    threshold=threshold,
                    min_samples=spec.min_samples,
                    name=f,
                )
            )
        if not results:
            return [], "no feature with data on both sides"
        return self._from_drift(spec, _concat(results), None), None

    # ----------------------------------------------------------- estimation
    def _estimated_entries(
        self, spec: MonitorSpec, fld: str, lo: int, hi: int
    ) -> tuple[list[Entry], str | None]:
        kind = str(spec.baseline)
        base = self.baseline(spec, fld, kind)
        if base is None:
            return [], f"no {kind} baseline logged for {fld!r}: estimation needs one"
        cur, _sums = self.window_sketch(spec, fld, lo, hi)
        if not cur.labels.names:
            return [], "no labels logged yet"
        labels = [x for x in self._select(spec, fld, cur) if x in base[0].labels.names]
        est = self.estimate(
            spec.model_id,
            spec.model_version,
            fld,
            kind,
            base[0],
            _subset(cur, _positions(cur, labels)),
        )
        what = spec.metric.removeprefix("estimated_")
        if spec.average is not None:
            agg = est[spec.average][what]
            n = float(np.sum(est["n"]))
            entry = self._judge(
                spec, "*", agg[0] if agg[0] is not None else math.nan, n, None, None, None
            )
            entry.extra.update(
                lower=agg[1], upper=agg[2], realized=est["realized_" + spec.average][what]
            )
            return [entry], None
        out = []
        for j, label in enumerate(est["labels"]):
            v = est[what][j]
            entry = self._judge(
                spec,
                label,
                math.nan if v is None else v,
                float(est["n"][j]),
                None,
                None,
                est["prevalence"][j],
            )
            entry.extra.update(
                lower=est[what + "_lower"][j],
                upper=est[what + "_upper"][j],
                realized=est["realized"][what][j],
                n_labeled=est["n_labeled"][j],
            )
            out.append(entry)
        return out, None

    def estimate(
        self,
        model_id: str,
        model_version: str,
        fld: str,
        kind: str,
        base: ScoreSketch,
        window: ScoreSketch,
        level: float = 0.95,
        per_label: bool = True,
    ) -> dict[str, Any]:
        """Per-label estimated precision / recall / F1 (with bands) of ``window`` at each
        label's threshold, micro and macro, and the realized values where actuals came.
        ``per_label=False``: the micro and macro estimates only."""
        vspec = self.mon._version(model_id, model_version)[1]
        # the same baseline object and window grid: the calibration fitted before
        key = (model_id, model_version, fld, kind, id(base), window.bins, window.thresholds)
        original = base
        base, window = align_edges(base, window)
        cached = self._calibrations.get(key)
        if cached is not None and cached[0] is original:  # (an id is reused once freed)
            cal = cached[1]
        else:
            cal = self.mon._calibration((model_id, model_version, fld, kind, base.to_bytes()), base)
            self._calibrations[key] = (original, cal)
        names = list(window.labels.names)
        calibrated = set(cal.labels)
        missing = [x for x in names if x not in calibrated]
        if missing:
            raise InvalidInputError(
                "labels", f"labels of the {kind} baseline", missing[0], label=missing[0]
            )
        n_l = len(names)
        res: dict[str, Any] = {"labels": names, "level": level}
        keys = (
            "tp",
            "fp",
            "fn",
            "tn",
            "precision",
            "precision_lower",
            "precision_upper",
            "recall",
            "recall_lower",
            "recall_upper",
            "f1",
            "f1_lower",
            "f1_upper",
            "n",
        )
        arrays = {k: np.full(n_l, np.nan) for k in keys}
        groups: dict[float, list[int]] = {}
        for j, x in enumerate(names):
            groups.setdefault(vspec.threshold(fld, x), []).append(j)
        single = len(groups) == 1
        micro_macro: dict[str, Any] = {}
        for t, idx in groups.items():
            e = estimate_performance(cal, _subset(window, idx), t=t, level=level)
            for k in keys:
                arrays[k][idx] = getattr(e, k)
            if single:
                micro_macro = {"micro": e.micro, "macro": e.macro}
        if not per_label and single:
            for a in ("micro", "macro"):
                res[a] = {m: tuple(_num(v) for v in micro_macro[a][m]) for m in _PRF}
            return res
        ths = np.array([vspec.threshold(fld, x) for x in names])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            realized = {
                m: np.asarray(getattr(window, m)(ths, None), dtype=float)
                for m in ("precision", "recall", "f1")
            }
            realized_avg = {
                a: {m: _num(getattr(window, m)(ths, a)) for m in ("precision", "recall", "f1")}
                for a in ("micro", "macro")
            }
        labelled = window.counts[:, :2].sum(axis=(1, 2))
        for m in ("precision", "recall", "f1"):
            realized[m][labelled == 0] = np.nan
        if not single:  # micro pools the expected counts; macro averages the labels; no band
            tp, fp, fn = (np.nansum(arrays[k]) for k in ("tp", "fp", "fn"))
            p = tp / (tp + fp) if tp + fp > 0 else math.nan
            r = tp / (tp + fn) if tp + fn > 0 else math.nan
            f = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else math.nan
            micro_macro = {
                "micro": {
                    "precision": (p, math.nan, math.nan),
                    "recall": (r, math.nan, math.nan),
                    "f1": (f, math.nan, math.nan),
                },
                "macro": {
                    m: (
                        float(np.nanmean(arrays[m])) if np.isfinite(arrays[m]).any() else math.nan,
                        math.nan,
                        math.nan,
                    )
                    for m in ("precision", "recall", "f1")
                },
            }
        if not per_label:
            for a in ("micro", "macro"):
                res[a] = {m: tuple(_num(v) for v in micro_macro[a][m]) for m in _PRF}
            return res
        for k in keys:
            res[k] = _nums(arrays[k])
        for a in ("micro", "macro"):
            res[a] = {
                m: tuple(_num(v) for v in micro_macro[a][m]) for m in ("precision", "recall", "f1")
            }
            res["realized_" + a] = (
                realized_avg[a] if labelled.sum() > 0 else {m: None for m in realized}
            )
        res["realized"] = {m: _nums(realized[m]) for m in realized}
        res["n_labeled"] = [float(v) for v in labelled]
        with np.errstate(invalid="ignore", divide="ignore"):
            prev = window.counts[:, 1].sum(axis=1) / labelled
        res["prevalence"] = [_num(v) for v in prev]
        return res


def align_edges(a: ScoreSketch, b: ScoreSketch) -> tuple[ScoreSketch, ScoreSketch]:
    """Both sketches on their common edges: each folded onto the thresholds both have
    (a baseline built by a head may lack an edge the version's sketches carry, such as
    the default 0.5). Every fine bin lies inside one common bin, so folding is exact;
    metrics at a common threshold are unchanged."""
    if a.bins == b.bins and a.thresholds == b.thresholds:
        return a, b
    if a.bins != b.bins:
        raise IncompatibleMergeError(
            f"cannot compare sketches of {a.bins} and {b.bins} bins: log the baseline with "
            "the version's bins"
        )
    common = tuple(sorted(set(a.thresholds) & set(b.thresholds)))
    if not common:  # the grid's midpoint is an edge of both (any even number of bins)
        common = (0.5,)
    return _fold(a, common), _fold(b, common)


def _fold(sk: ScoreSketch, thresholds: tuple[float, ...]) -> ScoreSketch:
    if sk.thresholds == thresholds:
        return sk
    target = ScoreSketch.empty(sk.labels, thresholds=thresholds, bins=sk.bins)
    where = np.searchsorted(target.edges, sk.edges, side="left")
    counts = np.zeros_like(target.counts)
    for j, k in enumerate(where.tolist()):  # at most a few hundred bins
        counts[:, :, k] += sk.counts[:, :, j]
    return ScoreSketch(sk.labels, counts, bins=sk.bins, thresholds=thresholds)


def _positions(sk: ScoreSketch, labels: Sequence[str]) -> list[int]:
    """Each label's position in the sketch (-1: not in it)."""
    pos = {x: j for j, x in enumerate(sk.labels.names)}
    return [pos.get(x, -1) for x in labels]


def _reference_hours(spec: MonitorSpec, lo: int, hi: int) -> tuple[int, int]:
    """The hours of a window-shaped baseline: the previous window or a fixed range."""
    if isinstance(spec.baseline, tuple):
        return math.ceil(spec.baseline[0] / HOUR), math.ceil(spec.baseline[1] / HOUR)
    return 2 * lo - hi, lo


def _prevalence(sk: ScoreSketch, labels: Sequence[str]) -> dict[str, float]:
    """Per label: the positive rate among the labelled, or the mean score without actuals."""
    out = {}
    names = sk.labels.names
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        lab = sk.counts[:, :2].sum(axis=(1, 2))
        pos = sk.counts[:, 1].sum(axis=1)
        mean = np.asarray(sk.mean_score(None), dtype=float)
    for x in labels:
        if x not in names:
            continue
        j = names.index(x)
        v = pos[j] / lab[j] if lab[j] > 0 else mean[j]
        if not math.isnan(v):
            out[x] = float(v)
    return out


def _subset(sk: ScoreSketch, idx: Sequence[int]) -> ScoreSketch:
    """The sketch of the labels at ``idx`` (-1: a label without data, counted zero)."""
    names = sk.labels.names
    if len(idx) == len(names) and all(j == k for k, j in enumerate(idx)):
        return sk
    counts = np.zeros((len(idx), *sk.counts.shape[1:]))
    picked = [j for j in idx]
    ok = np.array([j >= 0 for j in picked], dtype=bool)
    if ok.any():
        counts[ok] = sk.counts[np.array([j for j in picked if j >= 0], dtype=np.intp)]
    labels = [names[j] if j >= 0 else f"?{k}" for k, j in enumerate(picked)]
    return ScoreSketch(LabelSpace(labels), counts, bins=sk.bins, thresholds=sk.thresholds)


def _concat(parts: list[Any]) -> Any:
    """One DriftResult of several over disjoint labels (BH redone across them all)."""
    if len(parts) == 1:
        return parts[0]
    from dataclasses import replace

    first = parts[0]

    def cat(name: str) -> Any:
        vals = [getattr(p, name) for p in parts]
        return None if any(v is None for v in vals) else np.concatenate(vals)

    pvalue = cat("pvalue")
    too_few = cat("too_few")
    significant = cat("significant")
    adjusted = cat("adjusted")
    if pvalue is not None and first.alpha is not None:
        tested = ~too_few & ~np.isnan(pvalue)
        rejected = np.zeros(len(pvalue), dtype=bool)
        adjusted = np.full(len(pvalue), np.nan)
        if tested.any():
            rej, adj = benjamini_hochberg(pvalue[tested], first.alpha)
            rejected[tested], adjusted[tested] = rej, adj
        value = cat("value")
        significant = rejected & (np.abs(value) > first.threshold)
    return replace(
        first,
        labels=tuple(x for p in parts for x in p.labels),
        value=cat("value"),
        significant=significant,
        too_few=too_few,
        n_baseline=cat("n_baseline"),
        n_current=cat("n_current"),
        pvalue=pvalue,
        adjusted=adjusted,
        baseline=cat("baseline"),
        current=cat("current"),
    )
