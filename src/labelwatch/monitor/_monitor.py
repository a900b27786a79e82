"""``Monitor``: the service's domain over a SQL database — registry, ingestion, queries.

Every write runs in one transaction holding its model version's write lock (see
``_store``): a batch is validated whole first, then its raw events and the deltas of its
sketch cells are written together, or nothing is. Queries read and merge cells only
(``_querying``).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labelwatch.errors import (
    AuthError,
    ConflictError,
    InvalidInputError,
    LabelwatchError,
    NotFoundError,
)
from labelwatch.metrics import SampleStats, ScoreSketch
from labelwatch.monitor import _tables as t
from labelwatch.monitor._alerting import AlertsMixin
from labelwatch.monitor._cells import update_by_id
from labelwatch.monitor._ingest import (
    ActualRow,
    DictBatch,
    PredictionRow,
    QuickCheck,
    encode_dicts,
    parse_actuals,
    parse_predictions,
    parse_raw_inputs,
)
from labelwatch.monitor._queries import SAMPLE_METRICS, SKETCH_METRICS
from labelwatch.monitor._querying import QueriesMixin
from labelwatch.monitor._schema import SEGMENT_TYPES, VersionSpec, check_name, dumps
from labelwatch.monitor._store import make_engine, upgrade, write_transaction
from labelwatch.monitor._util import _iso, _no_gc
from labelwatch.monitor._write import (
    Planned,
    plan_predictions,
    segments,
    stored_predictions,
    vocab,
    write_actuals,
    write_predictions,
)

__all__ = ["SAMPLE_METRICS", "SCOPES", "SKETCH_METRICS", "Monitor"]

Scope = Literal["read", "ingest", "admin"]
SCOPES: tuple[str, ...] = ("read", "ingest", "admin")  # each implies the ones before it
_KINDS = ("training", "test")


_BASELINES_KEPT = 32  # decoded baselines kept per facade


def _now() -> float:
    return time.time()


def _name(value: Any, what: str) -> str:
    return check_name(value, what)


class Monitor(AlertsMixin, QueriesMixin):
    """The monitor's domain over a database URL; creates or upgrades the schema.

    >>> mon = Monitor("sqlite:///monitor.db")  # doctest: +SKIP
    >>> mon.create_model_version("genres", "v1", features={"year": "numeric"},
    ...                          predictions={"genres": "dict"})  # doctest: +SKIP
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = make_engine(url)
        upgrade(self._engine)
        self._specs: dict[int, VersionSpec] = {}
        self._versions: dict[tuple[str, str], tuple[int, VersionSpec]] = {}
        self._quick: dict[int, QuickCheck] = {}
        self._baselines: dict[
            tuple[Any, ...], tuple[tuple[Any, ...], tuple[ScoreSketch, SampleStats | None]]
        ] = {}
        self._reads = threading.local()  # .cache: the windows read in a ``reading()`` block

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Monitor({self._engine.url.render_as_string(hide_password=True)!r})"

    # ================================================================ registry
    def create_model(self, model_id: str, name: str | None = None) -> dict[str, Any]:
        """Register a model (idempotent; a given ``name`` replaces the stored one)."""
        _name(model_id, "model_id")
        if name is not None:
            check_name(name, "name")
        with write_transaction(self._engine, 0) as conn:
            self._ensure_model(conn, model_id, name)
            row = conn.execute(sa.select(t.models).where(t.models.c.model_id == model_id)).one()
        return {"model_id": row.model_id, "name": row.name, "created_at": _iso(row.created_at)}

    def _ensure_model(self, conn: Connection, model_id: str, name: str | None) -> None:
        row = conn.execute(
            sa.select(t.models.c.name).where(t.models.c.model_id == model_id)
        ).first()
        if row is None:
            conn.execute(
                sa.insert(t.models).values(model_id=model_id, name=name, created_at=_now())
            )
        elif name is not None and row.name != name:
            conn.execute(
                sa.update(t.models).where(t.models.c.model_id == model_id).values(name=name)
            )

    def create_model_version(
        self,
        model_id: str,
        model_version: str,
        model_type: str = "multi-label",
        features: dict[str, str] | None = None,
        predictions: dict[str, str] | None = None,
        actuals: dict[str, str] | None = None,
        raw_inputs: dict[str, str] | None = None,
        segments: list[str] | None = None,
        labels: dict[str, list[str]] | None = None,
        thresholds: dict[str, float | dict[str, float]] | None = None,
        unknown_labels: str = "learn",
        bins: int = 200,
    ) -> dict[str, Any]:
        """Register a model version with its schema (the model too, if new).

        Idempotent when identical; a different schema under the same version is a
        ``ConflictError``. ``labels``: declared vocabulary per dict field (else learned
        from traffic); ``unknown_labels`` decides what a label outside a declared
        vocabulary does: "learn" (added, recorded as unseen), "ignore" (not counted,
        recorded) or "error". ``thresholds``: per dict field one threshold or
        ``{label: t}`` (others 0.5), all exact sketch edges. Returns ``get_version``.
        """
        _name(model_id, "model_id")
        _name(model_version, "model_version")
        spec = VersionSpec.create(
            model_type=model_type,
            features=features,
            predictions=predictions,
            actuals=actuals,
            raw_inputs=raw_inputs,
            labels=labels,
            thresholds=thresholds,
            unknown_labels=unknown_labels,
            bins=bins,
        )
        segs = self._check_segments(spec, segments or [])
        with write_transaction(self._engine, 0) as conn:
            self._ensure_model(conn, model_id, None)
            row = conn.execute(
                sa.select(t.versions).where(
                    t.versions.c.model_id == model_id, t.versions.c.version == model_version
                )
            ).first()
            if row is not None:
                stored = json.loads(row.spec)
                if stored != spec.to_json() or not set(segs) <= set(json.loads(row.segments)):
                    raise ConflictError(
                        "model version",
                        f"{model_id}/{model_version}",
                        "schema",
                        {**stored, "segments": json.loads(row.segments)},
                        {**spec.to_json(), "segments": segs},
                    )
            else:
                vid = conn.execute(  # type: ignore[index]
                    sa.insert(t.versions).values(
                        model_id=model_id,
                        version=model_version,
                        spec=dumps(spec.to_json()),
                        segments=dumps(segs),
                        created_at=_now(),
                    )
                ).inserted_primary_key[0]
                declared = [
                    {"version_id": vid, "field": f, "label": name, "declared": True}
                    for f, names in spec.labels.items()
                    for name in names
                ]
                if declared:
                    conn.execute(sa.insert(t.labels), declared)
        return self.get_version(model_id, model_version)

    @staticmethod
    def _check_segments(spec: VersionSpec, segments: Any) -> list[str]:
        if isinstance(segments, str) or not isinstance(segments, list | tuple):
            raise InvalidInputError("segments", "a list of feature names", segments)
        out: list[str] = []
        for feature in segments:
            kind = spec.features.get(feature) if isinstance(feature, str) else None
            if kind not in SEGMENT_TYPES:
                choices = [f for f, k in spec.features.items() if k in SEGMENT_TYPES]
                raise InvalidInputError(
                    "segments",
                    f"a categorical, boolean or string feature among {choices}",
                    feature,
                )
            if feature not in out:
                out.append(feature)
        return out

    def _resolve(
        self, conn: Connection, model_id: str, model_version: str
    ) -> tuple[int, VersionSpec]:
        row = conn.execute(
            sa.select(t.versions.c.id, t.versions.c.spec).where(
                t.versions.c.model_id == model_id, t.versions.c.version == model_version
            )
        ).first()
        if row is None:
            exists = conn.execute(
                sa.select(t.models.c.model_id).where(t.models.c.model_id == model_id)
            ).first()
            if exists is None:
                raise NotFoundError("model", str(model_id))
            raise NotFoundError("model version", f"{model_id}/{model_version}")
        vid = int(row.id)
        spec = self._specs.get(vid)
        if spec is None:
            spec = self._specs[vid] = VersionSpec.from_json(json.loads(row.spec))
        return vid, spec

    def _version(self, model_id: str, model_version: str) -> tuple[int, VersionSpec]:
        # a version, once created, keeps its id and schema (nothing deletes or alters
        # them): found ones are remembered, saving a query per logging call
        key = (model_id, model_version)
        found = self._versions.get(key)
        if found is None:
            with self._engine.connect() as conn:
                found = self._resolve(conn, model_id, model_version)
            if type(model_id) is str and type(model_version) is str:
                self._versions[key] = found
        return found

    def get_version(self, model_id: str, model_version: str) -> dict[str, Any]:
        """The version's schema, vocabularies (declared, learned, unseen), thresholds,
        segments; ``spec``: the schema as stored."""
        with self._engine.connect() as conn:
            vid, spec = self._resolve(conn, model_id, model_version)
            row = conn.execute(sa.select(t.versions).where(t.versions.c.id == vid)).one()
            vocabs = vocab(conn, vid)
            unseen = conn.execute(
                sa.select(t.unseen_labels).where(t.unseen_labels.c.version_id == vid)
            ).all()
        labels = {f: list(vocabs.get(f, {})) for f in spec.dict_fields}
        declared = {f: list(spec.labels.get(f, [])) for f in spec.dict_fields}
        learned = {f: [x for x in labels[f] if x not in set(declared[f])] for f in labels}
        unseen_out: dict[str, dict[str, int]] = {f: {} for f in spec.dict_fields}
        for u in unseen:
            unseen_out.setdefault(u.field, {})[u.label] = int(u._mapping["count"])
        return {
            "model_id": model_id,
            "model_version": model_version,
            **spec.to_json(),
            "segments": json.loads(row.segments),
            "labels": labels,
            "declared_labels": declared,
            "learned_labels": learned,
            "unseen_labels": unseen_out,
            "thresholds": {
                f: {
                    "default": _default(spec, f),
                    "labels": {name: spec.threshold(f, name) for name in labels[f]},
                }
                for f in spec.dict_fields
            },
            "created_at": _iso(row.created_at),
            "spec": spec.to_json(),  # the schema as stored (a data source's plan reads it)
        }

    def add_segment(self, model_id: str, model_version: str, feature: str) -> None:
        """Segment the version's sketches by ``feature`` from now on (no backfill)."""
        with self._engine.connect() as conn:
            vid, spec = self._resolve(conn, model_id, model_version)
        self._check_segments(spec, [feature])
        with write_transaction(self._engine, vid) as conn:
            segs = segments(conn, vid)
            if feature not in segs:
                conn.execute(
                    sa.update(t.versions)
                    .where(t.versions.c.id == vid)
                    .values(segments=dumps([*segs, feature]))
                )

    def list_models(self) -> list[dict[str, Any]]:
        """Every model: ``model_id``, ``name``, ``created_at``."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.models).order_by(t.models.c.model_id)).all()
        return [
            {"model_id": r.model_id, "name": r.name, "created_at": _iso(r.created_at)} for r in rows
        ]

    def list_versions(self, model_id: str) -> list[dict[str, Any]]:
        """The versions of a model: ``model_version``, ``model_type``, ``created_at``."""
        with self._engine.connect() as conn:
            if (
                conn.execute(
                    sa.select(t.models.c.model_id).where(t.models.c.model_id == model_id)
                ).first()
                is None
            ):
                raise NotFoundError("model", str(model_id))
            rows = conn.execute(
                sa.select(t.versions)
                .where(t.versions.c.model_id == model_id)
                .order_by(t.versions.c.id)
            ).all()
        return [
            {
                "model_version": r.version,
                "model_type": json.loads(r.spec)["model_type"],
                "created_at": _iso(r.created_at),
            }
            for r in rows
        ]

    def environments(self, model_id: str, model_version: str) -> list[str]:
        """The environments that logged to the version, sorted."""
        with self._engine.connect() as conn:
            vid, _ = self._resolve(conn, model_id, model_version)
            rows = conn.execute(
                sa.select(t.environments.c.name)
                .where(t.environments.c.version_id == vid)
                .order_by(t.environments.c.name)
            ).all()
        return [r.name for r in rows]

    # ============================================================== ingestion
    def log_predictions(
        self,
        model_id: str,
        model_version: str,
        environment: str,
        records: list[dict[str, Any]],
    ) -> dict[str, int]:
        """Store a batch of predictions and add them to their hour's sketches, at once.

        Record: ``{"id", "features", "predictions": {field: {label: prob}},
        "timestamp" (default now), "raw_inputs"}``. The batch is validated whole
        first (an ``InvalidInputError`` names the row, field and label, nothing is
        written). An id already stored (or earlier in the batch) with the same features
        and predictions (and timestamp, when given) is a duplicate, skipped; with other
        values it is a ``ConflictError`` and nothing is written. Actuals waiting for an
        id are joined. Returns ``{"accepted", "duplicates"}``.
        """
        _name(environment, "environment")
        vid, spec = self._version(model_id, model_version)
        with _no_gc():
            return self._log_predictions(vid, spec, environment, records)

    def validate_predictions(
        self,
        model_id: str,
        model_version: str,
        environment: str,
        records: list[dict[str, Any]],
    ) -> None:
        """Check prediction records as :meth:`log_predictions` would, without writing:
        raises the same ``InvalidInputError`` (naming row, field and label) for bad
        input. A conflict with a stored prediction is found only when writing.

        >>> monitor.validate_predictions("m", "v1", "production", records)  # doctest: +SKIP
        """
        _name(environment, "environment")
        vid, spec = self._version(model_id, model_version)
        quick = self._quick.get(vid)
        if quick is None:
            quick = self._quick[vid] = QuickCheck(spec)
        if not quick.predictions(records):
            with _no_gc():
                self._check_predictions(spec, records)

    def validate_actuals(
        self,
        model_id: str,
        model_version: str,
        environment: str,
        records: list[dict[str, Any]],
    ) -> None:
        """Check actual records as :meth:`log_actuals` would, without writing."""
        _name(environment, "environment")
        _vid, spec = self._version(model_id, model_version)
        self._check_actuals(spec, records)

    def validate_raw_inputs(
        self,
        model_id: str,
        model_version: str,
        environment: str,
        records: list[dict[str, Any]],
    ) -> None:
        """Check raw-input records as :meth:`log_raw_inputs` would, without writing."""
        _name(environment, "environment")
        _vid, spec = self._version(model_id, model_version)
        parse_raw_inputs(spec, records)

    @staticmethod
    def _check_predictions(
        spec: VersionSpec, records: list[dict[str, Any]]
    ) -> tuple[list[PredictionRow], dict[str, DictBatch]]:
        rows = parse_predictions(spec, records)
        fields = list(spec.dict_fields)
        batches = _encode_fields(spec, rows, records, "predictions", fields, binary=False)
        return rows, batches

    def _log_predictions(
        self, vid: int, spec: VersionSpec, environment: str, records: list[dict[str, Any]]
    ) -> dict[str, int]:
        rows, batches = self._check_predictions(spec, records)
        planned = self._plan_predictions(vid, spec, environment, rows, batches)
        with write_transaction(self._engine, vid) as conn:
            return write_predictions(conn, vid, spec, environment, rows, batches, planned)

    def _plan_predictions(
        self,
        vid: int,
        spec: VersionSpec,
        environment: str,
        rows: list[PredictionRow],
        batches: dict[str, DictBatch],
    ) -> Planned | None:
        """The batch's rows and cell deltas as if every row were new, made before taking
        the version's write lock (a third of the work a batch did under it), with the
        segment features and label ids read now; None when something is unusual (the
        write under the lock then decides, and names any error)."""
        try:
            with self._engine.connect() as conn:
                segs = segments(conn, vid)
                known = vocab(conn, vid)
            return plan_predictions(vid, spec, environment, rows, batches, segs, known)
        except LabelwatchError:
            return None

    def write_summary(
        self, model_id: str, model_version: str, environment: str, summary: Any
    ) -> dict[str, int]:
        """Add a data source's ``Summary`` (``labelwatch.sources``) to the version's cells
        in ``environment``, in one transaction: the cells logging its rows would write,
        without the raw rows. Returns ``{"accepted": rows}``."""
        from labelwatch.monitor._summaries import write_summary

        _name(environment, "environment")
        vid, spec = self._version(model_id, model_version)
        with write_transaction(self._engine, vid) as conn:
            return write_summary(conn, vid, spec, environment, summary)

    def stage_summary(
        self,
        model_id: str,
        model_version: str,
        environment: str,
        upload: tuple[str, int, int],
        body: bytes,
        decode: Callable[[bytes], Any],
    ) -> dict[str, int]:
        """Keep part ``k`` of ``n`` of a summary posted in parts (``upload`` = ``(id, k,
        n)``; ``body`` checked with ``decode`` now); with the last part, write all of them
        in one transaction (``write_summary`` each, in order) and forget them. A part sent
        again replaces itself. Parts of uploads never finished are dropped after a day."""
        from labelwatch.monitor._summaries import stage_part

        _name(environment, "environment")
        vid, spec = self._version(model_id, model_version)
        decode(body)  # a malformed part is refused now, not with the last one
        with write_transaction(self._engine, vid) as conn:
            return stage_part(conn, vid, spec, environment, upload, body, decode)

    def log_actuals(
        self,
        model_id: str,
        model_version: str,
        environment: str,
        records: list[dict[str, Any]],
    ) -> dict[str, int]:
        """Store actuals ``{"id", "actuals": {field: {label: 0/1}}, "timestamp"}``.

        An actual whose prediction is stored moves that prediction's mass from
        unlabeled to its outcome in the prediction's cells (its hour and segments);
        one whose prediction has not come is held and joined when it comes. The same
        actual again is a no-op; a different one for the same id a ``ConflictError``
        (nothing written). Returns ``{"accepted", "pending"}`` (pending: held).
        """
        _name(environment, "environment")
        vid, spec = self._version(model_id, model_version)
        rows, acts = self._check_actuals(spec, records)
        with write_transaction(self._engine, vid) as conn:
            return write_actuals(conn, vid, spec, environment, rows, acts)

    @staticmethod
    def _check_actuals(
        spec: VersionSpec, records: list[dict[str, Any]]
    ) -> tuple[list[ActualRow], dict[str, DictBatch]]:
        rows = parse_actuals(spec, records)
        fields = [f for f in spec.dict_fields if spec.actuals.get(f) == "dict"]
        acts = _encode_fields(spec, rows, records, "actuals", fields, binary=True)
        return rows, acts

    def log_raw_inputs(
        self,
        model_id: str,
        model_version: str,
        environment: str,
        records: list[dict[str, Any]],
    ) -> dict[str, int]:
        """Attach raw inputs ``{"id", "raw_inputs": {...}}`` to stored predictions
        (replacing earlier ones). Returns ``{"accepted", "missing"}``: ids without a
        stored prediction are counted in ``missing`` and not stored."""
        _name(environment, "environment")
        vid, spec = self._version(model_id, model_version)
        pairs = parse_raw_inputs(spec, records)
        with write_transaction(self._engine, vid) as conn:
            stored = stored_predictions(conn, vid, environment, [i for i, _ in pairs])
            todo = [(i, {"raw_inputs": raw}) for i, raw in pairs if i in stored]
            update_by_id(conn, t.predictions, vid, environment, todo)
        return {"accepted": len(todo), "missing": len(pairs) - len(todo)}

    # ============================================================== baselines
    def log_baseline(
        self,
        model_id: str,
        model_version: str,
        kind: str,
        field: str,
        sketch: ScoreSketch,
        samples: SampleStats | None = None,
        feature_stats: dict[str, Any] | None = None,
        environment: str | None = None,
    ) -> None:
        """Store the ``kind`` ("training" / "test") baseline of a dict field, replacing
        the previous one."""
        vid, spec = self._version(model_id, model_version)
        if kind not in _KINDS:
            raise InvalidInputError("kind", f"one of {list(_KINDS)}", kind)
        self._check_field(spec, field)
        if not isinstance(sketch, ScoreSketch):
            raise InvalidInputError("sketch", "a ScoreSketch", sketch)
        if samples is not None and not isinstance(samples, SampleStats):
            raise InvalidInputError("samples", "a SampleStats or None", samples)
        stats_json = None
        if feature_stats is not None:
            if not isinstance(feature_stats, Mapping):
                raise InvalidInputError("feature_stats", "a JSON-able dict or None", feature_stats)
            try:
                stats_json = dumps(feature_stats)
            except (TypeError, ValueError):
                raise InvalidInputError(
                    "feature_stats", "a JSON-able dict", feature_stats
                ) from None
        if environment is not None:
            _name(environment, "environment")
        b = t.baselines
        with write_transaction(self._engine, vid) as conn:
            conn.execute(
                sa.delete(b).where(b.c.version_id == vid, b.c.kind == kind, b.c.field == field)
            )
            conn.execute(
                sa.insert(b).values(
                    version_id=vid,
                    kind=kind,
                    field=field,
                    environment=environment,
                    sketch=sketch.to_bytes(),
                    samples=None if samples is None else samples.to_bytes(),
                    feature_stats=stats_json,
                    created_at=_now(),
                )
            )

    def baseline(
        self, model_id: str, model_version: str, kind: str, field: str
    ) -> tuple[ScoreSketch, SampleStats | None]:
        """The stored ``kind`` baseline of ``field``: ``(sketch, samples or None)``.

        Decoded baselines are kept (read-only arrays) while their stored row is the same
        (its time and sizes), so repeated queries read only that stamp."""
        b = t.baselines
        where = (b.c.version_id, b.c.kind, b.c.field)
        stamp_of = (b.c.created_at, sa.func.length(b.c.sketch), sa.func.length(b.c.samples))
        with self._engine.connect() as conn:
            vid, _spec = self._resolve(conn, model_id, model_version)
            cond = [c == v for c, v in zip(where, (vid, kind, field), strict=True)]
            stamp = conn.execute(sa.select(*stamp_of).where(*cond)).first()
            if stamp is None:
                raise NotFoundError("baseline", f"{model_id}/{model_version} {kind} {field}")
            key = (vid, kind, field)
            cached = self._baselines.get(key)
            if cached is not None and cached[0] == tuple(stamp):
                return cached[1]
            row = conn.execute(
                sa.select(b.c.sketch, b.c.samples, *stamp_of).where(*cond)
            ).first()
        if row is None:
            raise NotFoundError("baseline", f"{model_id}/{model_version} {kind} {field}")
        samples = None if row.samples is None else SampleStats.from_bytes(row.samples)
        got = (ScoreSketch.from_bytes(row.sketch), samples)
        if len(self._baselines) >= _BASELINES_KEPT:
            self._baselines.pop(next(iter(self._baselines)))
        self._baselines[key] = (tuple(row[2:]), got)
        return got

    # ================================================================= tokens
    def create_token(self, scope: str, name: str | None = None) -> str:
        """A new bearer token of ``scope`` ("read" < "ingest" < "admin"); only its
        SHA-256 is stored, so this is the one time it is seen."""
        _scope(scope)
        if name is not None:
            check_name(name, "name")
        token = "lw_" + secrets.token_urlsafe(32)
        with write_transaction(self._engine, 0) as conn:
            conn.execute(
                sa.insert(t.tokens).values(
                    digest=_digest(token), scope=scope, name=name, created_at=_now()
                )
            )
        return token

    def check_token(self, token: str | None, scope: str) -> bool:
        """Whether ``token`` exists and its scope includes ``scope``."""
        _scope(scope)
        if not isinstance(token, str) or not token:
            return False
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(t.tokens.c.scope).where(t.tokens.c.digest == _digest(token))
            ).first()
        return row is not None and SCOPES.index(row.scope) >= SCOPES.index(scope)

    def require_token(self, token: str | None, scope: str) -> None:
        """Raise ``AuthError`` unless ``token`` allows ``scope``."""
        if not token:
            raise AuthError(scope, "missing")
        if not self.check_token(token, scope):
            raise AuthError(scope, "invalid" if not self.check_token(token, "read") else "scope")

    def has_tokens(self) -> bool:
        """Whether any token exists (the first ``serve`` makes an admin one if not)."""
        with self._engine.connect() as conn:
            return conn.execute(sa.select(t.tokens.c.id).limit(1)).first() is not None


def _encode_fields(
    spec: VersionSpec,
    rows: Sequence[PredictionRow] | Sequence[ActualRow],
    records: list[dict[str, Any]],
    kind: str,
    fields: list[str],
    *,
    binary: bool,
) -> dict[str, DictBatch]:
    """The dict fields of parsed rows as dense batches; ``kind``: "predictions" (scores)
    or "actuals" (0/1, ``binary``). Raises naming the row, field and label."""
    batches = {
        f: encode_dicts(
            [r.dict_values.get(f) for r in rows],
            f"{kind}.{f}",
            declared=spec.labels.get(f),
            policy=spec.unknown_labels,
            binary=binary,
        )
        for f in fields
    }
    for i, r in enumerate(rows):
        if not getattr(r, kind):  # not JSON, yet not refused by encode_dicts
            raise InvalidInputError(kind, "JSON-serializable values", records[i][kind], row=i)
    return batches


def _default(spec: VersionSpec, field: str) -> float:
    value = spec.thresholds.get(field, 0.5)
    return value if isinstance(value, float) else 0.5


def _scope(scope: Any) -> None:
    if scope not in SCOPES:
        raise InvalidInputError("scope", f"one of {list(SCOPES)}", scope)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
