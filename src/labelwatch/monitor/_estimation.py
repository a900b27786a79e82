"""Estimated performance, mixed into :class:`~labelwatch.monitor._evaluate.Evaluator`:
precision / recall / F1 of a window without waiting for actuals, from probabilities
calibrated on a labelled baseline (with confidence bands, micro and macro, and beside
them the realized values where actuals came), and the entries of monitors of them.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from labelwatch.errors import InvalidInputError, UndefinedMetricWarning
from labelwatch.metrics import ScoreSketch, estimate_performance
from labelwatch.monitor._monitors import MonitorSpec
from labelwatch.monitor._sketch_views import _positions, _subset, align_edges
from labelwatch.monitor._windows import Entry, EvaluatorParts, _num

if TYPE_CHECKING:
    pass

__all__ = ["Estimation"]

FloatArray = npt.NDArray[np.float64]
_PRF = ("precision", "recall", "f1")


def _nums(values: FloatArray) -> list[float | None]:
    """Floats of an array, NaN as None."""
    return [None if v != v else v for v in np.asarray(values, dtype=np.float64).tolist()]


class Estimation(EvaluatorParts):
    """Estimates of a window's performance and their monitors' entries (mixed into
    ``Evaluator``)."""

    _calibrations: dict[tuple[Any, ...], Any]

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
