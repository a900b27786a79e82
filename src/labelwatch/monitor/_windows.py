"""Windows of monitor evaluation and what evaluating one gives: the hour (windows are
whole hours), the hours of a window-shaped baseline (the previous window or a fixed
range), one :class:`Entry` per label (or for the field) and a monitor's
:class:`RunResult` of one window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from labelwatch.monitor._monitors import MonitorSpec

if TYPE_CHECKING:
    from labelwatch.metrics import SampleStats, ScoreSketch
    from labelwatch.monitor._monitor import Monitor

__all__ = ["HOUR", "Entry", "EvaluatorParts", "RunResult"]

HOUR = 3600.0


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


def _reference_hours(spec: MonitorSpec, lo: int, hi: int) -> tuple[int, int]:
    """The hours of a window-shaped baseline: the previous window or a fixed range."""
    if isinstance(spec.baseline, tuple):
        return math.ceil(spec.baseline[0] / HOUR), math.ceil(spec.baseline[1] / HOUR)
    return 2 * lo - hi, lo


class EvaluatorParts:
    """What the mixins of ``Evaluator`` (``DriftChecks``, ``Estimation``) use of it,
    declared for type checking only: ``Evaluator`` defines them."""

    mon: Monitor

    if TYPE_CHECKING:

        def window_sketch(
            self, spec: MonitorSpec, fld: str, lo: int, hi: int
        ) -> tuple[ScoreSketch, npt.NDArray[np.float64]]: ...

        def window_stats(
            self, spec: MonitorSpec, fld: str, lo: int, hi: int
        ) -> SampleStats | None: ...

        def baseline(
            self, spec: MonitorSpec, fld: str, kind: str
        ) -> tuple[ScoreSketch, SampleStats | None] | None: ...

        def _baseline_of(
            self, spec: MonitorSpec, fld: str, lo: int, hi: int
        ) -> tuple[ScoreSketch, SampleStats | None] | None: ...

        def _select(self, spec: MonitorSpec, fld: str, sk: ScoreSketch) -> list[str]: ...

        def _judge(
            self,
            spec: MonitorSpec,
            label: str,
            value: float,
            n: float,
            reference: float | None,
            history: npt.NDArray[np.float64] | None,
            prevalence: float | None,
        ) -> Entry: ...
