"""The aggregates of the Spark engine (``_spark``): the group-bys behind
``SparkSource.summarize`` (scores, samples, pairs, numeric and categorical tables), the
column expressions they are made of (exact score bins, label bit masks, higher-order
function bodies), and their results collected through Arrow and turned into ``Table``
form on the driver (label pairs counted there from the distinct masks).

- A score's bin is ``np.searchsorted(edges, s, "left")`` exactly: a power-of-two grid of
  ``cells`` cells over [0, 1] (``s * cells`` is then exact, ``_cell_lookup``'s trick), a
  look-up of the edges below the score's cell, plus a comparison with each of the (at
  most ``steps``) edges in the cell.
- A numeric key is ``ceil(ln|x| / log_gamma)`` (``StrictMath.log``; the ingest
  re-keys any group whose extremes disagree with NumPy's formula). Sums are exact:
  ``x = m * 2**(e - 52)`` with ``2**e <= |x| < 2**(e + 1)`` (``e`` from ``log2`` corrected
  with exact powers of two, ``m`` an integer ``< 2**53``), ``m`` summed per exponent in
  two 27-bit halves as longs (exact up to 2**36 rows), joined as Python ints.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from labelwatch.metrics._numeric import _TINY
from labelwatch.sources._plan import Discovery, Plan, Table

if TYPE_CHECKING:
    from labelwatch.sources._spark import _Prepared

MAX_PAIR_LABELS = 256  # labelwatch.monitor._pairs.MAX_PAIR_LABELS (not imported: no SQL deps)
_SPLIT = 27
_LOW = (1 << _SPLIT) - 1
_MAX_CELLS = 1 << 12
# Spark's integer types (here: booleans as 0 / 1; ``_spark`` checks the source's columns)
_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)


def _cells_for(edges: list[float]) -> tuple[int, list[int], int, list[float]]:
    """``(cells, lut, steps, padded edges)`` of the exact bin look-up (module docstring)."""
    e = np.asarray(edges, dtype=np.float64)
    best: tuple[int, list[int], int] | None = None
    cells = 1 << max(4, len(e).bit_length() + 1)
    while True:
        per = np.bincount(np.floor(e * cells).astype(np.int64), minlength=cells + 1)
        steps = int(per.max())
        if best is None or steps < best[2]:
            lut = np.concatenate([[0], np.cumsum(per)[:-1]]).astype(np.int64)
            best = (cells, lut.tolist(), steps)
        if steps <= 1 or cells >= _MAX_CELLS:
            break
        cells *= 2
    return best[0], best[1], best[2], e.tolist() + [math.inf] * max(best[2], 1)


def _binner(edges: list[float]) -> Callable[[Column], Column]:
    """Column -> the bin (int) of a score in [0, 1], ``np.searchsorted(edges, s)``."""
    cells, lut, steps, padded = _cells_for(edges)
    lut_lit, edge_lit = F.lit(lut), F.lit(padded)

    def bin_of(s: Column) -> Column:
        base = F.element_at(lut_lit, (s * float(cells)).cast("int") + 1)
        out = base
        for j in range(steps):
            out = out + (F.element_at(edge_lit, base + (j + 1)) < s).cast("int")
        return out

    return bin_of


# ------------------------------------------------------------------ aggregates
def _kept(plan: Plan, prep: _Prepared, found: Discovery | None) -> dict[str, list[str] | None]:
    """Per field, the labels to keep, or None when no label needs dropping."""
    out: dict[str, list[str] | None] = {}
    for f in plan.fields:
        wanted = None if plan.labels is None else plan.labels.get(f, [])
        if wanted is not None and found is not None:
            seen = {x for x, _ in found.prediction_labels.get(f, [])}
            seen |= {x for x, _ in found.actual_labels.get(f, [])}
            if seen <= set(wanted):
                wanted = None
        out[f] = wanted
    return out


def _dict_columns(plan: Plan, prep: _Prepared, kept: dict[str, list[str] | None]) -> list[Column]:
    """Per field ``i``: ``__hp{i}``, ``__p{i}``, ``__ha{i}``, ``__a{i}`` with the labels
    kept (absent sides: False and an empty map)."""
    empty = F.create_map().cast("map<string,double>")
    cols = []
    for i, f in enumerate(plan.fields):
        for side in "pa":
            tag = f"{side}{i}"
            if not any(s.index == i and s.actual == (side == "a") for s in prep.sides):
                cols += [F.lit(False).alias(f"__h{tag}"), empty.alias(f"__{tag}")]
                continue
            entries = F.col(f"__{tag}")
            labels = kept[f]
            if labels is not None:
                entries = _only(entries, labels) if labels else empty
            cols += [F.col(f"__h{tag}"), entries.alias(f"__{tag}")]
    return cols


def _threshold(plan: Plan, f: str) -> Callable[[Column], Column]:
    default = float(plan.default_threshold.get(f, 0.5))
    special = {k: float(v) for k, v in plan.thresholds.get(f, {}).items() if v != default}
    if not special:
        return lambda label: F.lit(default)
    table = F.create_map(*[F.lit(x) for kv in special.items() for x in kv])
    return lambda label: F.coalesce(F.try_element_at(table, label), F.lit(default))


def _collect(df: DataFrame, keys: list[str], rename: dict[str, str]) -> Table:
    """An aggregate as a ``Table`` (columns renamed), through Arrow: numbers as NumPy
    arrays (NaN for null floats), anything else as Python objects. ``keys``: the
    group-by columns (rows come in no particular order)."""
    table = df.toArrow()
    out = {rename.get(n, n): _numpy(table.column(n)) for n in table.column_names}
    for name in rename.values():  # raw segment values: Python objects
        if name.startswith("seg_") and name in out and out[name].dtype != object:
            out[name] = _array(out[name].tolist())
    return out


def _rename(plan: Plan) -> dict[str, str]:
    return {"__b": "bucket", **{f"__s{k}": f"seg_{k}" for k in range(len(plan.segments))}}


def _fields(table: Table, plan: Plan) -> Table:
    if "field" in table:
        table["field"] = _array(plan.fields)[table["field"].astype(np.int64)]
    return table


def _scores(plan: Plan, prep: _Prepared, base: DataFrame, cells: list[str]) -> Table:
    parts = []
    for i, f in enumerate(plan.fields):
        bin_of = _binner(plan.edges[f])
        pm, am, has_a = F.col(f"__p{i}"), F.col(f"__a{i}"), F.col(f"__ha{i}")

        parts.append(_score_entries(i, pm, am, has_a, bin_of))
    keys = [*cells, "field", "label", "outcome", "bin"]
    e = base.select(*cells, F.explode(F.concat(*parts)).alias("e")).select(*cells, "e.*")
    table = _collect(e.groupBy(*keys).agg(F.count(F.lit(1)).alias("count")), keys, _rename(plan))
    return _fields(_typed(table, _SCORES), plan)


def _samples(plan: Plan, prep: _Prepared, base: DataFrame, cells: list[str]) -> Table:
    parts = []
    for i, f in enumerate(plan.fields):
        thr = _threshold(plan, f)
        pm, am = F.col(f"__p{i}"), F.col(f"__a{i}")
        has_p, has_a = F.col(f"__hp{i}"), F.col(f"__ha{i}")
        n_pred = F.size(_above(pm, thr))
        n_true = F.size(_true(am))
        tp = F.size(_above(pm, thr, am))
        parts.append(
            F.struct(
                (has_p | has_a).alias("keep"),
                F.lit(i).alias("field"),
                has_a.alias("labeled"),
                n_pred.alias("n_pred"),
                n_true.alias("n_true"),
                tp.alias("tp"),
            )
        )
    keys = [*cells, "field", "labeled", "n_pred", "n_true", "tp"]
    e = (
        base.select(*cells, F.explode(F.array(*parts)).alias("e"))
        .where("e.keep")
        .select(*cells, "e.field", "e.labeled", "e.n_pred", "e.n_true", "e.tp")
    )
    table = _collect(e.groupBy(*keys).agg(F.count(F.lit(1)).alias("count")), keys, _rename(plan))
    return _fields(_typed(table, _SAMPLES), plan)


def _pairs(
    plan: Plan,
    prep: _Prepared,
    base: DataFrame,
    cells: list[str],
    kept: dict[str, list[str] | None],
    found: Discovery | None,
) -> Table:
    """Label pairs per cell: each row's predicted and true label sets as bit masks
    (64 labels a word), the rows grouped by cell and masks on the executors, and the
    pairs of each distinct mask counted here (a product of 0/1 matrices per cell)
    instead of every pair of every row exploded into a row."""
    tables = []
    for i, f in enumerate(plan.fields):
        if plan.labels is not None:
            names = list(plan.labels.get(f, []))
        else:
            assert found is not None
            names = list(
                dict.fromkeys(
                    [x for x, _ in found.prediction_labels.get(f, [])]
                    + [x for x, _ in found.actual_labels.get(f, [])]
                )
            )
        if len(names) > MAX_PAIR_LABELS or not names:
            continue
        thr = _threshold(plan, f)
        pm, am = F.col(f"__p{i}"), F.col(f"__a{i}")
        pred = F.transform(_above(pm, thr), _key)
        true = F.map_keys(F.map_filter(am, _is_one))
        words = (len(names) + 63) // 64
        masks = [
            _mask(labels, names, w).alias(f"__m{side}{w}")
            for side, labels in (("p", pred), ("a", true))
            for w in range(words)
        ]
        keys = [*cells, *[f"__m{side}{w}" for side in "pa" for w in range(words)]]
        grouped = base.select(*cells, *masks).groupBy(*keys).agg(F.count(F.lit(1)).alias("n"))
        got = _collect(grouped, keys, _rename(plan))
        tables.append(_pair_table(got, names, words, i, [_rename(plan)[c] for c in cells]))
    if not tables:
        return _empty(plan, ["field", "label_a", "label_b", "predicted", "actual"])
    table = {c: np.concatenate([t[c] for t in tables]) for c in tables[0]}
    return _fields(_typed(table, _PAIRS), plan)


def _present(plan: Plan, prep: _Prepared, cells: list[str]) -> DataFrame:
    """One row per present numeric value: cells, ``j`` (feature index), ``x``."""
    values = F.array(
        *[
            F.struct(F.lit(j).alias("j"), (F.col(f"__n{j}") + 0.0).alias("x"))
            for j in range(len(plan.numeric))
        ]
    )
    present = F.filter(values, lambda s: s["x"].isNotNull() & ~F.isnan(s["x"]))
    return prep.base.select(*cells, F.explode(present).alias("e")).select(*cells, "e.*")


def _numeric(plan: Plan, prep: _Prepared, cells: list[str]) -> dict[str, Table]:
    """``numeric``, ``numeric_keys``, ``numeric_sums`` and ``rows``."""
    rename = _rename(plan)
    aggs = [F.count(F.lit(1)).alias("rows")]
    for j in range(len(plan.numeric)):
        x = F.col(f"__n{j}")
        present = x.isNotNull() & ~F.isnan(x)
        aggs += [
            F.count_if(~present).alias(f"missing{j}"),
            F.count_if(present).alias(f"count{j}"),
            F.count_if(present & (F.abs(x) < _TINY)).alias(f"zero{j}"),
            F.min(F.when(present, x + 0.0)).alias(f"min{j}"),
            F.max(F.when(present, x + 0.0)).alias(f"max{j}"),
        ]
    per_cell = _collect(prep.base.groupBy(*cells).agg(*aggs), cells, rename)
    cell_names = list(rename.values())
    n_cells = len(per_cell["bucket"])
    rows: Table = {c: per_cell[c] for c in cell_names}
    rows["count"] = per_cell["rows"].astype(np.int64)
    numeric: Table = {c: [] for c in [*cell_names, "feature"]}  # type: ignore[misc]
    k = len(plan.numeric)
    for c in cell_names:
        numeric[c] = np.repeat(per_cell[c], k)
    numeric["feature"] = _array(plan.numeric * n_cells)
    for name in ("missing", "count", "zero"):
        numeric[name] = _stack(per_cell, name, k, np.int64)
    for name in ("min", "max"):
        numeric[name] = _stack(per_cell, name, k, np.float64)
    rows = _typed(rows, {"bucket": np.int64})
    numeric = _typed(numeric, {"bucket": np.int64})
    if not plan.numeric:
        return {
            "numeric": _empty(plan, ["feature", "missing", "count", "zero", "min", "max"]),
            "numeric_keys": _empty(plan, ["feature", "sign", "key", "count", "lo", "hi"]),
            "numeric_sums": _empty(plan, ["feature", "exponent", "mantissa"]),
            "rows": rows,
        }
    values = _present(plan, prep, cells)
    mag = F.abs(F.col("x"))
    keyed = values.where(mag >= _TINY).select(
        *cells,
        "j",
        F.when(F.col("x") > 0, 1).otherwise(-1).alias("sign"),
        F.ceil(F.log(mag) / F.lit(plan.log_gamma)).alias("key"),
        mag.alias("m"),
    )
    kk = [*cells, "j", "sign", "key"]
    keys = _collect(
        keyed.groupBy(*kk).agg(
            F.count(F.lit(1)).alias("count"), F.min("m").alias("lo"), F.max("m").alias("hi")
        ),
        kk,
        rename,
    )
    keys = _features(_typed(keys, _KEYS), plan.numeric)
    sums = _collect(_sums(values, cells), [*cells, "j", "exponent"], rename)
    hi = sums.pop("hi").tolist()
    lo = sums.pop("lo").tolist()
    sums["mantissa"] = _array(
        [(int(h) << _SPLIT) + int(low) for h, low in zip(hi, lo, strict=True)]
    )
    sums = _features(_typed(sums, {"bucket": np.int64, "exponent": np.int64}), plan.numeric)
    return {"numeric": numeric, "numeric_keys": keys, "numeric_sums": sums, "rows": rows}


def _sums(values: DataFrame, cells: list[str]) -> DataFrame:
    """Σ mantissa per (cell, feature, exponent) in two 27-bit halves (longs)."""
    x = F.col("x")
    a = F.abs(x)
    # NumPy's frexp: 0.0 = 0 * 2**-53 (kept, as the SDK's sums list it)
    e0 = F.when(x == 0.0, F.lit(-1).cast("long")).otherwise(F.floor(F.log2(a)))
    step = values.select(*cells, "j", "x", e0.alias("e0"))
    e0c = F.col("e0")
    two = F.lit(2.0)
    e = F.when(x == 0.0, e0c).otherwise(
        e0c - (F.pow(two, e0c) > a).cast("long") + (F.pow(two, e0c + 1) <= a).cast("long")
    )
    step = step.select(*cells, "j", "x", e.alias("e"))
    shift = F.lit(52) - F.col("e")
    h1 = F.shiftright(shift, 1)
    h2 = shift - h1
    mantissa = (x * F.pow(two, h1) * F.pow(two, h2)).cast("long")
    step = step.select(*cells, "j", (F.col("e") - 52).alias("exponent"), mantissa.alias("m"))
    return step.groupBy(*cells, "j", "exponent").agg(
        F.sum(F.shiftright(F.col("m"), _SPLIT)).alias("hi"),
        F.sum(F.col("m").bitwiseAND(_LOW)).alias("lo"),
    )


def _categorical(plan: Plan, prep: _Prepared, cells: list[str]) -> Table:
    columns = ["feature", "category", "count"]
    if not plan.categorical:
        return _empty(plan, columns)
    parts = []
    for j, feat in enumerate(plan.categorical):
        dtype = prep.categorical_types[feat]
        x = F.col(f"__c{j}")
        if isinstance(dtype, T.FloatType | T.DoubleType):
            d = x.cast("double")
            text = F.lit(None).cast("string")
            number = F.when(~F.isnan(d), d)
        else:
            text = (
                F.when(x, "true").when(~x, "false")
                if isinstance(dtype, T.BooleanType)
                else F.when(x == 1, "true").when(x == 0, "false")
                if feat in plan.booleans and isinstance(dtype, _INTEGRAL)
                else x.cast("string")
            )
            number = F.lit(None).cast("double")
        parts.append(F.struct(F.lit(j).alias("j"), text.alias("text"), number.alias("number")))
    keys = [*cells, "j", "text", "number"]
    e = prep.base.select(*cells, F.explode(F.array(*parts)).alias("e")).select(*cells, "e.*")
    got = _collect(e.groupBy(*keys).agg(F.count(F.lit(1)).alias("count")), keys, _rename(plan))
    cell_names = list(_rename(plan).values())
    merged: dict[tuple[Any, ...], int] = {}
    cell_values = [got[c].tolist() for c in cell_names]
    for n, (j, text, number, count) in enumerate(
        zip(got["j"].tolist(), got["text"].tolist(), got["number"].tolist(),
            got["count"].tolist(), strict=True)
    ):  # fmt: skip
        category = text if text is not None else None if number != number else str(number)
        key = (*[v[n] for v in cell_values], plan.categorical[j], category)
        merged[key] = merged.get(key, 0) + int(count)
    out: Table = {}
    items = list(merged.items())
    for idx, c in enumerate([*cell_names, "feature", "category"]):
        out[c] = _array([k[idx] for k, _ in items])
    out["count"] = np.array([v for _, v in items], dtype=np.int64)
    return _typed(out, {"bucket": np.int64})


# ---------------------------------------------- higher-order function bodies
def _is_one(k: Column, v: Column) -> Column:
    return v == 1.0


def _key(e: Column) -> Column:
    return e["key"]


def _only(entries: Column, labels: list[str]) -> Column:
    """The entries of a map whose key is among ``labels``."""
    keep = F.lit(labels).cast("array<string>")

    def kept(k: Column, v: Column) -> Column:
        return F.array_contains(keep, k)

    return F.map_filter(entries, kept)


def _true(am: Column) -> Column:
    return F.filter(F.map_values(am), lambda v: v == 1.0)


def _above(pm: Column, thr: Callable[[Column], Column], am: Column | None = None) -> Column:
    """The entries of ``pm`` above their threshold (and, given ``am``, true there)."""

    def chosen(e: Column) -> Column:
        out = e["value"] > thr(e["key"])
        return out if am is None else out & (F.try_element_at(am, e["key"]) == 1.0)

    return F.filter(F.map_entries(pm), chosen)


def _score_entries(
    i: int, pm: Column, am: Column, has_a: Column, bin_of: Callable[[Column], Column]
) -> Column:
    """``(field, label, outcome, bin)`` of each label counted in a row's scores."""

    def predicted(e: Column) -> Column:
        hit = F.when(F.try_element_at(am, e["key"]) == 1.0, 1).otherwise(0)
        return F.struct(
            F.lit(i).alias("field"),
            e["key"].alias("label"),
            F.when(has_a, hit).otherwise(2).alias("outcome"),
            bin_of(e["value"]).alias("bin"),
        )

    def absent(e: Column) -> Column:
        return ~F.map_contains_key(pm, e["key"])

    def actual_only(e: Column) -> Column:
        return F.struct(
            F.lit(i).alias("field"),
            e["key"].alias("label"),
            e["value"].cast("int").alias("outcome"),
            F.lit(0).alias("bin"),
        )

    return F.concat(
        F.transform(F.map_entries(pm), predicted),
        F.transform(F.filter(F.map_entries(am), absent), actual_only),
    )


def _mask(labels: Column, names: list[str], word: int) -> Column:
    """Bits ``64 * word`` .. ``64 * word + 63`` of a label set (bit j: ``names[j]``)."""
    out = F.lit(0).cast("long")
    for j in range(64 * word, min(len(names), 64 * word + 64)):
        bit = 1 << (j - 64 * word)
        signed = bit - (1 << 64) if bit >= 1 << 63 else bit
        hit = F.when(F.array_contains(labels, names[j]), F.lit(signed).cast("long"))
        out = out.bitwiseOR(hit.otherwise(F.lit(0).cast("long")))
    return out


def _bits(words: list[np.ndarray[Any, Any]], n_labels: int) -> np.ndarray[Any, Any]:
    """The 0/1 matrix (rows, labels) of bit-mask words (``words[w]``: bits 64w...)."""
    cols = [
        np.unpackbits(np.ascontiguousarray(w, dtype="<i8").view(np.uint8).reshape(-1, 8),
                      axis=1, bitorder="little")
        for w in words
    ]  # fmt: skip
    return np.concatenate(cols, axis=1)[:, :n_labels].astype(np.float64)


def _pair_table(
    got: Table, names: list[str], words: int, field_index: int, cells: list[str]
) -> Table:
    """The pairs rows (``a <= b`` as text, predicted, actual) of each cell of ``got``:
    rows of distinct (cell, predicted mask, true mask) with their count ``n``."""
    n = got["n"].astype(np.float64)
    pred_words = [got[f"__mp{w}"] for w in range(words)]
    true_words = [got[f"__ma{w}"] for w in range(words)]
    key = np.zeros(len(n), dtype=np.int64)
    for c in cells:
        column = got[c]
        if c == "bucket":
            _, codes = np.unique(column.astype(np.int64), return_inverse=True)
        else:
            seen: dict[tuple[type, Any], int] = {}
            codes = np.fromiter(
                (seen.setdefault((type(x), x), len(seen)) for x in column.tolist()),
                np.int64,
                len(column),
            )
        key = key * (int(codes.max()) + 1 if len(codes) else 1) + codes.reshape(-1)
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1]])
    ends = np.r_[starts[1:], len(order)]
    text = np.array(names, dtype=object)
    swap = np.array([[names[a] > names[b] for b in range(len(names))] for a in range(len(names))])
    upper = np.triu(np.ones((len(names), len(names)), dtype=bool))
    parts: dict[str, list[Any]] = {c: [] for c in [*cells, "label_a", "label_b"]}
    counts: list[np.ndarray[Any, Any]] = []
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        rows = order[lo:hi]
        w = n[rows, None]
        pred = _bits([x[rows] for x in pred_words], len(names))
        true = _bits([x[rows] for x in true_words], len(names))
        both = np.stack([(pred * w).T @ pred, (true * w).T @ true])
        a, b = np.nonzero(upper & (both.any(axis=0)))
        first, second = np.where(swap[a, b], b, a), np.where(swap[a, b], a, b)
        for c in cells:
            parts[c].append(np.repeat(got[c][rows[:1]], len(a)))
        parts["label_a"].append(text[first])
        parts["label_b"].append(text[second])
        counts.append(both[:, a, b])
    columns = {c: np.concatenate(v) if v else _array([]) for c, v in parts.items()}
    joined = np.concatenate(counts, axis=1) if counts else np.zeros((2, 0))
    out: Table = {c: columns[c] for c in cells}
    out["field"] = np.full(len(joined[0]), field_index, dtype=np.int64)
    out["label_a"], out["label_b"] = columns["label_a"], columns["label_b"]
    out["predicted"] = np.rint(joined[0]).astype(np.int64)
    out["actual"] = np.rint(joined[1]).astype(np.int64)
    return out


# ------------------------------------------------------------------- helpers
_SCORES = {"bucket": np.int64, "outcome": np.int64, "bin": np.int64, "count": np.int64}
_SAMPLES = {
    "bucket": np.int64,
    "labeled": np.bool_,
    "n_pred": np.int64,
    "n_true": np.int64,
    "tp": np.int64,
    "count": np.int64,
}
_DICT_TABLES = {
    "scores": ("field", "label", "outcome", "bin", "count"),
    "samples": ("field", "labeled", "n_pred", "n_true", "tp", "count"),
    "pairs": ("field", "label_a", "label_b", "predicted", "actual"),
}
_PAIRS = {"bucket": np.int64, "predicted": np.int64, "actual": np.int64}
_KEYS = {
    "bucket": np.int64,
    "sign": np.int64,
    "key": np.int64,
    "count": np.int64,
    "lo": np.float64,
    "hi": np.float64,
}


def _array(values: list[Any] | Any) -> np.ndarray[Any, Any]:
    """A 1-D object array of Python values (never nested)."""
    values = list(values)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _numpy(column: pa.ChunkedArray) -> np.ndarray[Any, Any]:
    """An Arrow column as a NumPy array: numbers and booleans as such (null floats as
    NaN), other values as Python objects (through a dictionary: each distinct value is
    converted once)."""
    kind = column.type
    if pa.types.is_floating(kind):
        return np.asarray(pc.fill_null(column, math.nan).to_numpy(), dtype=np.float64)
    if (pa.types.is_integer(kind) or pa.types.is_boolean(kind)) and column.null_count == 0:
        return np.asarray(column.to_numpy())
    if not len(column):
        return _array([])
    encoded = pc.dictionary_encode(column).combine_chunks()
    values = _array([*encoded.dictionary.to_pylist(), None])
    index = pc.fill_null(encoded.indices, len(values) - 1).to_numpy()
    return np.asarray(values[index])


def _typed(table: Table, dtypes: dict[str, Any]) -> Table:
    out: Table = {}
    for name, values in table.items():
        dtype = dtypes.get(name)
        if dtype is np.float64:
            out[name] = np.asarray(
                [math.nan if v is None else v for v in values.tolist()]
                if values.dtype == object
                else values,
                dtype=np.float64,
            )
        elif dtype is not None:
            out[name] = np.asarray(values, dtype=dtype).reshape(-1)
        else:
            out[name] = values
    return out


def _stack(per_cell: Table, name: str, k: int, dtype: Any) -> np.ndarray[Any, Any]:
    """Per cell, then per feature: the column ``name{j}`` of each feature ``j``."""
    n = len(per_cell["bucket"])
    if not n or not k:
        return np.zeros(0, dtype=dtype)
    columns = []
    for j in range(k):
        columns.append(np.asarray(per_cell[f"{name}{j}"], dtype=dtype))
    return np.stack(columns, axis=1).reshape(-1)


def _features(table: Table, names: list[str]) -> Table:
    """The column ``j`` (a feature's index) as ``feature`` (its name), in its place."""
    out: Table = {}
    for c, values in table.items():
        if c == "j":
            out["feature"] = _array(names)[values.astype(np.int64)]
        else:
            out[c] = values
    return out


def _empty(plan: Plan, columns: list[str]) -> Table:
    cells = ["bucket", *[f"seg_{k}" for k in range(len(plan.segments))]]
    out: Table = {c: _array([]) for c in [*cells, *columns]}
    out["bucket"] = np.zeros(0, dtype=np.int64)
    return out
