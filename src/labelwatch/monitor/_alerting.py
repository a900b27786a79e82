"""Monitors, incidents and webhooks on the :class:`~labelwatch.monitor.Monitor` facade.

- **Monitors** are declared as data (:mod:`._monitors`) and stored by name; applying the
  same document again changes nothing.
- **Runs** evaluate due (or named) monitors over their window ending at ``now`` and store
  each window's values (the metric's own history). Windows whose hours received late
  actuals since they were evaluated are evaluated again.
- **Incidents** group and deduplicate: one breaching run of a monitor over 300 labels is
  one incident listing the breaching labels ranked by how far they breach, then by
  prevalence. While an incident is open (or acknowledged) further breaches of the same
  monitor fold into it; a run that finds the condition cleared resolves it.
- **Webhooks** receive ``incident.opened`` / ``incident.resolved`` events through a
  durable outbox: a POST of JSON signed with HMAC-SHA256 of the body under the webhook's
  secret (header ``X-Labelwatch-Signature: sha256=<hex>``, as GitHub signs its hooks),
  retried with exponential backoff until a 2xx answer or ``max_attempts``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import compress
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labelwatch.errors import InvalidInputError, NotFoundError
from labelwatch.labels import LabelSpace
from labelwatch.metrics import ScoreSketch
from labelwatch.metrics._estimate import Calibration, fit_calibration
from labelwatch.monitor import _tables as t
from labelwatch.monitor._cells import merge_counts
from labelwatch.monitor._evaluate import HOUR, Evaluator, RunResult, _subset
from labelwatch.monitor._feature_cells import SUMMARIZED, Summary, merge_window, summary_from_dict
from labelwatch.monitor._ingest import parse_time, segment_value
from labelwatch.monitor._monitors import ACTUALS_METRICS, DRIFT_METRICS, SEVERITIES, MonitorSpec
from labelwatch.monitor._schema import check_name, dumps, is_text
from labelwatch.monitor._store import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from labelwatch.monitor._schema import VersionSpec

__all__ = ["AlertsMixin", "sign"]

_OPEN = ("open", "acknowledged")
_BACKOFF = 2.0  # seconds before the first retry, doubled each time
_MAX_BACKOFF = 600.0
_CALIBRATIONS = 64  # fitted calibrations kept per facade


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def sign(secret: str, body: bytes) -> str:
    """The signature header's value of ``body``: ``"sha256=" + HMAC-SHA256 hex``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _at(value: Any, what: str = "now") -> float:
    """Seconds since the epoch of ``value`` (None: the current time)."""
    return time.time() if value is None else parse_time(value, what)


def _incident(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "monitor": row.monitor,
        "status": row.status,
        "severity": row.severity,
        "opened_at": _iso(row.opened_at),
        "updated_at": _iso(row.updated_at),
        "resolved_at": _iso(row.resolved_at),
        "resolved_by": row.resolved_by,
        "acknowledged_by": row.acknowledged_by,
        "window_start": _iso(row.window_start),
        "window_end": _iso(row.window_end),
        "runs": row.runs,
        "breaches": json.loads(row.breaches),
    }


class AlertsMixin:
    """Monitors, runs, incidents and webhooks (mixed into ``Monitor``)."""

    _engine: Engine
    _calibrations: dict[tuple[Any, ...], Calibration]

    if TYPE_CHECKING:

        def _version(self, model_id: str, model_version: str) -> tuple[int, VersionSpec]: ...

    # ------------------------------------------------------------- monitors
    def apply_monitors(self, monitors: Any) -> list[dict[str, Any]]:
        """Create or replace monitors from their dicts (one, or a list): all are checked
        before any is stored. -> per monitor ``{"name", "action": created | updated |
        unchanged}``."""
        items = [monitors] if isinstance(monitors, Mapping) else monitors
        if isinstance(items, str | bytes) or not isinstance(items, Sequence) or not items:
            raise InvalidInputError(
                "monitors", "a monitor dict or a non-empty list of them", monitors
            )
        specs = []
        for i, item in enumerate(items):
            spec = MonitorSpec.from_dict(item, f"monitors[{i}]")
            vid, vspec = self._version(spec.model_id, spec.model_version)
            if spec.field is not None and spec.field not in vspec.dict_fields:
                raise InvalidInputError(
                    f"monitors[{i}].field",
                    f"a dict field among {list(vspec.dict_fields)}",
                    spec.field,
                )
            if spec.field is None and len(vspec.dict_fields) != 1:
                raise InvalidInputError(
                    f"monitors[{i}].field",
                    f"one of the dict fields {list(vspec.dict_fields)}",
                    None,
                    hint="the version has several dict fields: name one",
                )
            specs.append((vid, spec))
        names = [s.name for _, s in specs]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise InvalidInputError("monitors", "unique monitor names", dup)
        out = []
        now = time.time()
        m = t.monitors
        with write_transaction(self._engine, 0) as conn:
            for vid, spec in specs:
                text = dumps(spec.to_dict())
                row = conn.execute(
                    sa.select(m.c.spec, m.c.version_id).where(m.c.name == spec.name)
                ).first()
                if row is None:
                    conn.execute(
                        sa.insert(m).values(
                            name=spec.name,
                            version_id=vid,
                            spec=text,
                            enabled=spec.enabled,
                            created_at=now,
                            updated_at=now,
                            last_run_at=None,
                        )
                    )
                    action = "created"
                elif row.spec == text:
                    action = "unchanged"
                else:
                    conn.execute(
                        sa.update(m)
                        .where(m.c.name == spec.name)
                        .values(
                            version_id=vid,
                            spec=text,
                            enabled=spec.enabled,
                            updated_at=now,
                            last_run_at=None,
                        )
                    )
                    if row.version_id != vid or json.loads(row.spec)["metric"] != spec.metric:
                        conn.execute(
                            sa.delete(t.monitor_runs).where(t.monitor_runs.c.monitor == spec.name)
                        )
                    action = "updated"
                out.append({"name": spec.name, "action": action})
        return out

    def _monitor_specs(
        self, conn: Connection, names: Sequence[str] | None = None
    ) -> list[tuple[Any, MonitorSpec]]:
        m = t.monitors
        query = sa.select(m).order_by(m.c.name)
        if names is not None:
            query = query.where(m.c.name.in_(list(names)))
        rows = conn.execute(query).all()
        if names is not None:
            missing = sorted(set(names) - {r.name for r in rows})
            if missing:
                raise NotFoundError("monitor", missing[0])
        return [(r, MonitorSpec.from_dict(json.loads(r.spec))) for r in rows]

    def list_monitors(
        self, model_id: str | None = None, model_version: str | None = None
    ) -> list[dict[str, Any]]:
        """The stored monitors (their spec, last run and open incident), by name."""
        with self._engine.connect() as conn:
            specs = self._monitor_specs(conn)
            open_by = {
                r.monitor: r.id
                for r in conn.execute(
                    sa.select(t.incidents.c.monitor, t.incidents.c.id).where(
                        t.incidents.c.status.in_(_OPEN)
                    )
                )
            }
        out = []
        for row, spec in specs:
            if model_id is not None and spec.model_id != model_id:
                continue
            if model_version is not None and spec.model_version != model_version:
                continue
            out.append(
                {
                    **spec.to_dict(),
                    "last_run_at": _iso(row.last_run_at),
                    "open_incident": open_by.get(spec.name),
                }
            )
        return out

    def get_monitor(self, name: str) -> dict[str, Any]:
        """One stored monitor (as ``list_monitors`` gives it)."""
        check_name(name, "name")
        for item in self.list_monitors():
            if item["name"] == name:
                return item
        raise NotFoundError("monitor", name)

    def delete_monitor(self, name: str) -> None:
        """Remove a monitor, its run history and its incidents' open state (resolved)."""
        check_name(name, "name")
        now = time.time()
        with write_transaction(self._engine, 0) as conn:
            gone = conn.execute(sa.delete(t.monitors).where(t.monitors.c.name == name)).rowcount
            if not gone:
                raise NotFoundError("monitor", name)
            conn.execute(sa.delete(t.monitor_runs).where(t.monitor_runs.c.monitor == name))
            conn.execute(
                sa.update(t.incidents)
                .where(t.incidents.c.monitor == name, t.incidents.c.status.in_(_OPEN))
                .values(
                    status="resolved",
                    resolved_at=now,
                    resolved_by="monitor deleted",
                    updated_at=now,
                )
            )

    def monitor_history(
        self, name: str, start: Any = None, end: Any = None
    ) -> list[dict[str, Any]]:
        """The stored evaluations of a monitor (one per window), oldest first."""
        check_name(name, "name")
        r = t.monitor_runs
        query = sa.select(r).where(r.c.monitor == name).order_by(r.c.window_end, r.c.window_start)
        if start is not None:
            query = query.where(r.c.window_end > _at(start, "start"))
        if end is not None:
            query = query.where(r.c.window_end <= _at(end, "end"))
        with self._engine.connect() as conn:
            if (
                conn.execute(sa.select(t.monitors.c.name).where(t.monitors.c.name == name)).first()
                is None
            ):
                raise NotFoundError("monitor", name)
            rows = conn.execute(query).all()
        return [
            {
                "window_start": _iso(x.window_start),
                "window_end": _iso(x.window_end),
                "evaluated_at": _iso(x.evaluated_at),
                "status": x.status,
                **{k: v for k, v in json.loads(x.result).items() if k in ("entries", "note")},
            }
            for x in rows
        ]

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

    # ------------------------------------------------------------------ runs
    def _calibration(self, key: tuple[Any, ...], base: Any) -> Calibration:
        """The calibration fitted on a baseline sketch (cached by the baseline's bytes)."""
        cache = self.__dict__.setdefault("_calibrations", {})
        cal = cache.get(key)
        if cal is None:
            if len(cache) >= _CALIBRATIONS:
                cache.pop(next(iter(cache)))
            cal = cache[key] = fit_calibration(base)
        return cal  # type: ignore[no-any-return]

    def run_monitors(
        self,
        now: Any = None,
        names: Sequence[str] | None = None,
        *,
        due_only: bool = False,
    ) -> list[dict[str, Any]]:
        """Evaluate monitors at ``now`` (default: the current time): the named ones, the
        due ones (``due_only``: not run within their ``every``), or all enabled ones. Then
        re-evaluate past windows that late actuals touched. -> one dict per evaluation:
        the window, its status and entries, and the incident it opened or updated."""
        at = _at(now)
        if names is not None:
            if isinstance(names, str) or not isinstance(names, Sequence):
                raise InvalidInputError("names", "a list of monitor names", names)
            for n in names:
                check_name(n, "names")
        with self._engine.connect() as conn:
            specs = self._monitor_specs(conn, names)
        evaluator = Evaluator(self)  # type: ignore[arg-type]
        chosen = [
            spec
            for row, spec in specs
            if (names is not None or spec.enabled)
            and not (
                due_only
                and row.last_run_at is not None
                and at - row.last_run_at < spec.every_hours * HOUR - 1
            )
        ]
        if due_only:  # claim each due monitor: of several schedulers, one runs it
            chosen = [spec for spec in chosen if self._claim(spec, at)]
        for spec in chosen:
            evaluator.plan(spec, at)
        results: list[tuple[MonitorSpec, RunResult, bool]] = [
            (spec, evaluator.evaluate(spec, at), True) for spec in chosen
        ]
        results += self._reevaluations(evaluator, specs, at)
        out = []
        with write_transaction(self._engine, 0) as conn:
            for spec, result, latest in results:
                incident = self._record(conn, spec, result, at, latest=latest)
                out.append(
                    {
                        **result.to_dict(),
                        "window_start": _iso(result.window_start),
                        "window_end": _iso(result.window_end),
                        "severity": spec.severity,
                        "incident": incident,
                        "reevaluation": not latest,
                    }
                )
            for spec, _r, latest in results:
                if latest:
                    conn.execute(
                        sa.update(t.monitors)
                        .where(t.monitors.c.name == spec.name)
                        .values(last_run_at=at)
                    )
        return out

    def _claim(self, spec: MonitorSpec, at: float) -> bool:
        """Mark a due monitor as run at ``at`` unless another process did so first."""
        m = t.monitors
        with write_transaction(self._engine, 0) as conn:
            claimed = conn.execute(
                sa.update(m)
                .where(
                    m.c.name == spec.name,
                    sa.or_(
                        m.c.last_run_at.is_(None),
                        m.c.last_run_at < at - spec.every_hours * HOUR + 1,
                    ),
                )
                .values(last_run_at=at)
            ).rowcount
        return bool(claimed)

    def _reevaluations(
        self, evaluator: Evaluator, specs: list[tuple[Any, MonitorSpec]], at: float
    ) -> list[tuple[MonitorSpec, RunResult, bool]]:
        """Evaluations again of stored windows whose hours got late actuals after the
        window was evaluated (performance monitors only); clears the processed marks."""
        tt, r = t.touched, t.monitor_runs
        with self._engine.connect() as conn:
            marks = conn.execute(sa.select(tt)).all()
            if not marks:
                return []
            last = max(m.id for m in marks)
            todo = []
            for row, spec in specs:
                if spec.metric not in ACTUALS_METRICS or not spec.enabled:
                    continue
                mine = [
                    m
                    for m in marks
                    if m.version_id == row.version_id and m.environment == spec.environment
                ]
                if not mine:
                    continue
                runs = conn.execute(
                    sa.select(r.c.window_start, r.c.window_end, r.c.evaluated_at).where(
                        r.c.monitor == spec.name
                    )
                ).all()
                for run in runs:
                    hit = any(
                        run.window_start <= m.bucket * HOUR < run.window_end
                        and m.at >= run.evaluated_at
                        for m in mine
                    )
                    if hit:
                        todo.append((spec, run))
        out = []
        for spec, run in todo:
            fld = evaluator._field(spec)
            result = evaluator.evaluate_window(
                spec, fld, round(run.window_start / HOUR), round(run.window_end / HOUR)
            )
            out.append((spec, result, False))
        with write_transaction(self._engine, 0) as conn:
            conn.execute(sa.delete(tt).where(tt.c.id <= last))
        return out

    def _record(
        self, conn: Connection, spec: MonitorSpec, result: RunResult, at: float, *, latest: bool
    ) -> int | None:
        """Store the run; open, update or resolve the monitor's incident. -> its id."""
        r, inc = t.monitor_runs, t.incidents
        conn.execute(
            sa.delete(r).where(
                r.c.monitor == spec.name,
                r.c.window_start == result.window_start,
                r.c.window_end == result.window_end,
            )
        )
        conn.execute(
            sa.insert(r).values(
                monitor=spec.name,
                window_start=result.window_start,
                window_end=result.window_end,
                evaluated_at=at,
                status=result.status,
                result=json.dumps(result.to_dict(), allow_nan=False, default=str),
            )
        )
        vid = self._version(spec.model_id, spec.model_version)[0]
        current = conn.execute(
            sa.select(inc)
            .where(inc.c.monitor == spec.name, inc.c.status.in_(_OPEN))
            .order_by(inc.c.id.desc())
        ).first()
        if result.status == "breach":
            breaches = json.dumps(
                [e.to_dict() for e in result.breaches], allow_nan=False, default=str
            )
            if current is None:
                new_id = conn.execute(
                    sa.insert(inc)
                    .values(
                        monitor=spec.name,
                        version_id=vid,
                        status="open",
                        severity=spec.severity,
                        opened_at=at,
                        updated_at=at,
                        resolved_at=None,
                        resolved_by=None,
                        acknowledged_by=None,
                        window_start=result.window_start,
                        window_end=result.window_end,
                        runs=1,
                        breaches=breaches,
                    )
                    .returning(inc.c.id)
                ).scalar_one()
                self._enqueue(conn, int(new_id), "incident.opened", spec, at)
                return int(new_id)
            newer = result.window_end >= current.window_end
            conn.execute(
                sa.update(inc)
                .where(inc.c.id == current.id)
                .values(
                    updated_at=at,
                    runs=current.runs + (1 if result.window_end > current.window_end else 0),
                    **(
                        {
                            "breaches": breaches,
                            "window_start": result.window_start,
                            "window_end": result.window_end,
                        }
                        if newer
                        else {}
                    ),
                )
            )
            return int(current.id)
        if (
            result.status == "ok"
            and latest
            and current is not None
            and result.window_end >= current.window_end
        ):
            conn.execute(
                sa.update(inc)
                .where(inc.c.id == current.id)
                .values(
                    status="resolved",
                    resolved_at=at,
                    resolved_by="labelwatch: condition cleared",
                    updated_at=at,
                )
            )
            self._enqueue(conn, int(current.id), "incident.resolved", spec, at)
            return int(current.id)
        return None

    # ------------------------------------------------------------- incidents
    def incidents(
        self,
        status: str | None = None,
        model_id: str | None = None,
        model_version: str | None = None,
        monitor: str | None = None,
    ) -> list[dict[str, Any]]:
        """Incidents, newest first; ``status``: open, acknowledged, resolved or None (all)."""
        if status not in (None, "open", "acknowledged", "resolved"):
            raise InvalidInputError("status", "'open', 'acknowledged', 'resolved' or None", status)
        inc = t.incidents
        query = sa.select(inc).order_by(inc.c.id.desc())
        if status is not None:
            query = query.where(inc.c.status == status)
        if monitor is not None:
            query = query.where(inc.c.monitor == check_name(monitor, "monitor"))
        if model_id is not None:
            vids = sa.select(t.versions.c.id).where(t.versions.c.model_id == model_id)
            if model_version is not None:
                vids = vids.where(t.versions.c.version == model_version)
            query = query.where(inc.c.version_id.in_(vids))
        with self._engine.connect() as conn:
            return [_incident(row) for row in conn.execute(query)]

    def get_incident(self, incident_id: int) -> dict[str, Any]:
        """One incident by id."""
        if isinstance(incident_id, bool) or not isinstance(incident_id, int):
            raise InvalidInputError("incident_id", "an int", incident_id)
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(t.incidents).where(t.incidents.c.id == incident_id)
            ).first()
        if row is None:
            raise NotFoundError("incident", str(incident_id))
        return _incident(row)

    def acknowledge_incident(self, incident_id: int, by: str | None = None) -> dict[str, Any]:
        """Mark an open incident acknowledged (someone is on it); idempotent."""
        return self._set_status(incident_id, "acknowledged", by)

    def resolve_incident(self, incident_id: int, by: str | None = None) -> dict[str, Any]:
        """Close an incident; a later breach of its monitor opens a new one."""
        return self._set_status(incident_id, "resolved", by)

    def _set_status(self, incident_id: int, status: str, by: str | None) -> dict[str, Any]:
        current = self.get_incident(incident_id)
        if by is not None:
            check_name(by, "by")
        if current["status"] == "resolved" and status != "resolved":
            raise InvalidInputError("status", "an open incident to acknowledge", "resolved")
        if current["status"] == status:
            return current
        now = time.time()
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if status == "resolved":
            values.update(resolved_at=now, resolved_by=by or "api")
        else:
            values.update(acknowledged_by=by or "api")
        with write_transaction(self._engine, 0) as conn:
            conn.execute(
                sa.update(t.incidents).where(t.incidents.c.id == incident_id).values(**values)
            )
            if status == "resolved":
                row = conn.execute(
                    sa.select(t.monitors.c.spec).where(t.monitors.c.name == current["monitor"])
                ).first()
                if row is not None:
                    spec = MonitorSpec.from_dict(json.loads(row.spec))
                    self._enqueue(conn, incident_id, "incident.resolved", spec, now)
        return self.get_incident(incident_id)

    # -------------------------------------------------------------- webhooks
    def create_webhook(
        self, name: str, url: str, secret: str | None = None, min_severity: str = "low"
    ) -> dict[str, Any]:
        """Register (or replace) a webhook receiving incidents of ``min_severity`` or
        worse. ``secret`` signs the bodies (generated when None; shown only here)."""
        check_name(name, "name")
        if (
            not isinstance(url, str)
            or not url.startswith(("http://", "https://"))
            or len(url) > 2048
            or not is_text(url)
        ):
            raise InvalidInputError("url", "an http:// or https:// URL", url)
        try:
            if not httpx.URL(url).host:
                raise ValueError(url)
        except (httpx.InvalidURL, ValueError):
            raise InvalidInputError("url", "an http:// or https:// URL with a host", url) from None
        if secret is None:
            secret = secrets.token_urlsafe(32)
        elif not isinstance(secret, str) or len(secret) < 8 or not is_text(secret):
            raise InvalidInputError(
                "secret", "a str of at least 8 characters (no NUL), or None", "(hidden)"
            )
        if min_severity not in SEVERITIES:
            raise InvalidInputError("min_severity", f"one of {list(SEVERITIES)}", min_severity)
        now = time.time()
        w = t.webhooks
        with write_transaction(self._engine, 0) as conn:
            conn.execute(sa.delete(w).where(w.c.name == name))
            conn.execute(
                sa.insert(w).values(
                    name=name, url=url, secret=secret, min_severity=min_severity, created_at=now
                )
            )
        return {
            "name": name,
            "url": url,
            "secret": secret,
            "min_severity": min_severity,
            "created_at": _iso(now),
        }

    def list_webhooks(self) -> list[dict[str, Any]]:
        """The webhooks (without their secrets)."""
        w = t.webhooks
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(w).order_by(w.c.name)).all()
        return [
            {
                "name": r.name,
                "url": r.url,
                "min_severity": r.min_severity,
                "created_at": _iso(r.created_at),
            }
            for r in rows
        ]

    def delete_webhook(self, name: str) -> None:
        """Remove a webhook; its pending deliveries are dropped."""
        check_name(name, "name")
        with write_transaction(self._engine, 0) as conn:
            if not conn.execute(sa.delete(t.webhooks).where(t.webhooks.c.name == name)).rowcount:
                raise NotFoundError("webhook", name)
            conn.execute(
                sa.delete(t.deliveries).where(
                    t.deliveries.c.webhook == name, t.deliveries.c.status == "pending"
                )
            )

    def _enqueue(
        self, conn: Connection, incident_id: int, event: str, spec: MonitorSpec, at: float
    ) -> None:
        hooks = conn.execute(sa.select(t.webhooks)).all()
        rank = SEVERITIES.index(spec.severity)
        targets = [h for h in hooks if SEVERITIES.index(h.min_severity) <= rank]
        if not targets:
            return
        row = conn.execute(sa.select(t.incidents).where(t.incidents.c.id == incident_id)).one()
        body = json.dumps(
            {
                "event": event,
                "incident": _incident(row),
                "monitor": spec.to_dict(),
                "sent_by": "labelwatch",
            },
            allow_nan=False,
            default=str,
            sort_keys=True,
        )
        conn.execute(
            sa.insert(t.deliveries),
            [
                {
                    "webhook": h.name,
                    "incident_id": incident_id,
                    "event": event,
                    "body": body,
                    "status": "pending",
                    "attempts": 0,
                    "next_at": at,
                    "last_error": None,
                    "created_at": at,
                    "delivered_at": None,
                }
                for h in targets
            ],
        )

    def deliver_webhooks(
        self, now: Any = None, *, timeout: float = 5.0, max_attempts: int = 8
    ) -> dict[str, int]:
        """POST the due deliveries of the outbox (one attempt each); a failure is retried
        after 2, 4, 8... s (at most 10 min) until ``max_attempts``, then marked failed.
        -> counts of ``delivered``, ``retrying``, ``failed`` in this call, ``pending`` left."""
        at = _at(now)
        d, w = t.deliveries, t.webhooks
        with self._engine.connect() as conn:
            due = conn.execute(
                sa.select(d, w.c.url, w.c.secret)
                .join(w, w.c.name == d.c.webhook)
                .where(d.c.status == "pending", d.c.next_at <= at)
                .order_by(d.c.id)
            ).all()
        counts = {"delivered": 0, "retrying": 0, "failed": 0}
        if due:
            with httpx.Client(timeout=timeout) as client:
                for row in due:
                    # claim it (another process delivering the outbox skips it)
                    with write_transaction(self._engine, 0) as conn:
                        claimed = conn.execute(
                            sa.update(d)
                            .where(
                                d.c.id == row.id,
                                d.c.status == "pending",
                                d.c.next_at == row.next_at,
                            )
                            .values(next_at=at + timeout + 60)
                        ).rowcount
                    if not claimed:
                        continue
                    body = row.body.encode()
                    error = None
                    try:
                        resp = client.post(
                            row.url,
                            content=body,
                            headers={
                                "Content-Type": "application/json",
                                "User-Agent": "labelwatch-webhook",
                                "X-Labelwatch-Event": row.event,
                                "X-Labelwatch-Delivery": str(row.id),
                                "X-Labelwatch-Signature": sign(row.secret, body),
                            },
                        )
                        if not 200 <= resp.status_code < 300:
                            error = f"HTTP {resp.status_code}"
                    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
                        error = f"{type(exc).__name__}: {exc}"
                    attempts = row.attempts + 1
                    if error is None:
                        values: dict[str, Any] = {
                            "status": "delivered",
                            "attempts": attempts,
                            "delivered_at": time.time(),
                            "last_error": None,
                        }
                        counts["delivered"] += 1
                    elif attempts >= max_attempts:
                        values = {"status": "failed", "attempts": attempts, "last_error": error}
                        counts["failed"] += 1
                    else:
                        delay = min(_BACKOFF * 2 ** (attempts - 1), _MAX_BACKOFF)
                        values = {"attempts": attempts, "next_at": at + delay, "last_error": error}
                        counts["retrying"] += 1
                    with write_transaction(self._engine, 0) as conn:
                        conn.execute(sa.update(d).where(d.c.id == row.id).values(**values))
        with self._engine.connect() as conn:
            pending = conn.execute(
                sa.select(sa.func.count()).select_from(d).where(d.c.status == "pending")
            ).scalar_one()
        return {**counts, "pending": int(pending)}

    def deliveries(self, incident_id: int | None = None) -> list[dict[str, Any]]:
        """The webhook deliveries (newest first), of one incident or all."""
        d = t.deliveries
        query = sa.select(d).order_by(d.c.id.desc())
        if incident_id is not None:
            query = query.where(d.c.incident_id == incident_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {
                "id": r.id,
                "webhook": r.webhook,
                "incident_id": r.incident_id,
                "event": r.event,
                "status": r.status,
                "attempts": r.attempts,
                "next_at": _iso(r.next_at),
                "last_error": r.last_error,
                "created_at": _iso(r.created_at),
                "delivered_at": _iso(r.delivered_at),
            }
            for r in rows
        ]


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
