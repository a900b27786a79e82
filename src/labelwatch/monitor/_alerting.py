"""Monitors, runs and incidents on the :class:`~labelwatch.monitor.Monitor` facade.

- **Monitors** are declared as data (:mod:`._monitors`) and stored by name; applying the
  same document again changes nothing.
- **Runs** evaluate due (or named) monitors over their window ending at ``now`` and store
  each window's values (the metric's own history). Windows whose hours received late
  actuals since they were evaluated are evaluated again.
- **Incidents** group and deduplicate: one breaching run of a monitor over 300 labels is
  one incident listing the breaching labels ranked by how far they breach, then by
  prevalence. While an incident is open (or acknowledged) further breaches of the same
  monitor fold into it; a run that finds the condition cleared resolves it.

``AlertsMixin`` also brings the webhooks that receive incidents (:mod:`._webhooks`) and
the ad-hoc drift and performance queries (:mod:`._analysis`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labelwatch.errors import InvalidInputError, NotFoundError
from labelwatch.metrics._estimate import Calibration, fit_calibration
from labelwatch.monitor import _tables as t
from labelwatch.monitor._analysis import AnalysisMixin
from labelwatch.monitor._api_values import _at, _incident, _iso
from labelwatch.monitor._evaluate import Evaluator
from labelwatch.monitor._monitors import ACTUALS_METRICS, MonitorSpec
from labelwatch.monitor._schema import check_name, dumps
from labelwatch.monitor._store import write_transaction
from labelwatch.monitor._webhooks import WebhooksMixin
from labelwatch.monitor._windows import HOUR, RunResult

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from labelwatch.monitor._schema import VersionSpec

__all__ = ["AlertsMixin"]

_OPEN = ("open", "acknowledged")
_CALIBRATIONS = 64  # fitted calibrations kept per facade


class AlertsMixin(AnalysisMixin, WebhooksMixin):
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
