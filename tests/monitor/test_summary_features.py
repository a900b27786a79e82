"""``_summary_features``: the column-wise feature deltas, pair deltas and sample sums equal
the row-at-a-time ones of ``tests/monitor/summary_oracle.py`` exactly (every field, dtype and bit), on oracle
summaries of SDK records and on a DuckDB source's summary."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelwatch.errors import InvalidInputError
from labelwatch.metrics import CategoricalCounts, NumericSketch
from labelwatch.monitor import Monitor
from labelwatch.monitor import _summaries as old
from labelwatch.monitor import _summary_features as new
from labelwatch.sources import Mapping, open_source
from labelwatch.sources._ingest import spec_of, summarize
from labelwatch.sources._plan import Summary
from tests.monitor import summary_oracle as slow
from tests.sources.sources_data import make_rows, oracle_summary, to_table

FEATURES = {
    "year": "numeric",
    "temp": "numeric",
    "ghost": "numeric",  # in the schema, never in the summary
    "country": "categorical",
    "tier": "categorical",
    "flag": "boolean",
    "ghost_cat": "string",
    "notes": "text",  # not summarized
}
SEGMENTS = ["country", "flag"]
TINY = float(np.finfo(np.float64).tiny)
TEMPS = [0.0, -0.0, 1.5, -1.5, -273.15, 1e-300, -1e-300, TINY, -TINY, 5e-324, -5e-324, 1e300,
         -1e300, 3.0, 2.0**-1022 / 3, 7.25]  # fmt: skip
TIERS = ["gold", "silver", "bronze", "None", "1", "true"]


# ------------------------------------------------------------------ comparing
def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Equal in type, value and bits: NaN equals NaN, -0.0 differs from 0.0, arrays
    equal in dtype, shape and bytes, dicts in key order, sketches in every field."""
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, (where, a.dtype, b.dtype)
        assert a.tobytes() == b.tobytes(), (where, a, b)
    elif isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        ), (where, a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b), (where, list(a)[:5], list(b)[:5])
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), (where, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, NumericSketch | CategoricalCounts):
        for name in type(a).__slots__:
            assert_same(getattr(a, name), getattr(b, name), f"{where}.{name}")
        assert a.to_bytes() == b.to_bytes(), where
        assert a == b, where
    else:
        assert a == b, (where, a, b)


def compare(summary: Summary, spec: Any, vocab: dict[str, int] | None = None) -> int:
    """Old and new on one summary (each on its own ``_Cells``, in ``write_summary``'s
    order: pairs and sample sums per field, then the features); returns the cells."""
    cells = {k: old._Cells(summary, list(summary.segments)) for k in ("old", "new")}
    fields = sorted(set(summary.pairs["field"].tolist()) | set(summary.samples["field"].tolist()))
    for f in fields:
        pairs = old._select(summary.pairs, summary.pairs["field"] == f)
        samples = old._select(summary.samples, summary.samples["field"] == f)
        assert_same(
            slow._sample_sums(cells["old"], samples), new.sample_sums(cells["new"], samples), f
        )
        labels = vocab or {
            x: 1000 - 7 * j for j, x in enumerate(sorted(summary.labels.get(f, [])))
        }  # ids in another order than the names'
        assert_same(
            slow._pair_deltas(cells["old"], labels, pairs),
            new.pair_deltas(cells["new"], labels, pairs),
            f,
        )
    want = slow._feature_deltas(cells["old"], spec, summary)
    got = new.feature_deltas(cells["new"], spec, summary)
    assert_same(want, got, "features")
    assert_same(cells["old"].targets, cells["new"].targets, "targets")
    assert cells["old"]._index == cells["new"]._index
    return len(want)


# ------------------------------------------------------------------- the data
@pytest.fixture(scope="module")
def version(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path_factory.mktemp('feat')}/m.db"
    monitor = Monitor(url)
    try:
        monitor.create_model_version(
            "m", "v1", features=FEATURES, predictions={"genres": "dict"}, segments=SEGMENTS
        )
        return monitor.get_version("m", "v1")
    finally:
        monitor.close()


def varied_rows(n: int, seed: int, hours: int = 72) -> list[dict[str, Any]]:
    """``make_rows`` plus a numeric feature of negatives, zeros, subnormals and extremes, a
    categorical one (texts like "None", "1", "true"), bool segments and missing values."""
    rng = np.random.default_rng(seed)
    rows = make_rows(n, seed=seed, hours=hours)
    for i, r in enumerate(rows):
        feats = r["features"]
        if i % 5:
            feats["temp"] = (
                TEMPS[int(rng.integers(len(TEMPS)))]
                if rng.random() < 0.5
                else float(rng.normal(0, 40))
            )
        if i % 4:
            feats["tier"] = TIERS[int(rng.integers(len(TIERS)))]
        if i % 9 == 0:
            feats.pop("year", None)
        feats["notes"] = f"note {i}"
    return rows


def oracle(rows: list[dict[str, Any]], version: dict[str, Any]) -> Summary:
    """The oracle summary of the rows, without the schema's ghost features and with an
    extra feature the schema lacks (both as a source may have them)."""
    features = {k: v for k, v in version["features"].items() if not k.startswith("ghost")}
    features["extra"] = "numeric"
    for r in rows:
        r["features"].setdefault("extra", 1.0)
    return oracle_summary(rows, {**version, "features": features})  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- tests
@pytest.mark.parametrize("seed", [0, 1])
def test_oracle_summaries_give_the_same_deltas(version: dict[str, Any], seed: int) -> None:
    summary = oracle(varied_rows(1_500, seed), version)
    assert len(summary.numeric_keys["key"]) > 100
    assert {x for x in summary.categorical["category"].tolist()} >= {None, "true", "None"}
    assert set(summary.samples["labeled"].tolist()) == {False, True}
    n = compare(summary, spec_of(version))
    assert n > 7 * 100 and n % 7 == 0  # every cell: the 7 summarized features


def test_one_hour_and_no_segment_value(version: dict[str, Any]) -> None:
    rows = varied_rows(200, seed=3, hours=1)
    for r in rows:
        r["features"].pop("country", None)  # every row without segment value
    compare(oracle(rows, version), spec_of(version))


def test_huge_and_int64_mantissas(version: dict[str, Any]) -> None:
    """Mantissas past int64 (a source may hand Python ints of any size) and as an int64
    column give the same exact sums."""
    summary = oracle(varied_rows(600, seed=4), version)
    spec = spec_of(version)
    sums = summary.numeric_sums
    big = copy.copy(summary)
    big.numeric_sums = {
        **sums,
        "mantissa": np.array([int(m) << 70 for m in sums["mantissa"]] + [None], object)[:-1],
        "exponent": sums["exponent"] - 70,
    }
    assert max(abs(int(m)) for m in big.numeric_sums["mantissa"]) > 1 << 100
    compare(big, spec)
    heavy = copy.copy(big)
    for bits in (40, 50):  # counts past 2**53, packed with their keys or not
        heavy.numeric_keys = {
            **summary.numeric_keys,
            "count": summary.numeric_keys["count"] << bits,
        }
        compare(heavy, spec)
    as_int64 = copy.copy(summary)
    as_int64.numeric_sums = {**sums, "mantissa": sums["mantissa"].astype(np.int64)}
    compare(as_int64, spec)
    a = new.feature_deltas(old._Cells(summary, SEGMENTS), spec, summary)
    b = new.feature_deltas(old._Cells(big, SEGMENTS), spec, big)
    assert_same(a, b)


def test_mixed_kinds_of_segment_values(version: dict[str, Any]) -> None:
    """True and 1 are other segment values (other combinations), as are None and "None"."""
    summary = oracle(varied_rows(500, seed=5), version)
    tables = ("numeric", "numeric_keys", "numeric_sums", "categorical", "rows", "samples", "pairs")
    for name in tables:
        table = getattr(summary, name)
        seg = table["seg_1"].copy()
        flip = np.arange(len(seg)) % 3 == 0
        seg[flip & (seg == True)] = 1  # noqa: E712 - the bool segment value, not truth
        seg[flip & np.array([x is None for x in seg])] = "None"
        table["seg_1"] = seg
    compare(summary, spec_of(version))


def test_no_segments_wide_hours_and_unicode_segment_columns(version: dict[str, Any]) -> None:
    rows = varied_rows(300, seed=10, hours=24 * 365 * 10)  # buckets far apart
    compare(oracle(rows, {**version, "segments": []}), spec_of(version))
    rows = varied_rows(300, seed=11)
    for r in rows:
        r["features"].setdefault("country", "XX")
        r["features"].setdefault("flag", False)
    summary = oracle(rows, version)
    for name in ("numeric_keys", "categorical"):  # NumPy text: np.str_ items, not str
        table = getattr(summary, name)
        table["seg_0"] = table["seg_0"].astype(str)
    compare(summary, spec_of(version))


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.integers(0, 500_000),
                st.one_of(st.none(), st.booleans(), st.integers(0, 2), st.sampled_from("xyz")),
                st.integers(0, 60),
            ),
            max_size=30,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_codes_are_cells_codes(tables: list[list[tuple[int, Any, int]]]) -> None:
    """``_Cells.codes`` numbers and registers combinations as the slow factorization."""
    summary = Summary(["a", "b"], *[{} for _ in range(8)])  # type: ignore[arg-type]
    mine, theirs = old._Cells(summary, ["a", "b"]), old._Cells(summary, ["a", "b"])
    for rows in tables:
        table = {
            "bucket": np.array([r[0] for r in rows], dtype=np.int64),
            "seg_0": np.array([r[1] for r in rows] + [None], dtype=object)[:-1],
            "seg_1": np.array([f"v{r[2]}" for r in rows] + [None], dtype=object)[:-1],
        }
        assert_same(slow.codes(theirs, table), mine.codes(table))
    assert_same(theirs.targets, mine.targets)
    assert theirs._index == mine._index


def test_vocabulary_ids_and_empty_tables(version: dict[str, Any]) -> None:
    summary = oracle(varied_rows(300, seed=6), version)
    labels = summary.labels["genres"]
    ids = np.random.default_rng(0).permutation(len(labels)) * 13 + 5
    compare(summary, spec_of(version), {x: int(i) for x, i in zip(labels, ids, strict=True)})
    zeros = summary.pairs["predicted"].copy()  # pairs counting nothing are left out
    zeros[::2] = 0
    summary.pairs = {**summary.pairs, "predicted": zeros, "actual": zeros * 0}
    compare(summary, spec_of(version))
    rows = varied_rows(100, seed=7)
    for r in rows:
        for f in ("year", "temp", "tier", "country", "flag"):
            r["features"].pop(f, None)
        r["features"]["extra"] = None
        r.pop("actuals", None)
    summary = oracle(rows, version)
    assert not len(summary.numeric_keys["key"])
    compare(summary, spec_of(version))
    cells = old._Cells(summary, SEGMENTS)
    empty = {k: v[:0] for k, v in summary.pairs.items()}
    assert new.pair_deltas(cells, {}, empty) == {}


def test_tables_without_the_schema_features(version: dict[str, Any]) -> None:
    summary = oracle(varied_rows(200, seed=12), version)
    only_extra = copy.copy(summary)  # numeric rows of a feature the schema lacks only
    for name in ("numeric", "numeric_keys", "numeric_sums"):
        table = getattr(summary, name)
        setattr(only_extra, name, old._select(table, table["feature"] == "extra"))
    compare(only_extra, spec_of(version))
    empty = copy.copy(summary)  # no numeric row, no sample, no pair at all
    for name in ("numeric", "numeric_keys", "numeric_sums", "samples", "pairs"):
        setattr(empty, name, {k: v[:0] for k, v in getattr(summary, name).items()})
    compare(empty, spec_of(version))
    assert new.sample_sums(old._Cells(summary, SEGMENTS), empty.samples) == {}
    odd = copy.copy(summary)  # keys of other signs than +1 and -1 are left out
    sign = summary.numeric_keys["sign"].copy()
    sign[::3] = 0
    odd.numeric_keys = {**summary.numeric_keys, "sign": sign}
    compare(odd, spec_of(version))
    odd.numeric_keys = {**summary.numeric_keys, "sign": sign * 0 + 2}
    compare(odd, spec_of(version))


def test_no_summarized_feature_and_bad_samples(version: dict[str, Any]) -> None:
    summary = oracle(varied_rows(100, seed=8), version)
    spec = spec_of(version)
    spec_none = dataclasses.replace(spec, features={"notes": "text"})
    assert new.feature_deltas(old._Cells(summary, SEGMENTS), spec_none, summary) == {}
    bad = {**summary.samples, "tp": summary.samples["n_pred"] + 1}
    for fn in (slow._sample_sums, new.sample_sums):
        with pytest.raises(InvalidInputError, match="tp"):
            fn(old._Cells(summary, SEGMENTS), bad)


def test_a_duckdb_summary_gives_the_same_deltas(version: dict[str, Any], tmp_path: Path) -> None:
    rows = varied_rows(3_000, seed=9)
    table = to_table(rows)
    for name in ("temp", "tier"):
        kind = pa.float64() if name == "temp" else pa.string()
        table = table.append_column(name, pa.array([r["features"].get(name) for r in rows], kind))
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path)
    mapping = Mapping(
        id="id",
        timestamp="timestamp",
        features={"year": "year", "temp": "temp", "country": "country", "tier": "tier",
                  "flag": "flag"},
        predictions={"genres": "genres"},
        actuals={"genres": "actual_genres"},
    )  # fmt: skip
    _, _, summary = summarize(open_source("duckdb", [str(path)]), version, mapping)
    assert "cell" in summary.pairs and summary.numeric_sums["mantissa"].dtype == object
    compare(summary, spec_of(version))


values = st.one_of(
    st.none(),
    st.sampled_from(TEMPS),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),  # hour
            st.sampled_from(["US", "FR", None]),
            st.sampled_from([True, False, None]),
            values,
            st.sampled_from([*TIERS, None]),
            st.dictionaries(st.sampled_from("abcde"), st.floats(0, 1), max_size=5),
            st.one_of(st.none(), st.dictionaries(st.sampled_from("abcde"), st.just(1.0))),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_random_rows_give_the_same_deltas(version: dict[str, Any], drawn: list[Any]) -> None:
    rows = []
    for i, (hour, country, flag, temp, tier, pred, act) in enumerate(drawn):
        feats = {"country": country, "flag": flag, "temp": temp, "tier": tier, "year": 1.0}
        rec: dict[str, Any] = {
            "id": f"p{i}",
            "timestamp": 1_767_225_600.0 + 3600 * hour,
            "features": {k: v for k, v in feats.items() if v is not None},
            "predictions": {"genres": pred},
        }
        if act is not None:
            rec["actuals"] = {"genres": act}
        rows.append(rec)
    compare(oracle(rows, version), spec_of(version), {x: 9 - j for j, x in enumerate("abcde")})


@pytest.mark.parametrize("shift", [56, 60])
def test_packed_sums_of_large_counts(shift: int) -> None:
    """Sums of counts near 2**shift, by running sums or (past int64) segment by segment."""
    targets = new._Targets([[("", "", 0), ("a", "x", 0)], [("", "", 0)], [("", "", 1)]])
    rng = np.random.default_rng(shift)
    combo = rng.integers(0, 3, 40)
    base = rng.integers(0, 2, 40)
    count = rng.integers(0, 1 << min(shift, 57), 40, dtype=np.int64)  # sums < 2**63
    distinct, sums = new._packed_sums(targets, combo, base.copy(), 2, count, shift)
    want: dict[int, int] = {}
    for c, b, n in zip(combo.tolist(), base.tolist(), count.tolist(), strict=True):
        for t in targets.flat[targets.offsets[c] : targets.offsets[c] + targets.lens[c]]:
            want[b + 2 * int(t)] = want.get(b + 2 * int(t), 0) + n
    assert distinct.tolist() == sorted(want)
    assert sums.tolist() == [want[k] for k in sorted(want)]
    rows, ids = targets.expand_slots(combo[:0])
    assert rows.shape == ids.shape == (0,)


def test_stable_order_of_many_codes() -> None:
    codes = np.random.default_rng(2).integers(0, 1 << 20, 5_000)
    for n_codes in (1 << 20, 1 << 16):
        got = new._stable_order(codes % n_codes, n_codes)
        assert_same(np.argsort(codes % n_codes, kind="stable"), got)


def test_codes_of_many_segments() -> None:
    """Combinations of many segments (more than the rows: found by sorting)."""
    rng = np.random.default_rng(1)
    names = ["s0", "s1", "s2"]
    summary = Summary(names, *[{} for _ in range(8)])  # type: ignore[arg-type]
    mine, theirs = old._Cells(summary, names), old._Cells(summary, names)
    for n in (300, 50, 300):
        table: dict[str, Any] = {"bucket": rng.integers(0, 1000, n)}
        for i in range(3):
            values = rng.integers(0, 200, n).tolist()
            table[f"seg_{i}"] = np.array([*values, None], dtype=object)[:-1]
        assert_same(slow.codes(theirs, table), mine.codes(table))
    assert_same(theirs.targets, mine.targets)
