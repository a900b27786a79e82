"""The Spark engine (``SparkSource``): its aggregates equal a row-by-row oracle written
from the contract's words (and the DuckDB engine's), bins are exact at the edges, numeric
keys and sums are NumericSketch's, and bad rows are errors naming column and row.

One local session for the module (starting one costs seconds); skipped without pyspark
or Java unless ``LABELWATCH_REQUIRE_SPARK=1``."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from labelwatch.errors import InvalidInputError
from labelwatch.metrics import NumericSketch
from labelwatch.metrics._binning import make_edges
from labelwatch.metrics._numeric import _TINY, _mantissas
from labelwatch.sources._plan import Mapping, Plan, Summary

_REQUIRED = os.environ.get("LABELWATCH_REQUIRE_SPARK") == "1"
try:
    import pyspark  # noqa: F401

    _HAVE = shutil.which("java") is not None
except ImportError:  # pragma: no cover - environments without Spark
    _HAVE = False
if not _HAVE:
    if _REQUIRED:
        raise RuntimeError("LABELWATCH_REQUIRE_SPARK=1 but pyspark or java is unavailable")
    pytest.skip("pyspark or java unavailable", allow_module_level=True)

from labelwatch.sources._spark import SparkSource  # noqa: E402

LABELS = ["a", "b", "c", "d", "e", "f"]
START = 1_767_225_600  # 2026-01-01T00:00:00Z
LOG_GAMMA = math.log1p(2 * 0.005 / (1 - 0.005))
EDGES = make_edges(10, [0.5, 0.3]).tolist()


@pytest.fixture(scope="module")
def spark() -> Any:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    yield session
    session.stop()


# --------------------------------------------------------------------- data
def make_records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Rows by the contract's words: scores on and beside the edges, some rows without
    a prediction, actuals for about half (one with a label its prediction lacks), a
    float and an int numeric feature, a text and a boolean one, an int segment."""
    rng = np.random.default_rng(seed)
    special = [0.0, 1.0, 0.5, 0.3, 0.1, np.nextafter(0.3, 1), np.nextafter(0.5, 0), 1e-300]
    out = []
    for i in range(n):
        pred: dict[str, float] | None = {}
        for x in LABELS:
            if rng.random() < 0.8:
                u = rng.random()
                pred[x] = float(special[int(u * 80)] if u < 0.1 else rng.random())  # type: ignore[index]
        if not pred or i % 19 == 0:
            pred = None
        act: dict[str, float] | None = None
        if rng.random() < 0.5 or (pred is None and i % 2):
            base = list(pred or {}) or ["a"]
            act = {x: float(rng.random() < 0.5) for x in base}
            if i % 5 == 0:
                extra = [x for x in LABELS if x not in act]
                if extra:
                    act[extra[0]] = 1.0
        size = None if i % 7 == 0 else float(rng.choice([0.0, -0.0, -3.5, 1e300, 2.5e-310]))
        if i % 3 == 0 and size is not None:
            size = float(rng.normal(0, 100))
        out.append(
            {
                "id": f"r-{i}",
                "ts": START + int(rng.integers(0, 5 * 3600)),
                "pred": pred,
                "act": act,
                "size": size,
                "count": None if i % 11 == 0 else int(rng.integers(-5, 50)),
                "color": None if i % 13 == 0 else ["red", "blue", "green"][i % 3],
                "ok": None if i % 9 == 0 else bool(i % 2),
                "tier": None if i % 17 == 0 else int(i % 3),
            }
        )
    return out


def _map(values: list[dict[str, float] | None]) -> pa.Array:
    return pa.array(
        [None if v is None else list(v.items()) for v in values],
        pa.map_(pa.string(), pa.float64()),
    )


def _struct(values: list[dict[str, float] | None]) -> pa.Array:
    kind = pa.struct([(x, pa.float64()) for x in LABELS])
    return pa.array([None if v is None else {x: v.get(x) for x in LABELS} for v in values], kind)


def _features(rs: list[dict[str, Any]]) -> dict[str, pa.Array]:
    return {
        "size": pa.array([r["size"] for r in rs], pa.float64()),
        "count": pa.array([r["count"] for r in rs], pa.int64()),
        "color": pa.array([r["color"] for r in rs], pa.string()),
        "ok": pa.array([r["ok"] for r in rs], pa.bool_()),
        "tier": pa.array([r["tier"] for r in rs], pa.int32()),
    }


def write_map_parquet(rs: list[dict[str, Any]], path: Path, parts: int = 2) -> list[str]:
    """id, a TIMESTAMP, MAP predictions / actuals, features; in ``parts`` files."""
    table = pa.table(
        {
            "id": pa.array([r["id"] for r in rs]),
            "ts": pa.array(
                [datetime.fromtimestamp(r["ts"], UTC).replace(tzinfo=None) for r in rs],
                pa.timestamp("us"),
            ),
            "scores": _map([r["pred"] for r in rs]),
            "truth": _map([r["act"] for r in rs]),
            **_features(rs),
        }
    )
    step = -(-len(rs) // parts)
    out = []
    for k in range(parts):
        p = path / f"part-{k:02d}.parquet"
        pq.write_table(table.slice(k * step, step), p, row_group_size=100)
        out.append(str(p))
    return out


def mapping_for(kind: str) -> Mapping:
    features = {x: x for x in ("size", "count", "color", "ok", "tier")}
    if kind == "columns":
        return Mapping(
            id="id",
            timestamp="ts",
            features=features,
            prediction_columns={"genres": {x: f"p_{x}" for x in LABELS}},
            actual_columns={"genres": {x: f"y_{x}" for x in LABELS}},
        )
    return Mapping(
        id="id",
        timestamp="ts",
        features=features,
        predictions={"genres": "scores"},
        actuals={"genres": "truth"},
    )


def make_plan(mapping: Mapping, **kw: Any) -> Plan:
    args: dict[str, Any] = {
        "mapping": mapping,
        "fields": ["genres"],
        "edges": {"genres": EDGES},
        "thresholds": {"genres": {"b": 0.3}},
        "default_threshold": {"genres": 0.5},
        "segments": ["tier", "ok"],
        "numeric": ["size", "count"],
        "categorical": ["color", "ok"],
        "log_gamma": LOG_GAMMA,
        "now": float(START),
    }
    return Plan(**{**args, **kw})


# ------------------------------------------------------------------- oracle
def oracle(rs: list[dict[str, Any]], plan: Plan) -> dict[str, dict[Any, Any]]:
    """Every table as {key columns: value columns}, one row at a time."""
    f = "genres"
    kept = set(plan.labels[f]) if plan.labels else set(LABELS)
    t: dict[str, Counter[Any]] = {k: Counter() for k in ("scores", "samples", "cat", "rows")}
    pairs: dict[Any, list[int]] = {}
    numeric: dict[Any, list[Any]] = {}
    keys: dict[Any, list[float]] = {}
    sums: dict[Any, Fraction] = {}
    for r in rs:
        cell = (r["ts"] // 3600, *[r[s] for s in plan.segments])
        t["rows"][cell] += 1
        pred, act = r["pred"], r["act"]
        if pred is not None or act is not None:
            p = {x: v for x, v in (pred or {}).items() if x in kept}
            y = {x: v for x, v in (act or {}).items() if x in kept}
            for x in [*p, *[x for x in y if x not in p]]:
                outcome = 2 if act is None else int(y.get(x, 0.0) == 1.0)
                b = int(np.searchsorted(EDGES, p.get(x, 0.0), side="left"))
                t["scores"][(*cell, f, x, outcome, b)] += 1
            chosen = {x for x, v in p.items() if v > plan.threshold(f, x)}
            true = {x for x, v in y.items() if v == 1.0}
            t["samples"][
                (*cell, f, act is not None, len(chosen), len(true), len(chosen & true))
            ] += 1
            names = sorted(chosen | true)
            for i, a in enumerate(names):
                for b2 in names[i:]:
                    both = [int(a in chosen and b2 in chosen), int(a in true and b2 in true)]
                    if any(both):
                        acc = pairs.setdefault((*cell, f, a, b2), [0, 0])
                        acc[0] += both[0]
                        acc[1] += both[1]
        for name in plan.numeric:
            v = r[name]
            numeric.setdefault((*cell, name), []).append(v)
            if v is None:
                continue
            m, e = _mantissas(np.array([float(v)]))
            sums[(*cell, name)] = sums.get((*cell, name), Fraction(0)) + Fraction(
                int(m[0])
            ) * Fraction(2) ** int(e[0])
            if abs(v) >= _TINY:
                k = int(np.ceil(np.log(abs(v)) / LOG_GAMMA))
                keys.setdefault((*cell, name, -1 if v < 0 else 1, k), []).append(abs(float(v)))
        for name in plan.categorical:
            v = r[name]
            text = None if v is None else ("true" if v else "false") if isinstance(v, bool) else v
            t["cat"][(*cell, name, text)] += 1
    num = {}
    for key, values in numeric.items():
        present = [float(v) + 0.0 for v in values if v is not None]
        zero = sum(abs(v) < _TINY for v in present)
        lo, hi = (min(present), max(present)) if present else (math.nan, math.nan)
        num[key] = (len(values) - len(present), len(present), zero, repr(lo), repr(hi))
    return {
        "scores": dict(t["scores"]),
        "samples": dict(t["samples"]),
        "pairs": {k: tuple(v) for k, v in pairs.items()},
        "numeric": num,
        "numeric_keys": {k: (len(v), min(v), max(v)) for k, v in keys.items()},
        "numeric_sums": sums,
        "categorical": dict(t["cat"]),
        "rows": dict(t["rows"]),
    }


VALUES = {
    "scores": ["count"],
    "samples": ["count"],
    "pairs": ["predicted", "actual"],
    "numeric": ["missing", "count", "zero", "min", "max"],
    "numeric_keys": ["count", "lo", "hi"],
    "categorical": ["count"],
    "rows": ["count"],
}


def as_dicts(s: Summary) -> dict[str, dict[Any, Any]]:
    """A summary in the oracle's form (exact sums as Fractions per cell and feature)."""
    out: dict[str, dict[Any, Any]] = {}
    for name, values in VALUES.items():
        table = getattr(s, name)
        n = len(table["bucket"])
        assert table["bucket"].dtype == np.int64, name
        assert all(table[c].dtype == np.int64 for c in values if c in ("count", "missing")), name
        keys = [c for c in table if c not in values]
        rows: dict[Any, Any] = {}
        for i in range(n):
            key = tuple(
                table[c][i].item() if table[c].dtype != object else table[c][i] for c in keys
            )
            got = tuple(
                repr(float(table[c][i])) if c in ("min", "max") else table[c][i].item()
                for c in values
            )
            assert key not in rows, (name, key)
            rows[key] = got[0] if values == ["count"] else got
        out[name] = rows
    sums: dict[Any, Fraction] = {}
    t = s.numeric_sums
    assert t["mantissa"].dtype == object
    for i in range(len(t["bucket"])):
        key = (int(t["bucket"][i]), *[t[f"seg_{k}"][i] for k in range(len(s.segments))])
        key = (*key, t["feature"][i])
        m = t["mantissa"][i]
        assert isinstance(m, int)
        sums[key] = sums.get(key, Fraction(0)) + Fraction(m) * Fraction(2) ** int(t["exponent"][i])
    out["numeric_sums"] = sums
    return out


def canonical(table: dict[str, np.ndarray]) -> list[tuple[Any, ...]]:
    """The rows as tuples of Python values (NaN as text), in a fixed order; an engine's
    own cell ids (``cell``, a grouping aid) left out."""
    cols = sorted(c for c in table if c != "cell")
    n = len(table[cols[0]]) if cols else 0
    rows = [
        tuple(
            "nan" if isinstance(v, float) and v != v else v
            for v in (table[c][i].item() if hasattr(table[c][i], "item") else table[c][i]
                      for c in cols)
        )
        for i in range(n)
    ]  # fmt: skip
    return sorted(rows, key=repr)


def assert_oracle(s: Summary, rs: list[dict[str, Any]], plan: Plan) -> None:
    want, got = oracle(rs, plan), as_dicts(s)
    for name in want:
        assert got[name] == want[name], name
        assert want[name], f"{name}: nothing compared"


# -------------------------------------------------------------------- tests
def test_map_parquet_equals_oracle_and_duckdb(tmp_path: Path, spark: Any) -> None:
    rs = make_records(400, seed=1)
    files = write_map_parquet(rs, tmp_path)
    plan = make_plan(mapping_for("map"))
    with SparkSource(str(tmp_path / "part-*.parquet"), spark=spark) as src:
        assert src.columns()["scores"] == "map<string,double>"
        found = src.discover(plan)
        assert found.rows == len(rs)
        first: dict[str, int] = {}
        for r in rs:
            for x in r["pred"] or {}:
                first[x] = first.get(x, 0) + 1
        assert found.prediction_labels["genres"] == list(first.items())
        plan = replace(plan, labels={"genres": ["a", "b", "c", "e", "f"]})  # "d" dropped
        summary = src.summarize(plan)
    assert src.spark is spark and not spark.sparkContext._jsc.sc().isStopped()
    assert_oracle(summary, rs, plan)
    try:
        from labelwatch.sources._duckdb import DuckDBSource
    except ImportError:  # pragma: no cover - the DuckDB engine not there yet
        return
    duck = DuckDBSource(files)
    try:
        duck.discover(plan)
        other = duck.summarize(plan).sparse()
    finally:
        duck.close()
    for name in VALUES:
        mine, theirs = getattr(summary, name), getattr(other, name)
        if name == "numeric_keys":  # DuckDB's pass keys by NumPy, magnitudes left NaN
            assert np.isnan(theirs["lo"]).all() and np.isnan(theirs["hi"]).all()
            mine = {c: v for c, v in mine.items() if c not in ("lo", "hi")}
            theirs = {c: v for c, v in theirs.items() if c not in ("lo", "hi")}
        assert canonical(mine) == canonical(theirs), name
    assert as_dicts(summary)["numeric_sums"] == as_dicts(other)["numeric_sums"]


def test_struct_parquet_and_label_column_csv(tmp_path: Path, spark: Any) -> None:
    """STRUCT columns with epoch seconds, and one CSV column per label with ISO text."""
    rs = make_records(300, seed=2)
    rs = [r for r in rs if r["size"] is None or abs(r["size"]) < 1e300]  # CSV-safe numbers
    struct = pa.table(
        {
            "id": [r["id"] for r in rs],
            "ts": pa.array([r["ts"] for r in rs], pa.int64()),
            "scores": _struct([r["pred"] for r in rs]),
            "truth": _struct([r["act"] for r in rs]),
            **_features(rs),
        }
    )
    pq.write_table(struct, tmp_path / "s.parquet")
    flat: dict[str, Any] = {
        "id": [r["id"] for r in rs],
        "ts": [datetime.fromtimestamp(r["ts"], UTC).isoformat().replace("+00:00", "Z") for r in rs],
        **_features(rs),
    }
    for x in LABELS:
        flat[f"p_{x}"] = pa.array([(r["pred"] or {}).get(x) for r in rs], pa.float64())
        flat[f"y_{x}"] = pa.array([(r["act"] or {}).get(x) for r in rs], pa.float64())
    pacsv.write_csv(pa.table(flat), tmp_path / "c.csv")
    for path, kind in ((tmp_path / "s.parquet", "struct"), (tmp_path / "c.csv", "columns")):
        plan = make_plan(mapping_for(kind), labels={"genres": LABELS})
        with SparkSource([str(path)], spark=spark) as src:
            summary = src.summarize(plan)  # validates first
        assert_oracle(summary, rs, plan)


def test_exact_bins_at_edges(tmp_path: Path, spark: Any) -> None:
    edges = make_edges(7, [0.3, 0.30000000000000004, 0.5, 1 / 3]).tolist()
    near = {float(np.nextafter(e, d)) for e in edges for d in (-1.0, 2.0)}
    scores = sorted(x for x in {*edges, *near, 1e-320, 0.999999} if 0.0 <= x <= 1.0)
    table = pa.table({"s": _map([{"a": x} for x in scores])})
    pq.write_table(table, tmp_path / "e.parquet")
    plan = make_plan(
        Mapping(predictions={"genres": "s"}),
        edges={"genres": edges},
        segments=[],
        numeric=[],
        categorical=[],
        labels={"genres": ["a"]},
    )
    with SparkSource(str(tmp_path / "e.parquet"), spark=spark) as src:
        s = src.summarize(plan)
    want = Counter(np.searchsorted(edges, scores, side="left").tolist())
    got = dict(zip(s.scores["bin"].tolist(), s.scores["count"].tolist(), strict=True))
    assert got == dict(want)
    assert set(s.scores["outcome"].tolist()) == {2}
    assert s.rows["count"].tolist() == [len(scores)]


def test_numeric_keys_and_sums_equal_numeric_sketch(tmp_path: Path, spark: Any) -> None:
    rng = np.random.default_rng(5)
    values = [
        *rng.normal(0, 1e3, 300).tolist(),
        *(10.0 ** rng.uniform(-300, 300, 100)).tolist(),
        5e-324, -2.5e-310, _TINY, -_TINY, 0.0, -0.0, 1.0, 2.0, 0.5, None, 1.7e308,
        -1.7e308, 3.0, 3.0,
    ]  # fmt: skip
    pq.write_table(pa.table({"x": pa.array(values, pa.float64())}), tmp_path / "x.parquet")
    plan = make_plan(
        Mapping(features={"x": "x"}, predictions={"genres": "x_scores"}),
        fields=[],
        segments=[],
        numeric=["x"],
        categorical=[],
        labels={},
    )
    with SparkSource(str(tmp_path / "x.parquet"), spark=spark) as src:
        s = src.summarize(plan)
        inside = src.numeric_values(plan, "x", 0.5, 3.0)
    sk = NumericSketch.from_values(values)
    assert s.numeric["missing"].tolist() == [sk.missing]
    assert s.numeric["count"].tolist() == [sk.count]
    assert s.numeric["zero"].tolist() == [sk.zero]
    assert (s.numeric["min"][0], s.numeric["max"][0]) == (sk.min, sk.max)
    for sign, keys, counts in ((1, sk.pos_keys, sk.pos_counts), (-1, sk.neg_keys, sk.neg_counts)):
        mine = s.numeric_keys["sign"] == sign
        order = np.argsort(s.numeric_keys["key"][mine])
        assert s.numeric_keys["key"][mine][order].tolist() == keys.tolist()
        assert s.numeric_keys["count"][mine][order].tolist() == counts.tolist()
    total = sum(
        Fraction(int(m)) * Fraction(2) ** int(e)
        for m, e in zip(s.numeric_sums["mantissa"], s.numeric_sums["exponent"], strict=True)
    )
    k, e = sk._exact
    assert total == Fraction(k) * Fraction(2) ** e
    want = sorted(v for v in values if v is not None and 0.5 <= abs(v) <= 3.0)
    assert sorted(inside["value"].tolist()) == want
    assert inside["bucket"].tolist() == [START // 3600] * len(want)


def _error(spark: Any, path: Path, plan: Plan) -> InvalidInputError:
    with SparkSource(str(path), spark=spark) as src, pytest.raises(InvalidInputError) as info:
        src.discover(plan)
    return info.value


def test_bad_rows_name_the_column_and_row(tmp_path: Path, spark: Any) -> None:
    rs = make_records(60, seed=3)
    rs = [{**r, "pred": r["pred"] or {"a": 0.2}} for r in rs]
    plan = make_plan(mapping_for("map"))

    def bad(name: str, i: int, **change: Any) -> Path:
        d = tmp_path / name
        d.mkdir()
        changed = [dict(r) for r in rs]
        changed[i] = {**changed[i], **change}
        write_map_parquet(changed, d)  # 30 rows a file: row i is in the second file
        return d / "part-*.parquet"

    e = _error(spark, bad("score", 41, pred={"a": 0.1, "b": 1.5}), plan)
    assert (e.field, e.row, e.label, e.got) == ("scores", 41, "b", 1.5)
    e = _error(spark, bad("nan", 33, pred={"c": math.nan}), plan)
    assert (e.field, e.row, e.label) == ("scores", 33, "c") and math.isnan(e.got)
    e = _error(spark, bad("null", 37, pred={"a": 0.3, "d": None}), plan)  # as the SDK
    assert (e.field, e.row, e.label, e.got) == ("scores", 37, "d", None)
    e = _error(spark, bad("actual", 35, act={"a": 2.0}), plan)
    assert (e.field, e.row, e.label, e.got) == ("truth", 35, "a", 2.0)
    e = _error(spark, bad("size", 46, size=math.nan), plan)  # NaN is refused, as the SDK
    assert (e.field, e.row) == ("size", 46) and math.isnan(e.got)
    e = _error(spark, bad("other", 44, color="__other__"), plan)
    assert (e.field, e.row, e.got) == ("color", 44, "__other__")
    # a duplicate id names the row repeating it; a null id its own row
    e = _error(spark, bad("dup", 50, id="r-7"), plan)
    assert (e.field, e.row, e.got) == ("id", 50, "r-7")
    e = _error(spark, bad("noid", 31, id=None), plan)
    assert (e.field, e.row) == ("id", 31)
    # a null timestamp (TIMESTAMP) and unparsable ISO text
    table = pa.table({"ts": pa.array(["2026-01-01T00:00:00Z", "2026-01-01", "soon"]),
                      "s": _map([{"a": 0.1}] * 3), "n": pa.array([1, 2, 3])})  # fmt: skip
    pq.write_table(table, tmp_path / "t.parquet")
    ts_plan = make_plan(
        Mapping(timestamp="ts", predictions={"genres": "s"}),
        segments=[],
        numeric=[],
        categorical=[],
    )
    e = _error(spark, tmp_path / "t.parquet", ts_plan)
    assert (e.field, e.row, e.got) == ("ts", 2, "soon")
    # schema errors: a missing column lists the available ones; wrong types
    e = _error(spark, tmp_path / "t.parquet", replace(ts_plan, mapping=Mapping(
        timestamp="ts", predictions={"genres": "nope"})))  # fmt: skip
    assert e.got == "nope" and "ts, s" in e.expected
    e = _error(spark, tmp_path / "t.parquet", replace(ts_plan, mapping=Mapping(
        predictions={"genres": "n"})))  # fmt: skip
    assert e.field == "n" and e.got == "bigint"
    # a text column is read as JSON objects: these texts are not
    e = _error(spark, tmp_path / "t.parquet", replace(ts_plan, mapping=Mapping(
        predictions={"genres": "ts"})))  # fmt: skip
    assert (e.field, e.row, e.got) == ("ts", 0, "2026-01-01T00:00:00Z")
    with pytest.raises(InvalidInputError, match="engine duckdb"):
        SparkSource(str(tmp_path / "x.arrow"), spark=spark)
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    e = _error(spark, tmp_path / "broken.parquet", ts_plan)
    assert e.field == "source" and "broken.parquet" in str(e)


def test_spark_job_fetches_summarizes_and_posts(
    tmp_path: Path, spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``spark_job.main``: the version fetched, the files summarized, the summary posted
    (the HTTP calls replaced)."""
    from labelwatch.monitor import Monitor
    from labelwatch.sources import _ingest, spark_job

    monitor = Monitor(f"sqlite:///{tmp_path}/v.db")
    try:
        monitor.create_model_version(
            "m", "v1", features={"size": "numeric", "color": "categorical"},
            predictions={"genres": "dict"}, segments=["color"],
        )  # fmt: skip
        version = monitor.get_version("m", "v1")
    finally:
        monitor.close()
    rs = make_records(120, seed=4)
    write_map_parquet(rs, tmp_path)
    posted: dict[str, Any] = {}

    def fetch(host: str, token: str, model: str, name: str) -> dict[str, Any]:
        assert (host, token, model, name) == ("http://h", "t0k", "m", "v1")
        return version

    def post(*args: Any) -> dict[str, Any]:
        posted["args"] = args
        return {"ok": True}

    monkeypatch.setattr(_ingest, "fetch_version", fetch)
    monkeypatch.setattr(_ingest, "post_summary", post)
    code = spark_job.main(
        ["--host", "http://h", "--token", "t0k", "--version", "m:v1",
         "--source", str(tmp_path / "part-*.parquet"), "--map", "timestamp=ts",
         "--map", "predictions.genres=scores", "--map", "actuals.genres=truth"]
    )  # fmt: skip
    assert code == 0
    _, _, model, name, env, _, found, summary = posted["args"]
    assert (model, name, env, found.rows) == ("m", "v1", "production", len(rs))
    assert int(summary.rows["count"].sum()) == len(rs)
    assert summary.segments == ["color"] and summary.labels["genres"]
    assert not spark.sparkContext._jsc.sc().isStopped()  # the test's session, not stopped


def test_boolean_feature_as_integers(tmp_path: Path, spark: Any) -> None:
    """A boolean feature in an integer column counts 1 / 0 as "true" / "false", as
    DuckDB does; another integer is refused, naming the column and row."""
    flags = [1, 0, None, 1, 1, 0]
    table = pa.table({"s": _map([{"a": 0.5}] * len(flags)), "flag": pa.array(flags, pa.int64())})
    pq.write_table(table, tmp_path / "f.parquet")
    plan = make_plan(
        Mapping(predictions={"genres": "s"}, features={"flag": "flag"}),
        segments=[], numeric=[], categorical=["flag"], booleans=["flag"],
        labels={"genres": ["a"]},
    )  # fmt: skip
    with SparkSource(str(tmp_path / "f.parquet"), spark=spark) as src:
        got = src.summarize(plan).categorical
    from labelwatch.sources._duckdb import DuckDBSource

    with DuckDBSource(str(tmp_path / "f.parquet")) as src:
        want = src.summarize(plan).categorical
    counts = dict(zip(got["category"].tolist(), got["count"].tolist(), strict=True))
    assert counts == {"true": 3, "false": 2, None: 1}
    assert counts == dict(zip(want["category"].tolist(), want["count"].tolist(), strict=True))
    bad = tmp_path / "bad"
    bad.mkdir()
    pq.write_table(table.set_column(1, "flag", pa.array([1, 0, None, 1, 7, 0])), bad / "f.parquet")
    err = _error(spark, bad / "f.parquet", plan)
    assert (err.field, err.row, err.got) == ("flag", 4, 7)


def test_json_text_dicts_in_csv(tmp_path: Path, spark: Any) -> None:
    """Dict fields as text columns of JSON objects (a CSV file): the oracle's and
    DuckDB's aggregates; a row whose text is not an object of numbers is refused,
    naming the column and the row."""
    rs = make_records(300, seed=7)
    flat = {
        "id": pa.array([r["id"] for r in rs]),
        "ts": pa.array([r["ts"] for r in rs], pa.int64()),
        "scores": pa.array([None if r["pred"] is None else json.dumps(r["pred"]) for r in rs]),
        "truth": pa.array([None if r["act"] is None else json.dumps(r["act"]) for r in rs]),
        **_features(rs),
    }
    pacsv.write_csv(pa.table(flat), tmp_path / "j.csv")
    plan = make_plan(mapping_for("map"), labels={"genres": LABELS})
    with SparkSource(str(tmp_path / "j.csv"), spark=spark) as src:
        summary = src.summarize(plan)
    assert_oracle(summary, rs, plan)
    from labelwatch.sources._duckdb import DuckDBSource

    with DuckDBSource(str(tmp_path / "j.csv")) as duck:
        duck.discover(plan)
        other = duck.summarize(plan).sparse()
    for name in ("scores", "samples", "pairs"):
        assert canonical(getattr(summary, name)) == canonical(getattr(other, name)), name
    # a number as a JSON string is refused too, as DuckDB and the SDK refuse it
    texts = ['{"a": 0.5', '{"a": "high"}', "[0.5]", '{"a": {"b": 1}}', '{"a": "0.5"}',
             '{"genre_00": 0.5, "genre_01": "true"}', '{"a": [1]}']  # fmt: skip
    for k, text in enumerate(texts):
        bad = tmp_path / f"bad{k}"
        bad.mkdir()
        texts = [None if r["pred"] is None else json.dumps(r["pred"]) for r in rs]
        texts[41] = text
        pacsv.write_csv(pa.table({**flat, "scores": pa.array(texts)}), bad / "j.csv")
        err = _error(spark, bad / "j.csv", plan)
        assert (err.field, err.row, err.got) == ("scores", 41, text), str(err)
        assert "JSON object" in str(err)
