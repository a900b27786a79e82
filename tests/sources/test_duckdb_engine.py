"""The DuckDB engine against slow, obvious oracles written in the test."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwatch.errors import InvalidInputError
from labelwatch.metrics._binning import make_edges
from labelwatch.metrics._numeric import NumericSketch
from labelwatch.sources._duckdb import DuckDBSource
from labelwatch.sources._plan import Mapping, Plan, Summary

LABELS = ["a", "b", "c", "d"]
EDGES = make_edges(4, [0.3, 0.7]).tolist()
T0 = 1_700_000_000.0
LOG_GAMMA = math.log1p(2 * 0.005 / 0.995)


def make_plan(mapping: Mapping, labels: list[str] | None = None, **kw: Any) -> Plan:
    base: dict[str, Any] = {
        "mapping": mapping,
        "fields": ["g"],
        "edges": {"g": EDGES},
        "thresholds": {"g": {"a": 0.3, "c": 0.7}},
        "default_threshold": {"g": 0.5},
        "segments": ["country"],
        "numeric": ["age"],
        "categorical": ["country", "flag"],
        "log_gamma": LOG_GAMMA,
        "now": T0,
        "labels": None if labels is None else {"g": labels},
    }
    base.update(kw)
    return Plan(**base)


def make_rows(n: int = 90, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    special = [0.0, 0.25, 0.3, 0.5, 0.7, 0.75, 1.0]
    rows = []
    for i in range(n):
        pred: dict[str, float] | None = {}
        for label in LABELS:
            if rng.random() < 0.75:
                s = special[rng.integers(len(special))] if rng.random() < 0.5 else rng.random()
                pred[label] = float(s)  # type: ignore[index]
        if rng.random() < 0.1:
            pred = None
        act: dict[str, float] | None = None
        if rng.random() < 0.6:
            act = {x: float(rng.random() < 0.4) for x in LABELS if rng.random() < 0.7}
        rows.append(
            {
                "id": f"p{i}",
                "ts": datetime.fromtimestamp(T0 + 900 * i + 7, UTC).replace(tzinfo=None),
                "country": [None, "fr", "de"][int(rng.integers(3))],
                "age": None if rng.random() < 0.2 else float(rng.normal(40, 20)),
                "flag": [None, True, False][int(rng.integers(3))],
                "pred": pred,
                "act": act,
            }
        )
    return rows


def arrow_table(rows: list[dict[str, Any]], form: str) -> pa.Table:
    cols: dict[str, Any] = {
        "id": pa.array([r["id"] for r in rows]),
        "ts": pa.array([r["ts"] for r in rows], pa.timestamp("us")),
        "country": pa.array([r["country"] for r in rows], pa.string()),
        "age": pa.array([r["age"] for r in rows], pa.float64()),
        "flag": pa.array([r["flag"] for r in rows], pa.bool_()),
    }
    for side in ("pred", "act"):
        values = [r[side] for r in rows]
        if form == "map":
            typ = pa.map_(pa.string(), pa.float64())
            cols[side] = pa.array([None if v is None else list(v.items()) for v in values], typ)
        elif form == "struct":
            typ = pa.struct([(x, pa.float64()) for x in LABELS])
            cols[side] = pa.array(values, typ)
        else:
            for x in LABELS:
                cols[f"{side}_{x}"] = pa.array(
                    [None if v is None else v.get(x) for v in values], pa.float64()
                )
    return pa.table(cols)


def mapping_for(form: str) -> Mapping:
    feats = {"country": "country", "age": "age", "flag": "flag"}
    if form in ("map", "struct"):
        return Mapping(
            id="id", timestamp="ts", features=feats, predictions={"g": "pred"}, actuals={"g": "act"}
        )
    return Mapping(
        id="id",
        timestamp="ts",
        features=feats,
        prediction_columns={"g": {x: f"pred_{x}" for x in LABELS}},
        actual_columns={"g": {x: f"act_{x}" for x in LABELS}},
    )


# ------------------------------------------------------------------ the oracle
def oracle(rows: list[dict[str, Any]], plan: Plan) -> dict[str, Counter[tuple[Any, ...]]]:
    assert plan.labels is not None
    labels = plan.labels["g"]
    out: dict[str, Counter[tuple[Any, ...]]] = {
        k: Counter() for k in ("scores", "samples", "pairs_p", "pairs_q", "rows", "categorical")
    }
    for r in rows:
        cell = (int(r["ts"].replace(tzinfo=UTC).timestamp() // 3600), r["country"])
        out["rows"][cell] += 1
        for feature in ("country", "flag"):
            v = r[feature]
            text = None if v is None else ("true" if v else "false") if isinstance(v, bool) else v
            out["categorical"][(*cell, feature, text)] += 1
        pred = None if r["pred"] is None else {k: v for k, v in r["pred"].items() if k in labels}
        act = None if r["act"] is None else {k: v for k, v in r["act"].items() if k in labels}
        if pred is None and act is None:
            continue
        labeled = act is not None
        for x, s in (pred or {}).items():
            outcome = 2 if not labeled else int(act.get(x) == 1)  # type: ignore[union-attr]
            b = int(np.searchsorted(EDGES, s, side="left"))
            out["scores"][(*cell, "g", x, outcome, b)] += 1
        for x, v in (act or {}).items():
            if x not in (pred or {}):
                out["scores"][(*cell, "g", x, int(v == 1), 0)] += 1
        predicted = {x for x, s in (pred or {}).items() if s > plan.threshold("g", x)}
        true = {x for x, v in (act or {}).items() if v == 1}
        n_true, tp = (len(true), len(predicted & true)) if labeled else (0, 0)
        out["samples"][(*cell, "g", int(labeled), len(predicted), n_true, tp)] += 1
        for i, a in enumerate(labels):
            for b in labels[i:]:
                p = int(a in predicted and b in predicted)
                q = int(labeled and a in true and b in true)
                if p or q:
                    out["pairs_p"][(*cell, "g", a, b)] += p
                    out["pairs_q"][(*cell, "g", a, b)] += q
    return out


def counted(table: dict[str, np.ndarray], keys: list[str], count: str) -> Counter[tuple[Any, ...]]:
    out: Counter[tuple[Any, ...]] = Counter()
    for i in range(len(table[count])):
        out[tuple(_py(table[k][i]) for k in keys)] += int(table[count][i])
    return out


def _py(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def check_summary(summary: Summary, rows: list[dict[str, Any]], plan: Plan) -> None:
    want = oracle(rows, plan)
    cell = ["bucket", "seg_0"]
    assert counted(summary.rows, cell, "count") == want["rows"]
    got_scores = counted(
        summary.sparse().scores, [*cell, "field", "label", "outcome", "bin"], "count"
    )
    assert got_scores == want["scores"]
    keys = [*cell, "field", "labeled", "n_pred", "n_true", "tp"]
    assert counted(summary.samples, keys, "count") == want["samples"]
    pair_keys = [*cell, "field", "label_a", "label_b"]
    p = summary.pairs
    got_p = {
        tuple(_py(p[k][i]) for k in pair_keys): int(p["predicted"][i])
        for i in range(len(p["predicted"]))
    }
    got_q = {
        tuple(_py(p[k][i]) for k in pair_keys): int(p["actual"][i]) for i in range(len(p["actual"]))
    }
    assert got_p == dict(want["pairs_p"])
    assert got_q == dict(want["pairs_q"])
    got_cat = counted(summary.categorical, [*cell, "feature", "category"], "count")
    assert got_cat == want["categorical"]


def write(table: pa.Table, path: Path, fmt: str) -> Path:
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=17)
    elif fmt == "csv":
        pcsv.write_csv(table, path)
    elif fmt == "arrow":
        with ipc.new_file(path, table.schema) as w:
            w.write_table(table, max_chunksize=13)
    else:
        with ipc.new_stream(path, table.schema) as w:
            w.write_table(table, max_chunksize=13)
    return path


# ----------------------------------------------------------------------- tests
@pytest.mark.parametrize(
    ("form", "fmt"),
    [
        ("map", "parquet"),
        ("struct", "parquet"),
        ("cols", "parquet"),
        ("cols", "csv"),
        ("map", "arrow"),
        ("struct", "stream"),
        ("cols", "table"),
    ],
)
def test_summary_matches_oracle(tmp_path: Path, form: str, fmt: str) -> None:
    rows = make_rows()
    table = arrow_table(rows, form)
    source: Any
    if fmt == "table":
        source = DuckDBSource(table=table)
    elif fmt == "parquet":  # two files: row numbers continue across them
        write(table.slice(0, 40), tmp_path / "part-0.parquet", fmt)
        write(table.slice(40), tmp_path / "part-1.parquet", fmt)
        source = DuckDBSource(str(tmp_path / "part-*.parquet"))
    else:
        ext = {"csv": "csv", "arrow": "arrow", "stream": "arrow"}[fmt]
        source = DuckDBSource([str(write(table, tmp_path / f"data.{ext}", fmt))])
    with source as src:
        plan = make_plan(mapping_for(form))
        found = src.discover(plan)
        assert found.rows == len(rows)
        first_pred: dict[str, tuple[int, int]] = {}
        for i, r in enumerate(rows):
            for pos, x in enumerate(r["pred"] or {}):
                first_pred.setdefault(x, (i, LABELS.index(x) if form != "map" else pos))
        want_order = sorted(first_pred, key=first_pred.__getitem__)
        assert [x for x, _ in found.prediction_labels["g"]] == want_order
        counts = Counter(x for r in rows for x in (r["pred"] or {}))
        assert dict(found.prediction_labels["g"]) == dict(counts)
        assert dict(found.actual_labels["g"]) == dict(
            Counter(x for r in rows for x in (r["act"] or {}))
        )
        for labels in (["a", "b", "c", "d"], ["c", "a"], []):
            check_summary(
                src.summarize(dataclasses.replace(plan, labels={"g": labels})),
                rows,
                make_plan(mapping_for(form), labels),
            )


def test_bins_are_searchsorted() -> None:
    rng = np.random.default_rng(5)
    for edges in (
        make_edges(10, [0.3, 0.7]),
        make_edges(3, [1 / 3, 0.3, 0.7]),
        make_edges(7, [1e-9, 0.5 + 1e-12, 1 - 1e-15]),
    ):
        scores = np.concatenate(
            [edges, np.nextafter(edges, 2), np.nextafter(edges, -1), rng.random(300), [0.0, 1.0]]
        )
        scores = scores[(scores >= 0) & (scores <= 1)]
        table = pa.table({"s": scores, "ts": np.full(scores.size, T0)})
        mapping = Mapping(timestamp="ts", prediction_columns={"g": {"x": "s"}})
        plan = make_plan(
            mapping, ["x"], edges={"g": edges.tolist()}, segments=[], numeric=[], categorical=[]
        )
        with DuckDBSource(table=table) as src:
            got = counted(src.summarize(plan).sparse().scores, ["bin"], "count")
        want = Counter((b,) for b in np.searchsorted(edges, scores, side="left").tolist())
        assert got == want


finite = st.floats(allow_nan=False, allow_infinity=False)
special = st.sampled_from(
    [
        0.0,
        -0.0,
        5e-324,
        -5e-324,
        2.2250738585072014e-308,
        1e-310,
        1e308,
        -1e308,
        1.7976931348623157e308,
        1.0,
        -3.0,
        2.0**53 + 2,
        0.1,
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(finite, special, st.none(), st.integers(-(2**40), 2**40).map(float)), max_size=40
    )
)
def test_numeric_matches_sketch(values: list[float | None]) -> None:
    table = pa.table({"x": pa.array(values, pa.float64()), "ts": np.full(len(values), T0)})
    mapping = Mapping(timestamp="ts", features={"x": "x"})
    plan = make_plan(mapping, [], fields=[], segments=[], numeric=["x"], categorical=[])
    sk = NumericSketch.from_values([np.nan if v is None else v for v in values])
    with DuckDBSource(table=table) as src:
        s = src.summarize(plan)
    if not values:
        assert len(s.numeric["count"]) == 0
        return
    n = s.numeric
    assert (n["count"][0], n["missing"][0], n["zero"][0]) == (sk.count, sk.missing, sk.zero)
    np.testing.assert_array_equal([n["min"][0], n["max"][0]], [sk.min, sk.max])
    total = sum(
        Fraction(int(m)) * Fraction(2) ** int(e)
        for m, e in zip(s.numeric_sums["mantissa"], s.numeric_sums["exponent"], strict=True)
    )
    k, e = sk._exact
    assert total == Fraction(k) * Fraction(2) ** e
    keys = s.numeric_keys
    for sign, want_keys, want_counts in (
        (1, sk.pos_keys, sk.pos_counts),
        (-1, sk.neg_keys, sk.neg_counts),
    ):
        sel = keys["sign"] == sign
        got = dict(zip(keys["key"][sel].tolist(), keys["count"][sel].tolist(), strict=True))
        for lo, hi, key in zip(keys["lo"][sel], keys["hi"][sel], keys["key"][sel], strict=True):
            np_keys = np.ceil(np.log([lo, hi]) / LOG_GAMMA)
            assert np_keys[0] == np_keys[1] == key  # else the lead asks numeric_values
        assert got == dict(zip(want_keys.tolist(), want_counts.tolist(), strict=True))


def test_numeric_values_and_records(tmp_path: Path) -> None:
    rows = make_rows(30)
    path = write(arrow_table(rows, "map"), tmp_path / "d.parquet", "parquet")
    plan = make_plan(mapping_for("map"), LABELS)
    with DuckDBSource(str(path)) as src:
        vals = src.numeric_values(plan, "age", 30.0, 50.0)
        want = [r["age"] for r in rows if r["age"] is not None and 30 <= abs(r["age"]) <= 50]
        assert vals["value"].tolist() == want
        preds, acts = [], []
        for p, a in src.records(plan, batch_size=7):
            assert len(p) <= 7
            preds += p
            acts += a
    assert [p["id"] for p in preds] == [r["id"] for r in rows]
    for p, r in zip(preds, rows, strict=True):
        assert p["timestamp"] == r["ts"].replace(tzinfo=UTC).timestamp()
        assert p["predictions"] == ({} if r["pred"] is None else {"g": r["pred"]})
        want_feats = {k: r[k] for k in ("country", "age", "flag") if r[k] is not None}
        assert p.get("features", {}) == want_feats
    assert acts == [
        {"id": r["id"], "actuals": {"g": r["act"]}} for r in rows if r["act"] is not None
    ]


def test_sql_source(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE p (id TEXT, ts REAL, country TEXT, s_a REAL, s_b REAL, y_a REAL)")
    con.executemany(
        "INSERT INTO p VALUES (?, ?, ?, ?, ?, ?)",
        [
            (f"r{i}", T0 + 600 * i, "fr" if i % 2 else None, (i % 10) / 10, 0.3, float(i % 3 == 0))
            for i in range(120_003)
        ][:1203],
    )
    con.commit()
    con.close()
    mapping = Mapping(
        id="id",
        timestamp="ts",
        features={"country": "country"},
        prediction_columns={"g": {"a": "s_a", "b": "s_b"}},
        actual_columns={"g": {"a": "y_a"}},
    )
    plan = make_plan(mapping, None, numeric=[], categorical=["country"])
    with DuckDBSource(url=f"sqlite:///{db}", query="SELECT * FROM p ORDER BY id") as src:
        assert list(src.columns())[:3] == ["id", "ts", "country"]
        found = src.discover(plan)
        assert found.rows == 1203
        assert found.prediction_labels["g"] == [("a", 1203), ("b", 1203)]
        s = src.summarize(dataclasses.replace(plan, labels={"g": ["a", "b"]}))
    assert int(s.rows["count"].sum()) == 1203
    assert int(s.samples["count"].sum()) == 1203
    got = counted(s.sparse().scores, ["label", "outcome"], "count")
    assert got[("b", 1)] == 0 and got[("b", 0)] == 1203
    assert got[("a", 1)] == sum(1 for i in range(1203) if i % 3 == 0)


def test_missing_sources(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="source"):
        DuckDBSource(str(tmp_path / "nope.parquet"))
    with pytest.raises(InvalidInputError, match="glob"):
        DuckDBSource(str(tmp_path / "*.parquet"))


def _error(table: pa.Table, mapping: Mapping, **kw: Any) -> InvalidInputError:
    plan = make_plan(mapping, **kw)
    with DuckDBSource(table=table) as src, pytest.raises(InvalidInputError) as info:
        src.discover(plan)
    return info.value


def test_validation_errors() -> None:
    rows = make_rows(12)
    good = arrow_table(rows, "map")
    m = mapping_for("map")

    def with_column(name: str, values: list[Any], typ: Any = None) -> pa.Table:
        i = good.schema.get_field_index(name)
        return good.set_column(i, name, pa.array(values, typ or good.schema.field(name).type))

    err = _error(good, dataclasses.replace(m, id="nope"))
    assert err.field == "nope" and "among" in err.expected
    err = _error(good, dataclasses.replace(m, id="age"))
    assert err.field == "age"
    ids = [r["id"] for r in rows]
    ids[3], ids[7] = None, "p1"
    err = _error(with_column("id", ids), m)
    assert (err.field, err.row) == ("id", 3)
    ids[3] = "p3"
    err = _error(with_column("id", ids), m)
    assert (err.field, err.row, err.got) == ("id", 7, "p1") and "row 1" in err.expected
    ts = [r["ts"] for r in rows]
    ts[5] = None
    err = _error(with_column("ts", ts), m)
    assert (err.field, err.row) == ("ts", 5)
    text = [r["ts"].isoformat() for r in rows]
    text[4] = "yesterday"
    err = _error(with_column("ts", text, pa.string()), m)
    assert (err.field, err.row, err.got) == ("ts", 4, "yesterday")
    preds = [None if r["pred"] is None else list(r["pred"].items()) for r in rows]
    preds[6] = [("a", 0.5), ("b", 1.5)]
    err = _error(with_column("pred", preds), m)
    assert (err.field, err.row, err.got) == ("pred.b", 6, 1.5)
    preds[2] = [("a", math.nan)]
    assert _error(with_column("pred", preds), m).row == 2
    preds[1] = [("a", None)]
    assert (
        _error(with_column("pred", preds), m).field,
        _error(with_column("pred", preds), m).row,
    ) == ("pred.a", 1)
    acts = [None if r["act"] is None else list(r["act"].items()) for r in rows]
    acts[4] = [("c", 0.5)]
    err = _error(with_column("act", acts), m)
    assert (err.field, err.row, err.got) == ("act.c", 4, 0.5)
    ages = [r["age"] for r in rows]
    ages[9] = math.inf
    err = _error(with_column("age", ages), m)
    assert (err.field, err.row) == ("age", 9)
    countries = [r["country"] for r in rows]
    countries[8] = "__other__"
    err = _error(with_column("country", countries), m)
    assert (err.field, err.row) == ("country", 8)
    err = _error(good, m, numeric=["country"])
    assert err.field == "country"
    cols = arrow_table(rows, "cols")
    i = cols.schema.get_field_index("act_b")
    bad = cols.set_column(i, "act_b", pa.array([None] * 10 + [2.0, None], pa.float64()))
    err = _error(bad, mapping_for("cols"))
    assert (err.field, err.row, err.got) == ("act_b", 10, 2.0)
    assert "act_b row 10" in str(err)


def _same_tables(x: Summary, y: Summary) -> None:
    x, y = x.sparse(), y.sparse()
    for name in ("scores", "samples", "pairs", "categorical", "rows"):
        # the compiled pass adds its cell ids (``cell``), a grouping aid: not compared
        a = {c: v for c, v in getattr(x, name).items() if c != "cell"}
        b = {c: v for c, v in getattr(y, name).items() if c != "cell"}
        assert list(a) == list(b), name
        rows_a = sorted(zip(*(a[c].tolist() for c in a), strict=True), key=repr)
        rows_b = sorted(zip(*(b[c].tolist() for c in b), strict=True), key=repr)
        assert rows_a == rows_b, name
        for c in a:
            assert a[c].dtype == b[c].dtype, (name, c)
    _same_numeric(x, y)


def _same_numeric(x: Summary, y: Summary) -> None:
    """Equal numeric tables: the same rows (NaN equal to NaN), and per (cell, feature)
    the same exact sum (the compiled pass splits the mantissas otherwise). The keys'
    magnitudes are not compared: the compiled pass keys by NumPy and leaves them NaN."""
    for name in ("numeric", "numeric_keys"):
        skip = {"cell"} if name == "numeric" else {"cell", "lo", "hi"}
        a = {c: v for c, v in getattr(x, name).items() if c not in skip}
        b = {c: v for c, v in getattr(y, name).items() if c not in skip}
        assert list(a) == list(b), name
        rows_a = sorted(zip(*(a[c].tolist() for c in a), strict=True), key=repr)
        rows_b = sorted(zip(*(b[c].tolist() for c in b), strict=True), key=repr)
        assert repr(rows_a) == repr(rows_b), name  # repr: nan == nan
        for c in a:
            assert a[c].dtype == b[c].dtype, (name, c)

    def sums(s: Summary) -> dict[tuple[Any, ...], Fraction]:
        t = s.numeric_sums
        keys = [c for c in t if c not in ("cell", "exponent", "mantissa")]
        out: dict[tuple[Any, ...], Fraction] = {}
        for i in range(len(t["exponent"])):
            k = tuple(t[c][i] for c in keys)
            m, e = int(t["mantissa"][i]), int(t["exponent"][i])
            out[k] = out.get(k, Fraction(0)) + Fraction(m) * Fraction(2) ** e
        return {k: v for k, v in out.items() if v}

    assert sums(x) == sums(y)


@pytest.mark.parametrize("n_labels", [130, 300])
def test_compiled_pass_equals_sql_many_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n_labels: int
) -> None:
    """More labels than one 64-bit mask word holds (pairs across words), and more than
    pairs are counted for (256): the compiled pass gives the SQL engine's tables. With
    130 labels x 200 bins the score codes no longer fit 16 bits (int32 codes)."""
    import labelwatch.sources._duckdb_pass as engine
    from labelwatch.sources._pass_kernels import HAVE_NUMBA

    if not HAVE_NUMBA:
        pytest.skip("numba not installed")
    monkeypatch.setattr(engine, "_BATCH_ROWS", 97)
    monkeypatch.setattr(engine, "_CHUNK_ROWS", 300)
    rng = np.random.default_rng(n_labels)
    names = [f"x{j}" for j in range(n_labels)]
    rows = make_rows(600, seed=5)
    for r in rows:
        picked = rng.choice(n_labels, size=int(rng.integers(0, 40)), replace=False)
        r["pred"] = {names[j]: float(rng.random()) for j in picked}
        if r["act"] is not None:
            r["act"] = {names[j]: float(rng.random() < 0.5) for j in picked[:25]}
    path = write(arrow_table(rows, "map"), tmp_path / "d.parquet", "parquet")
    bins = 200 if n_labels == 130 else 4
    plan = make_plan(mapping_for("map"), edges={"g": make_edges(bins, [0.3, 0.7]).tolist()})
    assert (n_labels * 3 * len(plan.edges["g"]) > 1 << 16) == (n_labels == 130)
    with DuckDBSource(str(path), engine="sql") as a, DuckDBSource(str(path)) as b:
        assert a.discover(plan) == b.discover(plan)
        got = b.summarize(plan)
        _same_tables(a.summarize(plan), got)
    if n_labels <= 256:  # pairs across mask words were counted
        assert max(int(x[1:]) for x in got.pairs["label_b"]) >= 128


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("form", ["map", "struct", "cols"])
def test_compiled_pass_equals_sql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str, dense: bool
) -> None:
    """The compiled pass (small batches and slots: flushes, label growth, cell table
    growth; the samples per slot by dense index, moved out at each flush, or in the
    open-addressing table, grown) gives the SQL engine's tables, with the labels of
    discovery or others."""
    import labelwatch.sources._duckdb_pass as engine
    from labelwatch.sources._pass_kernels import HAVE_NUMBA

    if not HAVE_NUMBA:
        pytest.skip("numba not installed")
    if not dense:
        monkeypatch.setattr(engine, "_dense_samples", lambda cap, m: 0)
    grown = engine._FieldAcc.grow_samples
    growths: list[int] = []

    def grow(self: Any) -> None:
        growths.append(1)
        grown(self)

    monkeypatch.setattr(engine._FieldAcc, "grow_samples", grow)
    monkeypatch.setattr(engine, "_BATCH_ROWS", 61)
    monkeypatch.setattr(engine, "_CHUNK_ROWS", 200)  # several batches per chunk
    monkeypatch.setattr(engine, "_SLOT_BYTES", 3000)
    rows = make_rows(1500, seed=3)  # ~1000 cells: the cell table grows
    for i, r in enumerate(rows):  # map keys in varying order, some empty maps
        if r["pred"] and i % 5 == 0:
            r["pred"] = dict(reversed(list(r["pred"].items())))
        if i % 11 == 0:
            r["act"] = {}
        if form == "cols":  # all label columns null: no prediction, no actual
            r["pred"], r["act"] = r["pred"] or None, r["act"] or None
    path = write(arrow_table(rows, form), tmp_path / "d.parquet", "parquet")
    plan = make_plan(mapping_for(form))
    with DuckDBSource(str(path), engine="sql") as a, DuckDBSource(str(path)) as b:
        found_a, found_b = a.discover(plan), b.discover(plan)
        assert found_a == found_b
        for labels in (None, [x for x, _ in found_a.prediction_labels["g"]], ["d", "b"], []):
            p = plan if labels is None else dataclasses.replace(plan, labels={"g": labels})
            _same_tables(a.summarize(p), b.summarize(p))
            if labels is not None:
                check_summary(b.summarize(p), rows, make_plan(mapping_for(form), labels))
    assert bool(growths) != dense  # the table grew, or was not used


@pytest.mark.parametrize(
    "kw",
    [
        {"categorical": ["flag", "country"]},  # the first feature varies within a cell
        {"segments": [], "categorical": ["flag"]},
        {"segments": ["flag", "country"], "categorical": ["country", "flag"]},
        {"categorical": []},
    ],
)
def test_cells_and_categorical_counts_of_one_scan(tmp_path: Path, kw: dict[str, Any]) -> None:
    """The cells' rows and the categorical counts that ``_prepare`` takes from one scan
    (grouping sets, the hashes computed per cell) are the SQL engine's, whatever the
    features' order and the segments."""
    from labelwatch.sources._pass_kernels import HAVE_NUMBA

    if not HAVE_NUMBA:
        pytest.skip("numba not installed")
    rows = make_rows(300, seed=11)
    path = write(arrow_table(rows, "map"), tmp_path / "d.parquet", "parquet")
    plan = make_plan(mapping_for("map"), **kw)
    with DuckDBSource(str(path), engine="sql") as a, DuckDBSource(str(path)) as b:
        assert a.discover(plan) == b.discover(plan)
        got = b.summarize(plan)
        _same_tables(a.summarize(plan), got)
    assert sum(got.rows["count"].tolist()) == 300
    if kw["categorical"]:
        assert sum(got.categorical["count"].tolist()) == 300 * len(kw["categorical"])


def _source(table: pa.Table, kind: str, tmp_path: Path, engine: str | None) -> DuckDBSource:
    """A source of ``table``: registered in DuckDB ("table"), or a Parquet file, which a
    second cursor reads too (the duplicate check beside the tables)."""
    if kind == "table":
        return DuckDBSource(table=table, engine=engine)
    path = tmp_path / f"t{len(list(tmp_path.iterdir()))}.parquet"
    pq.write_table(table, path)
    return DuckDBSource(str(path), engine=engine)


def _with_repeats(col: pa.ChunkedArray, every: int, value: float) -> pa.MapArray:
    """``col``'s maps, each ``every``-th non-empty one with its first key repeated
    (first entry and repeat both ``value``)."""
    m = col.combine_chunks()
    offs, keys, items = m.offsets.to_pylist(), m.keys.to_pylist(), m.items.to_pylist()
    new_offs, new_keys, new_items = [0], [], []
    for i in range(len(m)):
        k, v = keys[offs[i] : offs[i + 1]], items[offs[i] : offs[i + 1]]
        if k and i % every == 0:
            k, v = [*k, k[0]], [value, *v[1:], value]
        new_keys += k
        new_items += v
        new_offs.append(len(new_keys))
    return pa.MapArray.from_arrays(
        pa.array(new_offs, pa.int32()), pa.array(new_keys), pa.array(new_items),
        mask=m.is_null(),
    )  # fmt: skip


@pytest.mark.parametrize("bad", [False, True])
def test_predictions_only_maps(tmp_path: Path, bad: bool) -> None:
    """Parquet maps of predictions and no actuals (the compiled pass' entry point for
    that case): the labels found, their counts and the tables are the SQL engine's; a
    score out of range is refused at its row."""
    from labelwatch.sources._pass_kernels import HAVE_NUMBA

    if not HAVE_NUMBA:
        pytest.skip("numba not installed")
    rows = make_rows(300, seed=31)
    table = arrow_table(rows, "map").drop_columns(["act"])
    if bad:
        preds = [None if r["pred"] is None else list(r["pred"].items()) for r in rows]
        at = next(i for i in range(250, 300) if preds[i])
        preds[at] = [*preds[at][:-1], (preds[at][-1][0], 1.5)]
        i = table.schema.get_field_index("pred")
        table = table.set_column(i, "pred", pa.array(preds, table.schema.field("pred").type))
    path = tmp_path / "d.parquet"
    pq.write_table(table, path)
    plan = make_plan(dataclasses.replace(mapping_for("map"), actuals={}))
    with DuckDBSource(str(path), engine="sql") as a, DuckDBSource(str(path)) as b:
        if bad:
            got = []
            for src in (a, b):
                with pytest.raises(InvalidInputError) as err:
                    src.discover(plan)
                got.append((err.value.field, err.value.row, err.value.got))
            assert got[0] == got[1] == (f"pred.{preds[at][-1][0]}", at, 1.5)
            return
        found = b.discover(plan)
        assert found == a.discover(plan)
        assert sum(n for _, n in found.prediction_labels["g"]) == sum(
            len(r["pred"] or {}) for r in rows
        )
        _same_tables(a.summarize(plan), b.summarize(plan))


@pytest.mark.parametrize("decoder", ["own", "pyarrow"])
def test_repeated_map_keys_count_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decoder: str
) -> None:
    """A map holding a key twice (Parquet allows it) counts that label once per row for
    the row's predicted and true label sets, as the SQL engine does."""
    from labelwatch.sources._pass_kernels import HAVE_NUMBA

    if not HAVE_NUMBA:
        pytest.skip("numba not installed")
    if decoder == "pyarrow":
        monkeypatch.setenv("LABELWATCH_PARQUET_DECODER", "pyarrow")
    table = arrow_table(make_rows(200, seed=21), "map")
    for name, value in (("pred", 0.9), ("act", 1.0)):
        col = _with_repeats(table.column(name), 3, value)
        table = table.set_column(table.schema.get_field_index(name), name, col)
    path = tmp_path / "d.parquet"
    pq.write_table(table, path)
    plan = make_plan(mapping_for("map"))
    with DuckDBSource(str(path), engine="sql") as a, DuckDBSource(str(path)) as b:
        want, got = a.summarize(plan), b.summarize(plan)
    _same_tables(want, got)
    assert max(want.samples["n_pred"]) <= len(LABELS)
    assert max(want.samples["n_true"]) <= len(LABELS)


@pytest.mark.parametrize("engine", ["sql", None])
@pytest.mark.parametrize("ints", [False, True])
@pytest.mark.parametrize("kind", ["table", "parquet"])
@pytest.mark.parametrize("sorted_hashes", [True, False])
def test_duplicate_ids_are_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine: str | None,
    ints: bool,
    kind: str,
    sorted_hashes: bool,
) -> None:
    """An id met twice: the later row refused, naming the first (text and integer ids;
    the check groups ids only when their hashes collide, the hashes sorted by NumPy or,
    past ``_SORTED_HASHES`` rows, counted by DuckDB), also when the check runs on a
    second cursor while the tables are built (Parquet, the compiled pass)."""
    import labelwatch.sources._duckdb as duck

    if not sorted_hashes:
        monkeypatch.setattr(duck, "_SORTED_HASHES", 59)
    rows = make_rows(60, seed=8)
    rows[44]["id"] = rows[17]["id"]
    rows[51]["id"] = rows[3]["id"]
    table = arrow_table(rows, "map")
    if ints:
        ids = pa.array([int(r["id"][1:]) for r in rows], pa.int64())
        table = table.set_column(table.schema.get_field_index("id"), "id", ids)
    plan = make_plan(mapping_for("map"))
    with _source(table, kind, tmp_path, engine) as src:
        with pytest.raises(InvalidInputError) as err:
            src.discover(plan)
        assert (err.value.field, err.value.row) == ("id", 44)
        assert "also at row 17" in str(err.value)
        assert str(err.value.got) == ("17" if ints else "p17")
        with pytest.raises(InvalidInputError) as again:  # nothing kept from the first
            src.summarize(plan)
        assert (again.value.field, again.value.row) == ("id", 44)
        unique = table.set_column(
            table.schema.get_field_index("id"), "id", pa.array([f"q{i}" for i in range(60)])
        )
    with _source(unique, kind, tmp_path, engine) as src:
        assert src.discover(plan).rows == 60


def test_tables_built_beside_the_duplicate_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``discover`` over Parquet builds the summary's tables while a second cursor checks
    the ids, the cells and categories counted by a query run from the pass once its
    last batch was encoded: ``summarize`` then equals the SQL engine's with the pairs in
    the order of the labels it is given (not the order met), and a second summary is
    built anew (the first's arrays are the caller's)."""
    from labelwatch.sources._pass_kernels import HAVE_NUMBA

    if not HAVE_NUMBA:
        pytest.skip("numba not installed")
    rows = make_rows(400, seed=12)
    path = write(arrow_table(rows, "map"), tmp_path / "d.parquet", "parquet")
    plan = make_plan(mapping_for("map"))
    given: list[bool] = []
    prepare = DuckDBSource._prepare

    def prepared(self: DuckDBSource, plan: Any, passed: Any, got: Any = None) -> Any:
        given.append(got is not None)
        return prepare(self, plan, passed, got)

    monkeypatch.setattr(DuckDBSource, "_prepare", prepared)
    with DuckDBSource(str(path), engine="sql") as a, DuckDBSource(str(path)) as b:
        found = b.discover(plan)
        assert given == [True]  # the query ran ahead, from the pass
        assert found == a.discover(plan)
        assert b._prepared is not None and b._prepared.categorical is not None
        met = list(dict.fromkeys([x for x, _ in found.prediction_labels["g"]]
                                 + [x for x, _ in found.actual_labels["g"]]))  # fmt: skip
        labels = met[::-1]
        assert labels != met
        p = dataclasses.replace(plan, labels={"g": labels})
        want, got = a.summarize(p), b.summarize(p)
        assert b._prepared is None  # used once
        _same_tables(want, got)
        rank = {x: j for j, x in enumerate(labels)}
        assert len(got.pairs["label_a"]) > 0
        pairs = zip(got.pairs["label_a"], got.pairs["label_b"], strict=True)
        assert all(rank[x] <= rank[y] for x, y in pairs)
        check_summary(got, rows, make_plan(mapping_for("map"), labels))
        got.samples["count"][:] = 0
        got.categorical["count"][:] = 0
        _same_tables(want, b.summarize(p))


@pytest.mark.parametrize("where", ["_prepare", "_duplicates", "_grouped_sql"])
def test_failure_beside_the_duplicate_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A failure in the tables, the duplicate check's thread or the grouped query (run
    from inside the pass, once its last batch is encoded) ends ``discover`` with it
    (DuckDB's error as the source's), the side cursors closed, and the source still
    summarizes after."""
    import duckdb

    from labelwatch.sources._pass_kernels import HAVE_NUMBA

    if not HAVE_NUMBA:
        pytest.skip("numba not installed")
    path = write(arrow_table(make_rows(120, seed=4), "map"), tmp_path / "d.parquet", "parquet")
    plan = make_plan(mapping_for("map"))
    with DuckDBSource(str(path), engine="sql") as a, DuckDBSource(str(path)) as b:
        original = getattr(DuckDBSource, where)

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise duckdb.IOException("disk gone")

        monkeypatch.setattr(DuckDBSource, where, broken)
        with pytest.raises(InvalidInputError) as err:
            b.discover(plan)
        assert err.value.field == "source" and "disk gone" in str(err.value)
        monkeypatch.setattr(DuckDBSource, where, original)
        _same_tables(a.summarize(plan), b.summarize(plan))


def test_empty_source_summarizes_to_empty_tables() -> None:
    """No rows: empty tables from both engines (the compiled pass once built one column
    too many and failed)."""
    table = arrow_table([], "map")
    plan = make_plan(mapping_for("map"))
    with DuckDBSource(table=table, engine="sql") as a, DuckDBSource(table=table) as b:
        assert a.discover(plan).rows == b.discover(plan).rows == 0
        want, got = a.summarize(plan), b.summarize(plan)
    for name in ("scores", "samples", "pairs", "numeric", "numeric_keys", "numeric_sums", "rows"):
        assert all(len(c) == 0 for c in getattr(got.sparse(), name).values()), name
    _same_tables(want, got)
