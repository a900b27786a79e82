"""Drift checks of monitors, mixed into :class:`~labelwatch.monitor._evaluate.Evaluator`:
distances between score distributions (psi, js, hellinger, ks, wasserstein), prevalence
and predicted-positive-rate drift, cardinality and co-occurrence drift, new and silent
labels, and feature drift (or missing rate) against the baseline's feature summaries.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from labelwatch.errors import UndefinedMetricWarning
from labelwatch.metrics import (
    ScoreSketch,
    benjamini_hochberg,
    cardinality_drift,
    cooccurrence_drift,
    drift,
    feature_drift,
    label_changes,
    rate_drift,
)
from labelwatch.monitor._feature_cells import SUMMARIZED
from labelwatch.monitor._monitors import DISTANCES, MonitorSpec
from labelwatch.monitor._pairs import MAX_PAIR_LABELS
from labelwatch.monitor._sketch_views import _positions, _subset, align_edges
from labelwatch.monitor._windows import HOUR, Entry, EvaluatorParts, _num, _reference_hours

if TYPE_CHECKING:
    pass

__all__ = ["DriftChecks"]

FloatArray = npt.NDArray[np.float64]
DISTANCE_GROUPS = 10


class DriftChecks(EvaluatorParts):
    """The entries of drift and feature monitors (mixed into ``Evaluator``)."""

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
