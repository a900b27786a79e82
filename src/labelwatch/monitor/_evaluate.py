"""Evaluating monitors: a spec and a window -> one value per label (or per field), the
condition applied, too-small samples stated.

Everything is read from merged cells and baselines through the :class:`Monitor`'s
queries, never from raw events. One :class:`Evaluator` serves one run of many monitors:
windows, baselines and calibrations are read once and shared between monitors, and
metrics at the thresholds read a whole time range of coarse cells once (their anomaly
history then costs a subtraction of cumulative sums).

The checks of drift (:mod:`._drift_checks`) and of estimated performance
(:mod:`._estimation`) are mixed into :class:`Evaluator` from their modules.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from labelwatch.errors import (
    InvalidInputError,
    NotFoundError,
    UndefinedMetricWarning,
)
from labelwatch.labels import LabelSpace
from labelwatch.metrics import SampleStats, ScoreSketch
from labelwatch.metrics._drift import DEFAULT_THRESHOLDS
from labelwatch.monitor._cells import merge_counts
from labelwatch.monitor._drift_checks import DriftChecks
from labelwatch.monitor._estimation import Estimation
from labelwatch.monitor._ingest import SUM_NAMES
from labelwatch.monitor._monitors import (
    DISTANCES,
    DRIFT_METRICS,
    ESTIMATED_METRICS,
    FEATURE_METRICS,
    MonitorSpec,
)
from labelwatch.monitor._queries import (
    COARSE_METRICS,
    SAMPLE_METRICS,
    sample_metric,
    sketch_metric,
    stats_of,
)
from labelwatch.monitor._sketch_views import _positions, _subset
from labelwatch.monitor._windows import HOUR, Entry, RunResult, _num, _reference_hours

if TYPE_CHECKING:
    from labelwatch.monitor._monitor import Monitor

__all__ = ["Evaluator"]

FloatArray = npt.NDArray[np.float64]
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


class Evaluator(DriftChecks, Estimation):
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
