"""The Apache Spark engine of ``labelwatch ingest --source``: ``SparkSource``.

The same aggregates as the DuckDB engine (see ``_plan`` for the contract), computed as
Spark SQL group-bys: no Python UDF runs on the rows, only the small aggregates are
collected (through Arrow) and turned into ``Table`` form on the driver.

- Rows are ordered by (file in sorted path order, the file split's start offset,
  ``monotonically_increasing_id``): within a split Spark reads rows in file order. Row
  numbers are only needed for errors (the rows before the first bad one are counted).
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

import glob
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from py4j.protocol import Py4JJavaError  # type: ignore[import-untyped]
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from labelwatch.errors import InvalidInputError
from labelwatch.metrics._features import _TINY, OTHER
from labelwatch.sources._plan import Discovery, Plan, Summary, Table

__all__ = ["SparkSource"]

MAX_PAIR_LABELS = 256  # labelwatch.monitor._pairs.MAX_PAIR_LABELS (not imported: no SQL deps)
_HOUR_US = 3_600_000_000
_SPLIT = 27
_LOW = (1 << _SPLIT) - 1
_MAX_CELLS = 1 << 12
_ARROW_EXT = (".arrow", ".arrows", ".ipc", ".feather")
_ARROW_HINT = "Parquet or CSV for the spark engine (use --engine duckdb for Arrow IPC)"
_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_NUMBER = (*_INTEGRAL, T.FloatType, T.DoubleType, T.DecimalType)
DRIVER_MEMORY = "LABELWATCH_SPARK_DRIVER_MEMORY"
"""The environment variable that sets local mode's JVM heap (default 4g: the aggregates
of 1M predictions over 3,600 hour cells did not fit in 1g)."""
_CATEGORY = (*_NUMBER, T.StringType, T.BooleanType, T.DateType, T.TimestampType)
_TIME = (T.TimestampType, T.TimestampNTZType, T.DateType)
# internal columns: file index, split start, id within the partition (together: row order)
_F, _BLK, _MONO = "__lw_file", "__lw_block", "__lw_mono"
_ORDER_COLS = (_F, _BLK, _MONO)


def _c(name: str) -> Column:
    """A source column by name (dots and odd characters quoted)."""
    return F.col("`" + name.replace("`", "``") + "`")


def _order() -> Column:
    return F.struct(*[F.col(c) for c in _ORDER_COLS])


def _expand(paths: str | list[str] | None) -> list[str]:
    """The files of ``paths`` (files, directories, globs), sorted."""
    if paths is None or (not isinstance(paths, str) and not paths):
        raise InvalidInputError("source", "one or more Parquet or CSV files", paths)
    files: list[str] = []
    for p in [paths] if isinstance(paths, str) else list(paths):
        if "://" in p:  # a remote URI: Spark lists it (globs included)
            files.append(p)
        elif glob.has_magic(p):
            matched = [m for m in glob.glob(p) if os.path.isfile(m)]
            if not matched:
                raise InvalidInputError("source", "a glob matching files", p)
            files += matched
        elif os.path.isdir(p):
            files += [
                os.path.join(p, n)
                for n in os.listdir(p)
                if not n.startswith((".", "_")) and os.path.isfile(os.path.join(p, n))
            ]
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise InvalidInputError("source", "an existing file, directory or glob", p)
    return sorted(set(files))


def _format_of(path: str, given: str | None) -> str:
    fmt = (given or "").lower().lstrip(".")
    name = path.lower().removesuffix(".gz")
    if fmt in ("arrow", "ipc", "feather") or (not fmt and name.endswith(_ARROW_EXT)):
        raise InvalidInputError("source", _ARROW_HINT, path)
    if not fmt:
        fmt = (
            "parquet"
            if name.endswith((".parquet", ".pq"))
            else "csv"
            if name.endswith((".csv", ".tsv"))
            else ""
        )
    if fmt not in ("parquet", "csv"):
        raise InvalidInputError("format", "parquet or csv (or a .parquet / .csv name)", path)
    return fmt


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


@dataclass
class _Side:
    """How one field's predictions (or actuals) are read."""

    name: str
    index: int
    actual: bool
    column: str | None = None
    kind: str = "map"  # "map", "struct" or "columns"
    columns: dict[str, str] = field(default_factory=dict)

    def where(self, label: str | None) -> str:
        """The source column an error names."""
        if self.kind == "columns" and label is not None:
            return self.columns[label]
        return self.column or ", ".join(self.columns.values())


@dataclass
class _Prepared:
    """A plan resolved against the source: the row frame and what to check."""

    base: DataFrame
    sides: list[_Side]
    checks: list[tuple[str, Column]]  # (name, bad-row flag)
    timestamp_kind: str | None
    numeric_types: dict[str, T.DataType]
    categorical_types: dict[str, T.DataType]


class SparkSource:
    """Parquet or CSV files summarized by Spark (``--engine spark``).

    ``paths``: files, directories or globs (format from the extension unless ``format``
    is given). ``spark``: a session to use; None starts (or reuses) a local one,
    ``local[2]`` with 1 GB, stopped by ``close`` only if this source started it.
    """

    def __init__(
        self,
        paths: str | list[str] | None = None,
        *,
        format: str | None = None,
        spark: SparkSession | None = None,
    ) -> None:
        for given in [paths] if isinstance(paths, str) else list(paths or []):
            if format is None and given.lower().removesuffix(".gz").endswith(_ARROW_EXT):
                raise InvalidInputError("source", _ARROW_HINT, given)
        self.files = _expand(paths)
        self.formats = [_format_of(p, format) for p in self.files]
        self._owned = False
        if spark is None:
            self._owned = SparkSession.getActiveSession() is None
            spark = (
                SparkSession.builder.master("local[2]")
                .appName("labelwatch")
                .config("spark.driver.memory", os.environ.get(DRIVER_MEMORY, "4g"))
                .config("spark.sql.shuffle.partitions", "4")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.session.timeZone", "UTC")
                .getOrCreate()
            )
        self.spark = spark
        self._frame: DataFrame | None = None
        self._checked: set[str] = set()
        self._found: dict[str, Discovery] = {}

    # ------------------------------------------------------------------ plumbing
    def __enter__(self) -> SparkSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the session if this source started it."""
        if self._owned:
            self.spark.stop()
            self._owned = False

    @contextmanager
    def _utc(self) -> Iterator[None]:
        """Naive timestamps and ISO text without offset read as UTC, whatever the
        session's time zone (restored after); Spark's errors as ``InvalidInputError``."""
        key = "spark.sql.session.timeZone"
        before = self.spark.conf.get(key)
        if before != "UTC":
            self.spark.conf.set(key, "UTC")
        try:
            yield
        except (PySparkException, Py4JJavaError) as exc:  # unreadable files and the like
            raise InvalidInputError(
                "source", "readable Parquet or CSV files", _first_line(exc)
            ) from None
        finally:
            if before != "UTC":
                self.spark.conf.set(key, before)  # type: ignore[arg-type]

    def _read(self) -> DataFrame:
        """Every file's rows, with the columns that order them."""
        if self._frame is None:
            frames = []
            for i, (path, fmt) in enumerate(zip(self.files, self.formats, strict=True)):
                reader = self.spark.read
                try:
                    if fmt == "csv":
                        sep = "\t" if path.lower().removesuffix(".gz").endswith(".tsv") else ","
                        # RFC 4180 quoting ("" in a quoted field), as CSV writers do it
                        df = reader.csv(path, header=True, inferSchema=True, sep=sep, escape='"')
                    else:
                        df = reader.parquet(path)
                except (PySparkException, Py4JJavaError) as exc:
                    raise InvalidInputError(
                        "source", f"a readable {fmt} file ({_first_line(exc)})", path
                    ) from None
                frames.append(
                    df.select(
                        "*",
                        F.lit(i).alias(_F),
                        F.col("_metadata.file_block_start").alias(_BLK),
                    )
                )
            frame = frames[0]
            for other in frames[1:]:
                frame = frame.unionByName(other, allowMissingColumns=True)
            self._frame = frame.withColumn(_MONO, F.monotonically_increasing_id())
        return self._frame

    def columns(self) -> dict[str, str]:
        """The source's columns and their Spark SQL types."""
        with self._utc():
            schema = self._read().schema
        return {f.name: f.dataType.simpleString() for f in schema if f.name not in _ORDER_COLS}

    # ------------------------------------------------------------ resolving a plan
    def _types(self) -> dict[str, T.DataType]:
        return {f.name: f.dataType for f in self._read().schema if f.name not in _ORDER_COLS}

    def _need(self, types: dict[str, T.DataType], key: str, column: str) -> T.DataType:
        if column not in types:
            raise InvalidInputError(
                key, f"a column of the source (available: {', '.join(types)})", column
            )
        return types[column]

    def _sides(self, plan: Plan, types: dict[str, T.DataType]) -> list[_Side]:
        m = plan.mapping
        out = []
        for i, f in enumerate(plan.fields):
            for actual, whole, split in (
                (False, m.predictions, m.prediction_columns),
                (True, m.actuals, m.actual_columns),
            ):
                word = "actuals" if actual else "predictions"
                if f in whole:
                    col = whole[f]
                    dtype = self._need(types, f"{word}.{f}", col)
                    kind = "struct" if isinstance(dtype, T.StructType) else "map"
                    out.append(_Side(f, i, actual, col, kind))
                elif f in split:
                    for label, col in split[f].items():
                        self._need(types, f"{word}.{f}.{label}", col)
                    out.append(_Side(f, i, actual, None, "columns", dict(split[f])))
        return out

    def _values(
        self, side: _Side, types: dict[str, T.DataType]
    ) -> tuple[Column, Column, Callable[[Column], Column] | None]:
        """``(present, entries, bad JSON)``: whether the row has this side, its non-null
        entries as a ``map<string, double>`` (empty when absent), and for a text column
        of JSON objects the check of its text (else None)."""
        json_bad = None
        allowed = (*_NUMBER, T.BooleanType) if side.actual else _NUMBER
        what = "0 / 1 numbers or booleans" if side.actual else "numbers"
        if side.kind == "columns":
            for name in side.columns.values():
                if not isinstance(types[name], allowed):
                    raise InvalidInputError(name, f"a column of {what}", types[name].simpleString())
            present = F.lit(False)
            for name in side.columns.values():
                present = present | _c(name).isNotNull()
            labels = F.array(*[F.lit(x) for x in side.columns]).cast("array<string>")
            values = F.array(*[_c(c).cast("double") for c in side.columns.values()])
            entries = F.map_filter(F.map_from_arrays(labels, values), _not_null)
        else:
            assert side.column is not None
            dtype = types[side.column]
            col = _c(side.column)
            expected = f"a MAP(text, number), STRUCT or JSON text column of {what}"
            if isinstance(dtype, T.MapType):
                if not isinstance(dtype.keyType, T.StringType) or not isinstance(
                    dtype.valueType, allowed
                ):
                    raise InvalidInputError(side.column, expected, dtype.simpleString())
                entries = col.cast("map<string,double>")
            elif isinstance(dtype, T.StructType):
                if not all(isinstance(x.dataType, allowed) for x in dtype.fields):
                    raise InvalidInputError(side.column, expected, dtype.simpleString())
                names = [x.name for x in dtype.fields]
                labels = F.array(*[F.lit(x) for x in names]).cast("array<string>")
                values = F.array(*[col.getField(x).cast("double") for x in names])
                # a null field of a struct: the label is absent
                entries = F.map_filter(F.map_from_arrays(labels, values), _not_null)
            elif isinstance(dtype, T.StringType):  # JSON objects as text (CSV files)
                raw = F.from_json(col, "map<string,string>")  # null: not a JSON object
                entries = F.transform_values(raw, lambda _, v: _json_number(v))
                json_bad = _not_json_numbers
            else:
                raise InvalidInputError(side.column, expected, dtype.simpleString())
            present = col.isNotNull()
        # a null value in a MAP stays, and is refused (as the SDK refuses {label: None})
        empty = F.create_map().cast("map<string,double>")
        return present, F.when(present, entries).otherwise(empty), json_bad

    def _prepare(self, plan: Plan) -> _Prepared:
        """The rows as cell columns, normalized dict fields and features, and the checks."""
        m = plan.mapping
        df = self._read()
        types = self._types()
        cols: list[Column] = [F.col(c) for c in _ORDER_COLS]
        checks: list[tuple[str, Column]] = []
        if m.id is not None:
            self._need(types, "id", m.id)
            cols.append(_c(m.id).alias("__id"))
            checks.append(("id", F.col("__id").isNull()))
        ts_kind = None
        if m.timestamp is None:
            cols.append(F.lit(math.floor(plan.now / 3600)).cast("long").alias("__b"))
        else:
            dtype = self._need(types, "timestamp", m.timestamp)
            ts = _c(m.timestamp)
            if isinstance(dtype, _TIME):
                ts_kind, bucket = "time", _floor_div(F.unix_micros(ts.cast("timestamp")), _HOUR_US)
            elif isinstance(dtype, _INTEGRAL):
                ts_kind, bucket = "int", _floor_div(ts.cast("long"), 3600)
            elif isinstance(dtype, _NUMBER):
                x = ts.cast("double")
                ts_kind = "float"
                bucket = F.when(~F.isnan(x) & (F.abs(x) < 1e15), F.floor(x / 3600.0))
            elif isinstance(dtype, T.StringType):
                ts_kind = "text"
                parsed = F.expr(f"try_cast(`{m.timestamp.replace('`', '``')}` as timestamp)")
                bucket = _floor_div(F.unix_micros(parsed), _HOUR_US)
            else:
                raise InvalidInputError(
                    m.timestamp,
                    "a TIMESTAMP, seconds since the epoch or ISO 8601 text",
                    dtype.simpleString(),
                )
            cols += [ts.alias("__t"), bucket.cast("long").alias("__b")]
            checks.append(("timestamp", F.col("__b").isNull()))
        for k, seg in enumerate(plan.segments):
            col = m.features.get(seg)
            if col is None:
                cols.append(F.lit(None).alias(f"__s{k}"))
            else:
                self._need(types, f"features.{seg}", col)
                cols.append(_c(col).alias(f"__s{k}"))
        sides = self._sides(plan, types)
        for s in sides:
            tag = f"{'a' if s.actual else 'p'}{s.index}"
            present, entries, json_bad = self._values(s, types)
            cols += [present.alias(f"__h{tag}"), entries.alias(f"__{tag}")]
            if json_bad is not None:
                assert s.column is not None
                cols.append(_c(s.column).alias(f"__j{tag}"))
                checks.append((f"j{tag}", json_bad(F.col(f"__j{tag}"))))
            if s.actual:
                bad = F.exists(
                    F.map_values(F.col(f"__{tag}")), lambda v: v.isNull() | ~((v == 0) | (v == 1))
                )
            else:
                bad = F.exists(
                    F.map_values(F.col(f"__{tag}")),
                    lambda v: v.isNull() | F.isnan(v) | (v < 0) | (v > 1),
                )
            checks.append((tag, bad))
        numeric_types: dict[str, T.DataType] = {}
        for j, feat in enumerate(plan.numeric):
            col = m.features[feat]
            dtype = numeric_types[feat] = self._need(types, f"features.{feat}", col)
            if not isinstance(dtype, _NUMBER):
                raise InvalidInputError(
                    col, "a column of numbers (numeric feature)", dtype.simpleString()
                )
            cols.append(_c(col).cast("double").alias(f"__n{j}"))
            # NaN and ±inf are refused, as the SDK refuses them (null is missing)
            checks.append(
                (f"n{j}", F.isnan(F.col(f"__n{j}")) | (F.abs(F.col(f"__n{j}")) == math.inf))
            )
        categorical_types: dict[str, T.DataType] = {}
        for j, feat in enumerate(plan.categorical):
            col = m.features[feat]
            dtype = categorical_types[feat] = self._need(types, f"features.{feat}", col)
            if not isinstance(dtype, _CATEGORY):
                raise InvalidInputError(
                    col, "a column of category names, booleans or numbers", dtype.simpleString()
                )
            cols.append(_c(col).alias(f"__c{j}"))
            if isinstance(dtype, T.StringType):
                checks.append((f"c{j}", F.col(f"__c{j}") == OTHER))
            if feat in plan.booleans and isinstance(dtype, _INTEGRAL):  # 0 / 1
                checks.append((f"c{j}", ~F.col(f"__c{j}").isin(0, 1)))
        return _Prepared(df.select(*cols), sides, checks, ts_kind, numeric_types, categorical_types)

    # ----------------------------------------------------------------- validation
    def _validate(self, plan: Plan, prep: _Prepared) -> int:
        """Check every row (raising on the first bad one); the number of rows."""
        base = prep.base
        aggs = [F.count(F.lit(1)).alias("rows")]
        aggs += [F.min(F.when(flag, _order())).alias(name) for name, flag in prep.checks]
        result = base.agg(*aggs).first()
        assert result is not None
        rows = int(result["rows"])
        found: list[tuple[tuple[int, int, int], int, str]] = []
        for rank, (name, _) in enumerate(prep.checks):
            at = result[name]
            if at is not None:
                found.append((tuple(at), rank, name))
        if plan.mapping.id is not None:
            dup = self._duplicate(base)
            if dup is not None:
                found.append((dup, len(prep.checks), "duplicate"))
        if found:
            key, _, name = min(found)
            raise self._error(plan, prep, name, key)
        return rows

    def _duplicate(self, base: DataFrame) -> tuple[int, int, int] | None:
        """The order key of the first row repeating an earlier row's id, or None."""
        ids = base.where(F.col("__id").isNotNull())
        dups = ids.groupBy("__id").agg(F.count(F.lit(1)).alias("n")).where("n > 1")
        if dups.limit(1).count() == 0:
            return None
        rows = ids.select("__id", *_ORDER_COLS).join(dups.select("__id"), "__id")
        # the second occurrence of each repeated id, then the earliest of those
        firsts = rows.groupBy("__id").agg(F.min(_order()).alias("first"))
        seconds = (
            rows.join(firsts, "__id")
            .where(_order() > F.col("first"))
            .agg(F.min(_order()).alias("at"))
            .first()
        )
        assert seconds is not None and seconds["at"] is not None
        return tuple(seconds["at"])

    def _row_number(self, base: DataFrame, key: tuple[int, int, int]) -> int:
        f, blk, mono = (F.col(c) for c in _ORDER_COLS)
        a, b, c = key
        before = (f < a) | ((f == a) & ((blk < b) | ((blk == b) & (mono < c))))
        return base.where(before).count()

    def _error(
        self, plan: Plan, prep: _Prepared, name: str, key: tuple[int, int, int]
    ) -> InvalidInputError:
        """The error of check ``name`` at the row ``key``."""
        m = plan.mapping
        a, b, c = key
        row = prep.base.where((F.col(_F) == a) & (F.col(_BLK) == b) & (F.col(_MONO) == c)).first()
        assert row is not None
        n = self._row_number(prep.base, key)
        if name == "id":
            return InvalidInputError(m.id or "id", "a prediction id (not null)", None, row=n)
        if name == "duplicate":
            value = row["__id"]
            return InvalidInputError(
                m.id or "id", "a prediction id not used by an earlier row", value, row=n
            )
        if name == "timestamp":
            assert m.timestamp is not None
            expected = {
                "text": "an ISO 8601 timestamp",
                "float": "a finite number of seconds since the epoch",
            }.get(prep.timestamp_kind or "", "a timestamp (not null)")
            return InvalidInputError(m.timestamp, expected, row["__t"], row=n)
        if name[0] == "j":  # a text column that is not JSON objects of numbers
            side = next(s for s in prep.sides if f"j{'a' if s.actual else 'p'}{s.index}" == name)
            return InvalidInputError(
                side.where(None),
                "a JSON object of label: number (as text), a MAP or a STRUCT",
                row[f"__{name}"],
                row=n,
            )
        if name[0] in "pa":
            side = next(s for s in prep.sides if f"{'a' if s.actual else 'p'}{s.index}" == name)
            for label, v in (row[f"__{name}"] or {}).items():
                if side.actual and v not in (0.0, 1.0):
                    return InvalidInputError(
                        side.where(label), "an actual of 0 or 1", v, row=n, label=label
                    )
                if not side.actual and (v is None or not 0.0 <= v <= 1.0):
                    return InvalidInputError(
                        side.where(label), "a score in [0, 1]", v, row=n, label=label
                    )
        if name[0] == "n":
            feat = plan.numeric[int(name[1:])]
            return InvalidInputError(
                m.features[feat], "a finite number (null for missing)", row[f"__{name}"],
                row=n,
            )  # fmt: skip
        feat = plan.categorical[int(name[1:])]
        if feat in plan.booleans and isinstance(prep.categorical_types[feat], _INTEGRAL):
            return InvalidInputError(
                m.features[feat], "a boolean (true / false, or 1 / 0)", row[f"__{name}"], row=n
            )
        return InvalidInputError(
            m.features[feat],
            f"a category other than {OTHER!r} (reserved)",
            row[f"__{name}"],
            row=n,
        )

    # -------------------------------------------------------------------- discover
    def discover(self, plan: Plan) -> Discovery:
        """Validate every row; the labels found per field, in order of first appearance."""
        with self._utc():
            prep = self._prepare(plan)
            rows = self._validate(plan, prep)
            self._checked.add(repr(plan.mapping))
            parts = []
            for k, s in enumerate(prep.sides):
                tag = f"{'a' if s.actual else 'p'}{s.index}"
                parts.append(_positions(F.col(f"__{tag}"), k))
            pred: dict[str, list[tuple[str, int]]] = {f: [] for f in plan.fields}
            act: dict[str, list[tuple[str, int]]] = {f: [] for f in plan.fields}
            if parts:
                e = prep.base.select(*_ORDER_COLS, F.explode(F.concat(*parts)).alias("e"))
                first = F.struct(*[F.col(c) for c in _ORDER_COLS], F.col("e.pos"))
                got = (
                    e.groupBy("e.side", "e.label")
                    .agg(F.count(F.lit(1)).alias("n"), F.min(first).alias("first"))
                    .collect()
                )
                for r in sorted(got, key=lambda r: (r["side"], tuple(r["first"]))):
                    s = prep.sides[r["side"]]
                    (act if s.actual else pred)[s.name].append((r["label"], int(r["n"])))
            found = Discovery(rows=rows, prediction_labels=pred, actual_labels=act)
        self._found[repr(plan.mapping)] = found
        return found

    # ------------------------------------------------------------------- summarize
    def summarize(self, plan: Plan) -> Summary:
        """The aggregates of the source (the rows are validated first, once)."""
        key = repr(plan.mapping)
        if key not in self._checked or (plan.labels is None and key not in self._found):
            self.discover(plan)
        found = self._found.get(key)
        with self._utc():
            prep = self._prepare(plan)
            cells = ["__b", *[f"__s{k}" for k in range(len(plan.segments))]]
            kept = self._kept(plan, prep, found)
            base = prep.base.select(*cells, *self._dict_columns(plan, prep, kept))
            if plan.fields:
                out = {
                    "scores": self._scores(plan, prep, base, cells),
                    "samples": self._samples(plan, prep, base, cells),
                    "pairs": self._pairs(plan, prep, base, cells, kept),
                }
            else:
                out = {name: _empty(plan, list(columns)) for name, columns in _DICT_TABLES.items()}
            out.update(self._numeric(plan, prep, cells))
            out["categorical"] = self._categorical(plan, prep, cells)
        return Summary(
            segments=list(plan.segments),
            scores=out["scores"],
            samples=out["samples"],
            pairs=out["pairs"],
            numeric=out["numeric"],
            numeric_keys=out["numeric_keys"],
            numeric_sums=out["numeric_sums"],
            categorical=out["categorical"],
            rows=out["rows"],
        )

    def _kept(
        self, plan: Plan, prep: _Prepared, found: Discovery | None
    ) -> dict[str, list[str] | None]:
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

    def _dict_columns(
        self, plan: Plan, prep: _Prepared, kept: dict[str, list[str] | None]
    ) -> list[Column]:
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

    def _threshold(self, plan: Plan, f: str) -> Callable[[Column], Column]:
        default = float(plan.default_threshold.get(f, 0.5))
        special = {k: float(v) for k, v in plan.thresholds.get(f, {}).items() if v != default}
        if not special:
            return lambda label: F.lit(default)
        table = F.create_map(*[F.lit(x) for kv in special.items() for x in kv])
        return lambda label: F.coalesce(F.try_element_at(table, label), F.lit(default))

    def _collect(self, df: DataFrame, keys: list[str], rename: dict[str, str]) -> Table:
        """An aggregate as a ``Table`` (columns renamed), through Arrow: numbers as NumPy
        arrays (NaN for null floats), anything else as Python objects. ``keys``: the
        group-by columns (rows come in no particular order)."""
        table = df.toArrow()
        out = {rename.get(n, n): _numpy(table.column(n)) for n in table.column_names}
        for name in rename.values():  # raw segment values: Python objects
            if name.startswith("seg_") and name in out and out[name].dtype != object:
                out[name] = _array(out[name].tolist())
        return out

    def _rename(self, plan: Plan) -> dict[str, str]:
        return {"__b": "bucket", **{f"__s{k}": f"seg_{k}" for k in range(len(plan.segments))}}

    def _fields(self, table: Table, plan: Plan) -> Table:
        if "field" in table:
            table["field"] = _array(plan.fields)[table["field"].astype(np.int64)]
        return table

    def _scores(self, plan: Plan, prep: _Prepared, base: DataFrame, cells: list[str]) -> Table:
        parts = []
        for i, f in enumerate(plan.fields):
            bin_of = _binner(plan.edges[f])
            pm, am, has_a = F.col(f"__p{i}"), F.col(f"__a{i}"), F.col(f"__ha{i}")

            parts.append(_score_entries(i, pm, am, has_a, bin_of))
        keys = [*cells, "field", "label", "outcome", "bin"]
        e = base.select(*cells, F.explode(F.concat(*parts)).alias("e")).select(*cells, "e.*")
        table = self._collect(
            e.groupBy(*keys).agg(F.count(F.lit(1)).alias("count")), keys, self._rename(plan)
        )
        return self._fields(_typed(table, _SCORES), plan)

    def _samples(self, plan: Plan, prep: _Prepared, base: DataFrame, cells: list[str]) -> Table:
        parts = []
        for i, f in enumerate(plan.fields):
            thr = self._threshold(plan, f)
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
        table = self._collect(
            e.groupBy(*keys).agg(F.count(F.lit(1)).alias("count")), keys, self._rename(plan)
        )
        return self._fields(_typed(table, _SAMPLES), plan)

    def _pairs(
        self,
        plan: Plan,
        prep: _Prepared,
        base: DataFrame,
        cells: list[str],
        kept: dict[str, list[str] | None],
    ) -> Table:
        """Label pairs per cell: each row's predicted and true label sets as bit masks
        (64 labels a word), the rows grouped by cell and masks on the executors, and the
        pairs of each distinct mask counted here (a product of 0/1 matrices per cell)
        instead of every pair of every row exploded into a row."""
        found = self._found.get(repr(plan.mapping))
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
            thr = self._threshold(plan, f)
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
            got = self._collect(grouped, keys, self._rename(plan))
            tables.append(_pair_table(got, names, words, i, [self._rename(plan)[c] for c in cells]))
        if not tables:
            return _empty(plan, ["field", "label_a", "label_b", "predicted", "actual"])
        table = {c: np.concatenate([t[c] for t in tables]) for c in tables[0]}
        return self._fields(_typed(table, _PAIRS), plan)

    def _present(self, plan: Plan, prep: _Prepared, cells: list[str]) -> DataFrame:
        """One row per present numeric value: cells, ``j`` (feature index), ``x``."""
        values = F.array(
            *[
                F.struct(F.lit(j).alias("j"), (F.col(f"__n{j}") + 0.0).alias("x"))
                for j in range(len(plan.numeric))
            ]
        )
        present = F.filter(values, lambda s: s["x"].isNotNull() & ~F.isnan(s["x"]))
        return prep.base.select(*cells, F.explode(present).alias("e")).select(*cells, "e.*")

    def _numeric(self, plan: Plan, prep: _Prepared, cells: list[str]) -> dict[str, Table]:
        """``numeric``, ``numeric_keys``, ``numeric_sums`` and ``rows``."""
        rename = self._rename(plan)
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
        per_cell = self._collect(prep.base.groupBy(*cells).agg(*aggs), cells, rename)
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
        values = self._present(plan, prep, cells)
        mag = F.abs(F.col("x"))
        keyed = values.where(mag >= _TINY).select(
            *cells,
            "j",
            F.when(F.col("x") > 0, 1).otherwise(-1).alias("sign"),
            F.ceil(F.log(mag) / F.lit(plan.log_gamma)).alias("key"),
            mag.alias("m"),
        )
        kk = [*cells, "j", "sign", "key"]
        keys = self._collect(
            keyed.groupBy(*kk).agg(
                F.count(F.lit(1)).alias("count"), F.min("m").alias("lo"), F.max("m").alias("hi")
            ),
            kk,
            rename,
        )
        keys = _features(_typed(keys, _KEYS), plan.numeric)
        sums = self._collect(self._sums(values, cells), [*cells, "j", "exponent"], rename)
        hi = sums.pop("hi").tolist()
        lo = sums.pop("lo").tolist()
        sums["mantissa"] = _array(
            [(int(h) << _SPLIT) + int(low) for h, low in zip(hi, lo, strict=True)]
        )
        sums = _features(_typed(sums, {"bucket": np.int64, "exponent": np.int64}), plan.numeric)
        return {"numeric": numeric, "numeric_keys": keys, "numeric_sums": sums, "rows": rows}

    @staticmethod
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

    def _categorical(self, plan: Plan, prep: _Prepared, cells: list[str]) -> Table:
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
        got = self._collect(
            e.groupBy(*keys).agg(F.count(F.lit(1)).alias("count")), keys, self._rename(plan)
        )
        cell_names = list(self._rename(plan).values())
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

    # ----------------------------------------------------------------- re-keying
    def numeric_values(self, plan: Plan, feature: str, lo: float, hi: float) -> Table:
        """The present values of numeric ``feature`` with ``lo <= |x| <= hi``, with their
        cell columns (``bucket``, ``seg_*``, ``value``)."""
        with self._utc():
            prep = self._prepare(plan)
            j = plan.numeric.index(feature)
            cells = ["__b", *[f"__s{k}" for k in range(len(plan.segments))]]
            x = F.col(f"__n{j}") + 0.0
            rows = prep.base.where(
                x.isNotNull() & ~F.isnan(x) & (F.abs(x) >= lo) & (F.abs(x) <= hi)
            ).select(*cells, x.alias("value"))
            table = self._collect(rows, [*cells, "value"], self._rename(plan))
        return _typed(table, {"bucket": np.int64, "value": np.float64})


# ---------------------------------------------- higher-order function bodies
def _not_null(k: Column, v: Column) -> Column:
    return v.isNotNull()


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


def _positions(entries: Column, side: int) -> Column:
    """``(side, label, position)`` of each key of a map."""

    def one(x: Column, i: Column) -> Column:
        return F.struct(F.lit(side).alias("side"), x.alias("label"), i.alias("pos"))

    return F.transform(F.map_keys(entries), one)


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


def _json_number(v: Column) -> Column:
    """A JSON value's text as a number (true / false: 1 / 0), null if it is none."""
    return F.when(v == "true", 1.0).when(v == "false", 0.0).otherwise(v.try_cast("double"))


def _not_json_numbers(text: Column) -> Column:
    """Whether a text (not null) is not a JSON object of numbers, true / false or null
    (a null is refused later, naming its label). The values' JSON types come from a
    VARIANT parse: a number as a string (``"0.5"``) is refused, as DuckDB refuses it."""
    raw = F.from_json(text, "map<string,variant>")

    def other(v: Column) -> Column:
        kind = F.schema_of_variant(v)
        numbers = ("TINYINT", "SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE")
        return ~(kind.startswith("DECIMAL") | kind.isin(*numbers, "BOOLEAN", "VOID"))

    return text.isNotNull() & (raw.isNull() | F.exists(F.map_values(raw), other))


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


def _first_line(exc: Exception) -> str:
    """The gist of a Spark error (the Java exception's message when there is one)."""
    java = getattr(exc, "java_exception", None)
    text = (str(java) if java is not None else str(exc)).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _floor_div(x: Column, d: int) -> Column:
    """floor(x / d) of a long, exactly: the double quotient, corrected by one."""
    q = F.floor(x.cast("double") / float(d))
    dd = F.lit(d).cast("long")
    return q - (q * dd > x).cast("long") + ((q + 1) * dd <= x).cast("long")


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
