"""The numeric features counted in the compiled pass (``_pass_numeric``) against
``NumericSketch`` and plain Python, and against the SQL engine."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import labelwatch.sources._pass_numeric as numeric_mod
from labelwatch.metrics._numeric import NumericSketch
from labelwatch.sources._duckdb import DuckDBSource
from labelwatch.sources._pass_kernels import HAVE_NUMBA
from labelwatch.sources._pass_numeric import NumericAcc
from labelwatch.sources._plan import Summary
from tests.sources.test_duckdb_engine import (
    LOG_GAMMA,
    _same_numeric,
    arrow_table,
    make_plan,
    make_rows,
    mapping_for,
)

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")
TINY = float(np.finfo(np.float64).tiny)

special = st.sampled_from(
    [0.0, -0.0, 5e-324, -5e-324, TINY, -TINY, 1e-310, 1e308, -1e308, 1.7976931348623157e308,
     1.0, -3.0, 2.0**53 + 2, 0.1, 1.0050251256281406, 1.0101010101010102]
)  # fmt: skip
value = st.one_of(st.floats(allow_nan=False, allow_infinity=False), special, st.none())


def _oracle(cells: list[Any], values: list[float | None]) -> dict[Any, dict[str, Any]]:
    """Per cell: count, missing, zero, min, max, exact sum, and NumericSketch's keys
    ((sign, key) -> count)."""
    out: dict[Any, dict[str, Any]] = {}
    for cell in dict.fromkeys(cells):
        xs = [v for c, v in zip(cells, values, strict=True) if c == cell]
        present = [v for v in xs if v is not None]
        sk = NumericSketch.from_values(np.array(present, dtype=np.float64))
        keys = Counter[tuple[int, int]]()
        for sign, ks, ns in ((1, sk.pos_keys, sk.pos_counts), (-1, sk.neg_keys, sk.neg_counts)):
            for k, n in zip(ks.tolist(), ns.tolist(), strict=True):
                keys[(sign, int(k))] = int(n)
        out[cell] = {
            "count": len(present),
            "missing": len(xs) - len(present),
            "zero": sum(abs(v) < TINY for v in present),
            "min": min((v + 0.0 for v in present), default=math.nan),
            "max": max((v + 0.0 for v in present), default=math.nan),
            "sum": sum((Fraction(v) for v in present), Fraction(0)),
            "keys": keys,
        }
    return out


def _by_cell(s: Summary, feature: str, cell_cols: list[str]) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    n = s.numeric
    for i in range(len(n["feature"])):
        if n["feature"][i] != feature:
            continue
        cell = tuple(n[c][i] for c in cell_cols)
        out[cell] = {k: n[k][i].item() for k in ("count", "missing", "zero", "min", "max")}
        out[cell].update(sum=Fraction(0), keys=Counter())
    t = s.numeric_sums
    for i in range(len(t["feature"])):
        if t["feature"][i] == feature:
            m, e = int(t["mantissa"][i]), int(t["exponent"][i])
            out[tuple(t[c][i] for c in cell_cols)]["sum"] += Fraction(m) * Fraction(2) ** e
    k = s.numeric_keys
    for i in range(len(k["feature"])):
        if k["feature"][i] == feature:
            cell = tuple(k[c][i] for c in cell_cols)
            out[cell]["keys"][(int(k["sign"][i]), int(k["key"][i]))] += int(k["count"][i])
    return out


def _same(got: dict[Any, dict[str, Any]], want: dict[Any, dict[str, Any]]) -> None:
    assert set(got) == set(want)
    for cell, w in want.items():
        g = got[cell]
        for k in ("min", "max"):
            assert repr(g[k]) == repr(w[k]), (cell, k)  # repr: nan == nan, -0.0 != 0.0
        assert {k: v for k, v in g.items() if k not in ("min", "max")} == {
            k: v for k, v in w.items() if k not in ("min", "max")
        }, cell


def _table(rows: list[dict[str, Any]], big: list[int | None]) -> pa.Table:
    table = arrow_table(rows, "map")
    return table.append_column("big", pa.array(big, pa.int64()))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(value, st.one_of(st.none(), st.integers(-(2**62), 2**62))), max_size=80))
def test_pass_numeric_matches_sketch(values: list[tuple[float | None, int | None]]) -> None:
    """Floats of every kind (subnormals, -0.0, the extremes, bucket edges) and int64s past
    2**53, over several cells: the pass' tables are NumericSketch's and exact sums."""
    rows = make_rows(len(values), seed=len(values))
    for r, (x, _) in zip(rows, values, strict=True):
        r["age"] = x
    big = [b for _, b in values]
    mapping = mapping_for("map")
    mapping = dataclasses.replace(mapping, features={**mapping.features, "big": "big"})
    plan = make_plan(mapping, numeric=["age", "big"])
    with DuckDBSource(table=_table(rows, big)) as src:
        s = src.summarize(plan)
    if not values:
        return
    assert np.isnan(s.numeric_keys["lo"]).all()  # the pass' tables, not the SQL's
    cells = ["bucket", "seg_0"]
    at = {r["id"]: (int(r["ts"].timestamp()) // 3600, r["country"]) for r in rows}
    order = [at[r["id"]] for r in rows]
    _same(_by_cell(s, "age", cells), _oracle(order, [r["age"] for r in rows]))
    big_f = [None if b is None else float(b) for b in big]  # DOUBLE, as the SQL casts
    _same(_by_cell(s, "big", cells), _oracle(order, big_f))


def test_pass_numeric_equals_sql_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parquet files read by pyarrow, small batches and chunks (a cell's rows spread
    over chunks, the sums' table grown): the SQL engine's numeric tables."""
    import labelwatch.sources._duckdb_pass as engine

    monkeypatch.setattr(engine, "_BATCH_ROWS", 61)
    monkeypatch.setattr(engine, "_CHUNK_ROWS", 200)
    rows = make_rows(6000, seed=11)
    rng = np.random.default_rng(3)
    for r in rows:
        if r["age"] is not None:
            r["age"] = float(rng.choice([-1, 1]) * 10 ** rng.uniform(-30, 30))
    table = arrow_table(rows, "map")
    paths = []
    for k in range(3):
        path = tmp_path / f"part-{k}.parquet"
        pq.write_table(table.slice(2000 * k, 2000), path, row_group_size=97)
        paths.append(str(path))
    plan = make_plan(mapping_for("map"))
    with DuckDBSource(paths, engine="sql") as a, DuckDBSource(paths) as b:
        want, got = a.summarize(plan), b.summarize(plan)
    assert np.isnan(got.numeric_keys["lo"]).all()
    assert len(got.numeric_sums["exponent"]) > 3 << 10  # the sums' first table grew
    _same_numeric(want, got)


def test_pool_too_large_falls_back_to_sql(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys' windows past the pool's limit: the SQL's tables (magnitudes kept)."""
    monkeypatch.setattr(numeric_mod, "_POOL_BYTES", 8 * 200)
    rows = make_rows(400, seed=4)
    for i, r in enumerate(rows):
        r["age"] = 10.0 ** ((i % 50) * 5 - 120)
    plan = make_plan(mapping_for("map"))
    table = arrow_table(rows, "map")
    with DuckDBSource(table=table, engine="sql") as a, DuckDBSource(table=table) as b:
        want, got = a.summarize(plan), b.summarize(plan)
    assert not np.isnan(got.numeric_keys["lo"]).any()
    _same_numeric(want, got)
    for c in want.numeric_keys:
        if c != "cell":
            assert sorted(map(repr, want.numeric_keys[c].tolist())) == sorted(
                map(repr, got.numeric_keys[c].tolist())
            )


def test_more_rows_than_the_windows_count_falls_back_to_sql(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pass of more rows than the windows' int32 counts hold (here made 100): the
    SQL's tables (magnitudes kept)."""
    monkeypatch.setattr(numeric_mod, "_MAX_ROWS", 100)
    plan = make_plan(mapping_for("map"))
    for n, pass_tables in ((100, True), (101, False)):
        table = arrow_table(make_rows(n, seed=6), "map")
        with DuckDBSource(table=table, engine="sql") as a, DuckDBSource(table=table) as b:
            want, got = a.summarize(plan), b.summarize(plan)
        assert np.isnan(got.numeric_keys["lo"]).all() == pass_tables
        _same_numeric(want, got)


def _grouped(ids: np.ndarray) -> np.ndarray:
    return np.argsort(ids, kind="stable").astype(np.int64)


def test_windows_grow_and_move() -> None:
    """Many cells whose keys arrive far apart, over several calls: every window grows on
    both sides and the pool is compacted, the sums' table grows (from 4,096 codes to
    tens of thousands), both in the middle of a row of two features; the counts stay
    NumPy's keys', and each cell's counts, extremes and exact sums the oracle's (each
    row counted once, though the loop leaves and takes up rows to grow)."""
    rng = np.random.default_rng(9)
    acc = NumericAcc(["x", "y"], LOG_GAMMA)
    want: Counter[tuple[int, int, int, int]] = Counter()
    n_cells = 300
    all_ids: list[int] = []
    all_xs: list[list[float | None]] = [[], []]
    for _ in range(6):
        n = 5000
        ids = rng.integers(0, n_cells, n).astype(np.int32)
        xs = rng.choice([-1.0, 1.0], (n, 2)) * 10.0 ** rng.uniform(-8, 8, (n, 2))
        valid = (rng.random((n, 2)) < 0.9).astype(np.uint8)
        acc.cells(n_cells)
        acc.add(_grouped(ids), 0, n, ids, xs, acc.keys_of(xs), valid)
        all_ids += ids.tolist()
        for f in range(2):
            all_xs[f] += [
                float(x) if v else None for x, v in zip(xs[:, f], valid[:, f], strict=True)
            ]
        for i in range(n):
            for f in range(2):
                if valid[i, f]:
                    x = float(xs[i, f])
                    key = math.ceil(float(np.log(np.array([abs(x)]))[0]) / LOG_GAMMA)
                    want[(int(ids[i]), f, 1 if x > 0 else -1, key)] += 1
    assert acc.usable
    assert len(acc.scode) >= 1 << 14  # the sums' table grew
    numeric, keys, sums = acc.tables(n_cells, lambda ids: {"c": np.asarray(ids)})
    tables = dataclasses.make_dataclass("T", ["numeric", "numeric_keys", "numeric_sums"])
    for f, name in enumerate(["x", "y"]):
        got_f = _by_cell(tables(numeric, keys, sums), name, ["c"])  # type: ignore[arg-type]
        want_f = _oracle([(c,) for c in all_ids], all_xs[f])
        _same(got_f, want_f)
    got = Counter(
        {
            (int(c), ["x", "y"].index(f), int(s), int(k)): int(n)
            for c, f, s, k, n in zip(
                keys["c"], keys["feature"], keys["sign"], keys["key"], keys["count"], strict=True
            )
        }
    )
    assert got == want


def test_not_finite_or_too_large_is_not_usable() -> None:
    ids = np.zeros(3, dtype=np.int32)
    valid = np.ones((3, 1), dtype=np.uint8)
    for xs, limit in (
        (np.array([[1.0], [np.inf], [2.0]]), None),
        (np.array([[1e-300], [1.0], [1e300]]), 10),
    ):
        acc = NumericAcc(["x"], LOG_GAMMA)
        if limit is not None:
            acc.limit = limit
        acc.cells(1)
        acc.add(np.arange(3), 0, 3, ids, xs, acc.keys_of(xs), valid)
        assert not acc.usable


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(allow_nan=False, width=64)), max_size=40),
    st.integers(0, 40),
    st.sampled_from([pa.float64(), pa.float32(), pa.int64()]),
)
def test_head_reads_floats_from_buffers(values: list[float | None], skip: int, kind: Any) -> None:
    """The pass' numeric columns read from their buffers (sliced, with NULLs; other
    types as pyarrow converts them): pyarrow's ``to_numpy`` and validity."""
    from labelwatch.sources._duckdb_pass import _floats

    if kind == pa.int64():
        values = [None if x is None else int(max(-1e15, min(1e15, x))) for x in values]
    elif kind == pa.float32():
        values = [
            None if x is None else float(np.float32(max(-1e30, min(1e30, x)))) for x in values
        ]
    column = pa.array(values, kind).slice(min(skip, len(values)))
    out = np.full(len(column), 7.0)
    valid = np.ones(len(column), dtype=np.uint8)
    _floats(column, out, valid)
    want = column.to_numpy(zero_copy_only=False).astype(np.float64)
    assert valid.tolist() == [int(x is not None) for x in column.to_pylist()]
    np.testing.assert_array_equal(out, want)  # NaN where NULL, as pyarrow gives them


def test_pass_imports_no_pandas(tmp_path: Path) -> None:
    """A pass over Parquet files with a numeric feature (its tables the pass': NaN ``lo``)
    imports no pandas (0.2 s at the start of every pass, while the reader has one core
    to itself)."""
    import subprocess
    import sys

    path = tmp_path / "part-0.parquet"
    pq.write_table(arrow_table(make_rows(300, seed=5), "map"), path)
    script = (
        "import sys\n"
        "from tests.sources.test_duckdb_engine import make_plan, mapping_for\n"
        "from labelwatch.sources._duckdb import DuckDBSource\n"
        f"with DuckDBSource([{str(path)!r}]) as src:\n"
        "    s = src.summarize(make_plan(mapping_for('map')))\n"
        "assert len(s.numeric['count']) and all(c != c for c in s.numeric_keys['lo'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pandas'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False,
        cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
