"""Generated predictions for the data source tests: the same rows as SDK records and as
Parquet / CSV / Arrow files, and a dump of every cell a monitor stores, to compare."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

LABELS = [f"genre_{i:02d}" for i in range(20)]
COUNTRIES = ["US", "FR", "JP", "IN", "BR"]
START = 1_767_225_600  # 2026-01-01T00:00:00Z
SCHEMA: dict[str, Any] = {
    "features": {"year": "numeric", "country": "categorical", "flag": "boolean"},
    "predictions": {"genres": "dict"},
    "segments": ["country"],
}


def make_rows(n: int, seed: int = 0, hours: int = 72) -> list[dict[str, Any]]:
    """``n`` SDK records: 20-label score dicts (some labels absent, some scores exactly
    on edges), features with missing values, three days of timestamps, and actuals for
    about 60% of the rows (some with a label the prediction lacks)."""
    rng = np.random.default_rng(seed)
    scores = rng.random((n, len(LABELS)))
    scores[rng.random((n, len(LABELS))) < 0.05] = 0.5  # on the threshold
    scores[rng.random((n, len(LABELS))) < 0.02] = 0.0
    scores[rng.random((n, len(LABELS))) < 0.02] = 1.0
    present = rng.random((n, len(LABELS))) > 0.1
    truth = rng.random((n, len(LABELS))) < scores * 0.8
    labeled = rng.random(n) < 0.6
    ts = START + rng.integers(0, hours * 3600, n)
    years = rng.normal(2000, 15, n).round(1)
    out = []
    for i in range(n):
        preds = {LABELS[j]: float(scores[i, j]) for j in range(len(LABELS)) if present[i, j]}
        features: dict[str, Any] = {}
        if i % 17:
            features["year"] = float(years[i])
        if i % 13:
            features["country"] = COUNTRIES[int(rng.integers(0, len(COUNTRIES)))]
        features["flag"] = bool(i % 3 == 0) if i % 11 else None
        rec: dict[str, Any] = {
            "id": f"p-{i}",
            "timestamp": float(ts[i]),
            "features": {k: v for k, v in features.items() if v is not None},
            "predictions": {"genres": preds},
        }
        if labeled[i]:
            act = {LABELS[j]: float(truth[i, j]) for j in range(len(LABELS)) if present[i, j]}
            if i % 7 == 0:  # an actual-only label: score 0 in the sketch
                missing = [x for j, x in enumerate(LABELS) if not present[i, j]]
                if missing:
                    act[missing[0]] = 1.0
            rec["actuals"] = {"genres": act}
        out.append(rec)
    return out


def to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The rows as an Arrow table: id, timestamp (UTC), features, a MAP column of scores,
    a MAP column of actuals (null when none)."""
    return pa.table(
        {
            "id": pa.array([r["id"] for r in rows], pa.string()),
            "timestamp": pa.array(
                [datetime.fromtimestamp(r["timestamp"], UTC).replace(tzinfo=None) for r in rows],
                pa.timestamp("us"),
            ),
            "year": pa.array([r["features"].get("year") for r in rows], pa.float64()),
            "country": pa.array([r["features"].get("country") for r in rows], pa.string()),
            "flag": pa.array([r["features"].get("flag") for r in rows], pa.bool_()),
            "genres": pa.array(
                [list(r["predictions"]["genres"].items()) for r in rows],
                pa.map_(pa.string(), pa.float64()),
            ),
            "actual_genres": pa.array(
                [list(r["actuals"]["genres"].items()) if "actuals" in r else None for r in rows],
                pa.map_(pa.string(), pa.float64()),
            ),
        }
    )


def write_parquet(rows: list[dict[str, Any]], path: Path, parts: int = 1) -> list[Path]:
    """The rows in ``parts`` Parquet files (sorted names keep row order)."""
    table = to_table(rows)
    step = -(-len(rows) // parts)
    paths = []
    for k in range(parts):
        p = path.parent / f"{path.stem}-{k:03d}.parquet"
        pq.write_table(table.slice(k * step, step), p)
        paths.append(p)
    return paths


CELL_TABLES = {
    "lw_score_cells": ["seg_feature", "seg_value", "bucket", "label_id", "counts", "coarse"],
    "lw_score_days": ["seg_feature", "seg_value", "bucket", "label_id", "counts", "coarse"],
    "lw_score_weeks": ["seg_feature", "seg_value", "bucket", "label_id", "counts", "coarse"],
    "lw_sample_weeks": ["seg_feature", "seg_value", "bucket", "sums"],
    "lw_pair_cells": ["seg_feature", "seg_value", "bucket", "pairs"],
    "lw_feature_cells": ["feature", "seg_feature", "seg_value", "bucket", "summary"],
    "lw_sample_cells": ["seg_feature", "seg_value", "bucket", "sums"],
    "lw_sample_days": ["seg_feature", "seg_value", "bucket", "sums"],
}


def dump_cells(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored cell of a monitor database, sorted by key (field and environment
    included where the table has them)."""
    engine = sa.create_engine(url)
    out: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with engine.connect() as conn:
            for table, columns in CELL_TABLES.items():
                names = [c["name"] for c in sa.inspect(conn).get_columns(table)]
                keys = [c for c in ("environment", "field") if c in names]
                cols = ", ".join([*keys, *columns])
                rows = conn.exec_driver_sql(f"SELECT {cols} FROM {table}").all()
                out[table] = sorted(
                    (tuple(bytes(x) if isinstance(x, memoryview) else x for x in r) for r in rows),
                    key=lambda r: tuple(str(x) for x in r[:-1]),
                )
    finally:
        engine.dispose()
    return out


def vocab(url: str) -> list[tuple[str, str, int]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.exec_driver_sql("SELECT field, label, id FROM lw_labels ORDER BY id")
            ]
    finally:
        engine.dispose()


def oracle_summary(rows: list[dict[str, Any]], version: dict[str, Any]) -> Any:
    """The ``Summary`` of SDK records by the contract's words, one row at a time (a slow
    obvious oracle of the engines, and the input of ``write_summary`` tests)."""
    import math
    from collections import Counter

    from labelwatch.metrics._binning import make_edges
    from labelwatch.metrics._numeric import DEFAULT_ACCURACY, _mantissas
    from labelwatch.sources._plan import Summary

    spec_thresholds = version["thresholds"]
    segments = list(version["segments"])
    features = version["features"]
    lg = math.log1p(2 * DEFAULT_ACCURACY / (1 - DEFAULT_ACCURACY))
    tally: dict[str, Counter[tuple[Any, ...]]] = {
        k: Counter() for k in ("scores", "samples", "pairs", "categorical", "rows", "sums")
    }
    numeric: dict[tuple[Any, ...], list[float]] = {}
    keys: dict[tuple[Any, ...], list[float]] = {}
    order: dict[str, list[str]] = {}  # predictions' labels, first appearance
    later: dict[str, list[str]] = {}  # actuals' labels
    for r in rows:
        cell = (int(r["timestamp"] // 3600), *[r["features"].get(s) for s in segments])
        tally["rows"][cell] += 1
        for f in version["predictions"]:
            th = spec_thresholds[f]
            edges = make_edges(version["bins"], sorted({th["default"], *th["labels"].values()}))
            pred = r["predictions"].get(f)
            act = r.get("actuals", {}).get(f)
            if pred is None and act is None:
                continue
            pred = pred or {}
            for x in pred:
                if x not in order.setdefault(f, []):
                    order[f].append(x)
            for x in act or {}:
                if x not in later.setdefault(f, []):
                    later[f].append(x)
            entries = list(pred) + [x for x in (act or {}) if x not in pred]
            for x in entries:
                s = pred.get(x, 0.0)
                outcome = 2 if act is None else int(act.get(x, 0.0) == 1.0)
                b = int(np.searchsorted(edges, s, side="left"))
                tally["scores"][(*cell, f, x, outcome, b)] += 1
            thr = {x: th["labels"].get(x, th["default"]) for x in entries}
            p = {x for x in pred if pred[x] > thr[x]}
            y = {x for x in (act or {}) if act[x] == 1.0}
            tp = len(p & y)
            tally["samples"][(*cell, f, act is not None, len(p), len(y), tp)] += 1
            names = sorted(set(p) | y)
            for i, a in enumerate(names):
                for b2 in names[i:]:
                    both_p = a in p and b2 in p
                    both_y = a in y and b2 in y
                    if both_p or both_y:
                        tally["pairs"][(*cell, f, a, b2, "p")] += int(both_p)
                        tally["pairs"][(*cell, f, a, b2, "y")] += int(both_y)
        for name, kind in features.items():
            v = r["features"].get(name)
            if kind == "numeric":
                numeric.setdefault((*cell, name), []).append(math.nan if v is None else v)
                if v is not None and abs(v) >= np.finfo(np.float64).tiny:
                    sign = -1 if v < 0 else 1
                    k = int(np.ceil(np.log(abs(v)) / lg))
                    keys.setdefault((*cell, name, sign, k), []).append(abs(v))
                if v is not None:
                    m, e = _mantissas(np.array([float(v)]))
                    tally["sums"][(*cell, name, int(e[0]))] += int(m[0])
            elif kind in ("categorical", "boolean", "string"):
                text = (
                    None
                    if v is None
                    else ("true" if v else "false")
                    if isinstance(v, bool)
                    else str(v)
                )
                tally["categorical"][(*cell, name, text)] += 1
    cols = ["bucket", *[f"seg_{i}" for i in range(len(segments))]]
    k = len(cols)

    def table(items: list[tuple[Any, ...]], names: list[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for j, c in enumerate(cols + names):
            values = [it[j] for it in items]
            out[c] = np.array([*values, None], dtype=object)[:-1]
            if c in (
                "bucket",
                "outcome",
                "bin",
                "count",
                "n_pred",
                "n_true",
                "tp",
                "missing",
                "zero",
                "sign",
                "key",
                "exponent",
                "predicted",
                "actual",
            ):
                out[c] = out[c].astype(np.int64)
            elif c in ("min", "max", "lo", "hi"):
                out[c] = out[c].astype(np.float64)
            elif c == "labeled":
                out[c] = out[c].astype(bool)
        return out

    pairs: dict[tuple[Any, ...], list[int]] = {}
    for key, n in tally["pairs"].items():
        pairs.setdefault(key[:-1], [0, 0])[0 if key[-1] == "p" else 1] += n
    num_rows = []
    for key, values in numeric.items():
        present = [v for v in values if not math.isnan(v)]
        zero = sum(1 for v in present if abs(v) < np.finfo(np.float64).tiny)
        lo = min(present) + 0.0 if present else math.nan
        hi = max(present) + 0.0 if present else math.nan
        num_rows.append((*key, len(values) - len(present), len(present), zero, lo, hi))
    return Summary(
        segments=segments,
        scores=table(
            [(*key, n) for key, n in tally["scores"].items()],
            ["field", "label", "outcome", "bin", "count"],
        ),
        samples=table(
            [(*key, n) for key, n in tally["samples"].items()],
            ["field", "labeled", "n_pred", "n_true", "tp", "count"],
        ),
        pairs=table(
            [(*key, *v) for key, v in pairs.items()],
            ["field", "label_a", "label_b", "predicted", "actual"],
        ),
        numeric=table(num_rows, ["feature", "missing", "count", "zero", "min", "max"]),
        numeric_keys=table(
            [(*key, len(v), min(v), max(v)) for key, v in keys.items()],
            ["feature", "sign", "key", "count", "lo", "hi"],
        ),
        numeric_sums=table(
            [(*key, m) for key, m in tally["sums"].items()], ["feature", "exponent", "mantissa"]
        ),
        categorical=table(
            [(*key, n) for key, n in tally["categorical"].items()], ["feature", "category", "count"]
        ),
        rows=table([(*key, n) for key, n in tally["rows"].items()], ["count"]),
        labels={f: [*x, *[y for y in later.get(f, []) if y not in x]] for f, x in order.items()},
    )
