"""``labelwatch ingest --source``: a data source summarized by an engine, then written to
a monitor (embedded) or pushed to a server, with the same effect as logging its rows.

Steps: the version's schema and a column ``Mapping`` give a ``Plan``; the engine's first
pass validates every row and finds the labels (``Discovery``); the version's label policy
decides which labels count (``decide_labels``); the engine's second pass aggregates
(``Summary``); numeric keys are checked against NumPy's formula (``verify_keys``); the
summary is written in one transaction. Nothing is written before the last step, so a
bad row leaves the monitor as it was.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
import orjson

from labelwatch.errors import InvalidInputError
from labelwatch.metrics._binning import make_edges
from labelwatch.metrics._numeric import DEFAULT_ACCURACY
from labelwatch.monitor._schema import VersionSpec
from labelwatch.sources._plan import Discovery, Mapping, Plan, Summary, Table

__all__ = [
    "ENGINES",
    "decide_labels",
    "default_mapping",
    "fetch_version",
    "ingest_source",
    "open_source",
    "plan_for",
    "post_summary",
    "split_summary",
    "summarize",
    "summary_from_json",
    "summary_to_json",
    "verify_keys",
]

ENGINES = ("duckdb", "spark")
_TABLES = (
    "scores",
    "samples",
    "pairs",
    "numeric",
    "numeric_keys",
    "numeric_sums",
    "categorical",
    "rows",
)
_SPEC_KEYS = tuple(VersionSpec.__dataclass_fields__)


class Source(Protocol):
    """What an engine offers (``DuckDBSource``, ``SparkSource``)."""

    def columns(self) -> dict[str, str]: ...
    def discover(self, plan: Plan) -> Discovery: ...
    def summarize(self, plan: Plan) -> Summary: ...
    def numeric_values(self, plan: Plan, feature: str, lo: float, hi: float) -> Table: ...
    def close(self) -> None: ...


def spec_of(version: dict[str, Any]) -> VersionSpec:
    """The schema of a version as ``get_version`` (or ``GET .../versions/V``) gives it."""
    stored = version.get("spec")
    if not isinstance(stored, dict):
        raise InvalidInputError("version", "get_version's answer with its 'spec'", sorted(version))
    return VersionSpec.from_json({k: stored[k] for k in _SPEC_KEYS if k in stored})


def default_mapping(version: dict[str, Any], columns: Sequence[str], given: Mapping) -> Mapping:
    """``given``, completed by name where it is silent: ``id``, ``timestamp``, each schema
    feature, each dict field ``F`` (predictions) and ``actual_F`` / ``actuals_F``."""
    spec = spec_of(version)
    have = set(columns)
    mapped = set(given.fields())
    features = dict(given.features)
    for name in spec.features:
        if name not in features and name in have:
            features[name] = name
    predictions, actuals = dict(given.predictions), dict(given.actuals)
    for f in spec.dict_fields:
        if f in mapped:
            continue
        if f in have:
            predictions[f] = f
        for candidate in (f"actual_{f}", f"actuals_{f}"):
            if candidate in have:
                actuals[f] = candidate
                break
    return replace(
        given,
        id=given.id or ("id" if "id" in have else None),
        timestamp=given.timestamp or ("timestamp" if "timestamp" in have else None),
        features=features,
        predictions=predictions,
        actuals=actuals,
    )


def plan_for(version: dict[str, Any], mapping: Mapping, now: float) -> Plan:
    """The plan of a version (as ``get_version`` gives it) over a mapping; labels None."""
    spec = spec_of(version)
    unknown = [f for f in mapping.fields() if f not in spec.dict_fields]
    if unknown:
        raise InvalidInputError(
            "map", f"dict fields of the version among {list(spec.dict_fields)}", unknown
        )
    extra = [f for f in mapping.features if f not in spec.features]
    if extra:
        raise InvalidInputError(
            "map", f"features of the version among {list(spec.features)}", extra
        )
    if not mapping.fields():
        raise InvalidInputError(
            "map", "at least one predictions.FIELD or actuals.FIELD column", "none"
        )
    segments = list(version.get("segments", []))
    missing = [s for s in segments if s not in mapping.features]
    if missing:
        raise InvalidInputError(
            "map", f"a column for each segment feature {segments}", f"none for {missing}"
        )
    fields = [f for f in spec.dict_fields if f in mapping.fields()]
    thresholds: dict[str, dict[str, float]] = {}
    default: dict[str, float] = {}
    for f in fields:
        value = spec.thresholds.get(f, 0.5)
        thresholds[f] = dict(value) if isinstance(value, dict) else {}
        default[f] = spec.threshold(f, "\x00none")  # the threshold of a label not listed
    acc = DEFAULT_ACCURACY
    return Plan(
        mapping=mapping,
        fields=fields,
        edges={f: make_edges(spec.bins, spec.edges(f)).tolist() for f in fields},
        thresholds=thresholds,
        default_threshold=default,
        segments=segments,
        numeric=[f for f in mapping.features if spec.features[f] == "numeric"],
        categorical=[
            f for f in mapping.features if spec.features[f] in ("categorical", "boolean", "string")
        ],
        log_gamma=math.log1p(2 * acc / (1 - acc)),
        now=now,
        booleans=[f for f in mapping.features if spec.features[f] == "boolean"],
    )


def _column(mapping: Mapping, f: str, side: str) -> str:
    if side == "predictions":
        return mapping.predictions.get(f) or ", ".join(
            mapping.prediction_columns.get(f, {}).values()
        )
    return mapping.actuals.get(f) or ", ".join(mapping.actual_columns.get(f, {}).values())


def decide_labels(version: dict[str, Any], plan: Plan, found: Discovery) -> Plan:
    """The plan with the labels that count, per the version's label policy: a declared
    vocabulary with ``unknown_labels="error"`` refuses others (naming the column),
    ``"ignore"`` leaves them out (counted as unseen), ``"learn"`` learns them."""
    from labelwatch.monitor._schema import is_text

    spec = spec_of(version)
    labels: dict[str, list[str]] = {}
    for f in plan.fields:
        declared = spec.labels.get(f)
        known = set(declared) if declared is not None else None
        kept: list[str] = []
        for side, entries in (
            ("predictions", found.prediction_labels.get(f, [])),
            ("actuals", found.actual_labels.get(f, [])),
        ):
            for label, rows in entries:
                if not isinstance(label, str) or not label or not is_text(label):
                    raise InvalidInputError(
                        _column(plan.mapping, f, side),
                        "non-empty str label names without NUL or lone surrogates",
                        label,
                    )
                if known is not None and label not in known:
                    if spec.unknown_labels == "error":
                        raise InvalidInputError(
                            _column(plan.mapping, f, side),
                            f"one of the {len(known)} declared labels of {f!r}",
                            label,
                            hint=f"found in {rows} rows; declare it in labels=..., or create "
                            "the version with unknown_labels='learn' or 'ignore'",
                        )
                    if spec.unknown_labels == "ignore":
                        continue
                if label not in kept:
                    kept.append(label)
        labels[f] = kept
    return replace(plan, labels=labels)


def _unseen(version: dict[str, Any], plan: Plan, found: Discovery) -> dict[str, dict[str, int]]:
    """Per field, the labels outside its declared vocabulary and the rows holding them
    (predictions and actuals), as the SDK counts them."""
    spec = spec_of(version)
    out: dict[str, dict[str, int]] = {}
    for f in plan.fields:
        declared = spec.labels.get(f)
        if declared is None:
            continue
        known = set(declared)
        counts: dict[str, int] = {}
        for entries in (found.prediction_labels.get(f, []), found.actual_labels.get(f, [])):
            for label, rows in entries:
                if label not in known:
                    counts[label] = counts.get(label, 0) + int(rows)
        if counts:
            out[f] = counts
    return out


def _sdk_keys(values: np.ndarray, log_gamma: float) -> np.ndarray:
    """NumericSketch's bucket keys of magnitudes (its own formula)."""
    keys: np.ndarray = np.ceil(np.log(values) / log_gamma).astype(np.int64)
    return keys


def verify_keys(source: Source, plan: Plan, summary: Summary) -> None:
    """Make each numeric bucket key the one NumPy's formula gives. A group whose least and
    greatest magnitudes both get its key holds only that key (the formula is monotone);
    for any other group, the rows of the feature in a range of magnitudes covering it
    (and every group overlapping that range) are fetched and keyed again."""
    t = summary.numeric_keys
    if not len(t.get("key", ())):
        return
    lo = np.asarray(t["lo"], dtype=np.float64)
    hi = np.asarray(t["hi"], dtype=np.float64)
    key = np.asarray(t["key"], dtype=np.int64)
    bad = np.zeros(len(key), dtype=bool)
    known = ~(np.isnan(lo) & np.isnan(hi))  # NaN, NaN: keys of NumPy's formula already
    bad[known] = (_sdk_keys(lo[known], plan.log_gamma) != key[known]) | (
        _sdk_keys(hi[known], plan.log_gamma) != key[known]
    )
    if not bad.any():
        return
    features = np.asarray(t["feature"]).astype(str)
    cells = summary.cell_columns()
    drop = np.zeros(len(key), dtype=bool)
    added: dict[str, list[Any]] = {c: [] for c in t}
    for feature in sorted(set(features[bad].tolist())):
        mine = features == feature
        low, high = float(lo[bad & mine].min()), float(hi[bad & mine].max())
        while True:  # widen the range until no group straddles its ends
            inside = mine & (hi >= low) & (lo <= high)
            new_low, new_high = float(lo[inside].min()), float(hi[inside].max())
            if (new_low, new_high) == (low, high):
                break
            low, high = new_low, new_high
        drop |= inside
        rows = source.numeric_values(plan, feature, low, high)
        v = np.asarray(rows["value"], dtype=np.float64)
        mags = np.abs(v)
        k = _sdk_keys(mags, plan.log_gamma)
        groups: dict[tuple[Any, ...], list[float]] = {}
        columns = [np.asarray(rows[c]).tolist() for c in cells]
        for i, combo in enumerate(zip(*columns, strict=True)):
            sign = -1 if v[i] < 0 else 1
            groups.setdefault((*combo, sign, int(k[i])), []).append(float(mags[i]))
        for (*where, sign, kk), found in groups.items():
            for c, value in zip(cells, where, strict=True):
                added[c].append(value)
            added["feature"].append(feature)
            added["sign"].append(sign)
            added["key"].append(kk)
            added["count"].append(len(found))
            added["lo"].append(min(found))
            added["hi"].append(max(found))
    keep = ~drop
    out: Table = {}
    for c, column in t.items():
        column = np.asarray(column)
        extra = np.array(added[c] + [None], dtype=object)[:-1].astype(column.dtype)
        out[c] = np.concatenate([column[keep], extra])
    summary.numeric_keys = out


def open_source(
    engine: str,
    paths: Sequence[str] = (),
    *,
    format: str | None = None,
    url: str | None = None,
    query: str | None = None,
    table: Any = None,
) -> Source:
    """A source read by ``engine`` ("duckdb" or "spark")."""
    if engine == "duckdb":
        from labelwatch.sources._duckdb import DuckDBSource

        if table is not None:
            return DuckDBSource(table=table)
        if url is not None or query is not None:
            if not url or not query:
                raise InvalidInputError("query", "a SQLAlchemy URL and a query together", query)
            return DuckDBSource(url=url, query=query)
        return DuckDBSource(list(paths), format=format)
    if engine == "spark":
        if url is not None or table is not None:
            raise InvalidInputError("engine", "duckdb for SQL sources and uploads", engine)
        from labelwatch.sources._spark import SparkSource

        return SparkSource(list(paths), format=format)
    raise InvalidInputError("engine", f"one of {list(ENGINES)}", engine)


@contextmanager
def _closing(source: Source) -> Iterator[Source]:
    try:
        yield source
    finally:
        source.close()


def summarize(
    source: Source, version: dict[str, Any], mapping: Mapping, now: float | None = None
) -> tuple[Plan, Discovery, Summary]:
    """Validate, decide labels and aggregate a source for a version."""
    mapping = default_mapping(version, list(source.columns()), mapping)
    plan = plan_for(version, mapping, time.time() if now is None else now)
    found = source.discover(plan)
    plan = decide_labels(version, plan, found)
    summary = source.summarize(plan)
    verify_keys(source, plan, summary)
    summary.labels = {f: list(plan.labels[f]) for f in plan.fields} if plan.labels else {}
    summary.unseen = _unseen(version, plan, found)
    return plan, found, summary


def ingest_source(
    monitor: Any,
    model_id: str,
    model_version: str,
    source: Source,
    mapping: Mapping,
    *,
    environment: str = "production",
    keep_rows: bool = False,
    batch_size: int = 5000,
) -> dict[str, int]:
    """Ingest a source into an embedded ``Monitor``: summarized (default), or with
    ``keep_rows`` logged row by row through the monitor (ids kept, idempotent)."""
    version = monitor.get_version(model_id, model_version)
    with _closing(source):
        if keep_rows:
            return _log_rows(monitor, model_id, model_version, source, version, mapping,
                             environment, batch_size)  # fmt: skip
        _, found, summary = summarize(source, version, mapping)
        out: dict[str, int] = monitor.write_summary(model_id, model_version, environment, summary)
        return {**out, "rows": found.rows}


def _log_rows(
    monitor: Any,
    model_id: str,
    model_version: str,
    source: Source,
    version: dict[str, Any],
    mapping: Mapping,
    environment: str,
    batch_size: int,
) -> dict[str, int]:
    mapping = default_mapping(version, list(source.columns()), mapping)
    if mapping.id is None:
        raise InvalidInputError("map", "an id column to keep raw rows (id=COLUMN)", "none")
    plan = plan_for(version, mapping, time.time())
    found = source.discover(plan)  # every row validated before the first is written
    records = source.records(plan, batch_size)  # type: ignore[attr-defined]
    accepted = duplicates = 0
    actuals: list[dict[str, Any]] = []
    for predictions, acts in records:
        r = monitor.log_predictions(model_id, model_version, environment, predictions)
        accepted += r["accepted"]
        duplicates += r["duplicates"]
        actuals += acts
        if len(actuals) >= batch_size:
            monitor.log_actuals(model_id, model_version, environment, actuals)
            actuals = []
    if actuals:
        monitor.log_actuals(model_id, model_version, environment, actuals)
    return {"accepted": accepted, "duplicates": duplicates, "rows": found.rows}


# ------------------------------------------------------------------------ the wire
def _column_json(values: np.ndarray) -> list[Any]:
    out: list[Any] = []
    for x in np.asarray(values).tolist():
        if isinstance(x, float) and math.isnan(x):
            out.append(None)
        elif isinstance(x, int) and not isinstance(x, bool) and abs(x) >= 1 << 63:
            out.append(str(x))
        else:
            out.append(x)
    return out


def summary_to_json(summary: Summary) -> bytes:
    """A summary as JSON (mantissas as decimal text, NaN as null; dense counts as rows)."""
    summary = summary.sparse()
    doc: dict[str, Any] = {
        "format": "labelwatch.Summary/1",
        "segments": summary.segments,
        "labels": summary.labels,
        "unseen": summary.unseen,
    }
    for name in _TABLES:
        table = getattr(summary, name)
        doc[name] = {c: _column_json(v) for c, v in table.items()}
    if "mantissa" in doc["numeric_sums"]:
        doc["numeric_sums"]["mantissa"] = [str(x) for x in doc["numeric_sums"]["mantissa"]]
    return orjson.dumps(doc)


_INT_COLUMNS = {"bucket", "cell", "outcome", "bin", "count", "n_pred", "n_true", "tp", "missing",
                "zero", "sign", "key", "exponent", "predicted", "actual"}  # fmt: skip
_FLOAT_COLUMNS = {"min", "max", "lo", "hi"}
_BOOL_COLUMNS = {"labeled"}


def summary_from_json(body: bytes | dict[str, Any]) -> Summary:
    """The inverse of ``summary_to_json``; a malformed document is an
    ``InvalidInputError`` naming the table and column."""
    doc = orjson.loads(body) if isinstance(body, bytes | str) else body
    if not isinstance(doc, dict) or doc.get("format") != "labelwatch.Summary/1":
        raise InvalidInputError("format", "'labelwatch.Summary/1'", (doc or {}).get("format"))
    tables: dict[str, Any] = {}  # Summary's table fields, by name
    for name in _TABLES:
        raw = doc.get(name)
        if not isinstance(raw, dict):
            raise InvalidInputError(name, "an object of columns", raw)
        table: Table = {}
        n = None
        for c, values in raw.items():
            if not isinstance(values, list):
                raise InvalidInputError(f"{name}.{c}", "a list", type(values).__name__)
            if n is not None and len(values) != n:
                raise InvalidInputError(
                    f"{name}.{c}", f"{n} values like the other columns", len(values)
                )
            n = len(values)
            try:
                if c in _INT_COLUMNS:
                    table[c] = np.array(values, dtype=np.int64).reshape(-1)
                elif c in _FLOAT_COLUMNS:
                    table[c] = np.array(
                        [math.nan if x is None else float(x) for x in values], dtype=np.float64
                    )
                elif c in _BOOL_COLUMNS:
                    table[c] = np.array(values, dtype=bool).reshape(-1)
                elif c == "mantissa":
                    table[c] = np.array([*(int(x) for x in values), None], dtype=object)[:-1]
                else:
                    table[c] = np.array([*values, None], dtype=object)[:-1]
            except (TypeError, ValueError, OverflowError):
                raise InvalidInputError(
                    f"{name}.{c}", "values of the column's type", values[:3]
                ) from None
        tables[name] = table
    segments = doc.get("segments", [])
    if not isinstance(segments, list) or not all(isinstance(s, str) for s in segments):
        raise InvalidInputError("segments", "a list of feature names", segments)
    labels = doc.get("labels", {})
    unseen = doc.get("unseen", {})
    if not isinstance(labels, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in labels.values()
    ):
        raise InvalidInputError("labels", "field -> list of label names", labels)
    if not isinstance(unseen, dict) or not all(
        isinstance(v, dict) and all(isinstance(n, int) for n in v.values()) for v in unseen.values()
    ):
        raise InvalidInputError("unseen", "field -> {label: rows}", unseen)
    return Summary(segments=segments, labels=labels, unseen=unseen, **tables)


PART_ROWS = 200_000
"""Aggregate rows per posted part (about 10 MB of JSON, under the server's body limit)."""


def split_summary(summary: Summary, max_rows: int = PART_ROWS) -> list[Summary]:
    """The summary in parts of whole hours with at most ``max_rows`` aggregate rows each
    (an hour with more is a part alone); the unseen-label counts go with the first."""
    summary = summary.sparse()
    per_bucket: dict[int, int] = {}
    for name in _TABLES:
        buckets = np.asarray(getattr(summary, name).get("bucket", np.zeros(0)), np.int64)
        for b, n in zip(*np.unique(buckets, return_counts=True), strict=True):
            per_bucket[int(b)] = per_bucket.get(int(b), 0) + int(n)
    groups: list[list[int]] = [[]]
    size = 0
    for b in sorted(per_bucket):
        if groups[-1] and size + per_bucket[b] > max_rows:
            groups.append([])
            size = 0
        groups[-1].append(b)
        size += per_bucket[b]
    out = []
    for k, group in enumerate(groups):
        chosen = np.array(group, dtype=np.int64)
        tables: dict[str, Any] = {}
        for name in _TABLES:
            table = getattr(summary, name)
            keep = np.isin(np.asarray(table.get("bucket", np.zeros(0)), np.int64), chosen)
            tables[name] = {c: np.asarray(v)[keep] for c, v in table.items()}
        out.append(
            Summary(
                segments=summary.segments,
                labels=summary.labels,
                unseen=summary.unseen if k == 0 else {},
                **tables,
            )
        )
    return out


def post_summary(
    host: str,
    token: str,
    model_id: str,
    version: str,
    environment: str,
    plan: Plan,
    found: Discovery,
    summary: Summary,
    *,
    max_rows: int = PART_ROWS,
) -> dict[str, Any]:
    """Push a summary to a server (``POST .../summaries``): in one body, or in parts of
    whole hours under one upload id that the server writes together with the last."""
    import uuid

    import httpx

    url = f"{host.rstrip('/')}/api/v1/models/{model_id}/versions/{version}/summaries"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    parts = split_summary(summary, max_rows)
    upload_id = uuid.uuid4().hex
    out: dict[str, Any] = {}
    with httpx.Client(timeout=600.0, headers=headers) as client:
        for k, part in enumerate(parts):
            params: dict[str, Any] = {"environment": environment}
            if len(parts) > 1:
                params.update(upload_id=upload_id, part=k, parts=len(parts))
            response = client.post(url, params=params, content=summary_to_json(part))
            _raise_for(response)
            out = response.json()
    return {**out, "rows": found.rows}


def fetch_version(host: str, token: str, model_id: str, version: str) -> dict[str, Any]:
    """``GET .../versions/V`` of a server."""
    import httpx

    response = httpx.get(
        f"{host.rstrip('/')}/api/v1/models/{model_id}/versions/{version}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60.0,
    )
    _raise_for(response)
    out: dict[str, Any] = response.json()
    return out


def _raise_for(response: Any) -> None:
    """The SDK's exception for an error response (its JSON error envelope)."""
    if response.status_code < 400:
        return
    from labelwatch.client._errors import api_error

    try:
        envelope = response.json()
    except ValueError:
        envelope = response.text
    raise api_error(response.status_code, envelope)
