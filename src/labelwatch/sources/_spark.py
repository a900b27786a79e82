"""The Apache Spark engine of ``labelwatch ingest --source``: ``SparkSource``.

The same aggregates as the DuckDB engine (see ``_plan`` for the contract), computed as
Spark SQL group-bys: no Python UDF runs on the rows, only the small aggregates are
collected (through Arrow) and turned into ``Table`` form on the driver. This module holds
the session, the reading of the files, a plan resolved against their columns, the checks
of every row (with the error of the first bad one) and the labels found; the group-bys
and their conversion are in ``_spark_aggregates``.

- Rows are ordered by (file in sorted path order, the file split's start offset,
  ``monotonically_increasing_id``): within a split Spark reads rows in file order. Row
  numbers are only needed for errors (the rows before the first bad one are counted).
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from py4j.protocol import Py4JJavaError  # type: ignore[import-untyped]
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from labelwatch.errors import InvalidInputError
from labelwatch.metrics._categorical import OTHER
from labelwatch.sources._plan import Discovery, Plan, Summary, Table
from labelwatch.sources._spark_aggregates import (
    _DICT_TABLES,
    _INTEGRAL,
    _categorical,
    _collect,
    _dict_columns,
    _empty,
    _kept,
    _numeric,
    _pairs,
    _rename,
    _samples,
    _scores,
    _typed,
)

__all__ = ["SparkSource"]

_HOUR_US = 3_600_000_000
_ARROW_EXT = (".arrow", ".arrows", ".ipc", ".feather")
_ARROW_HINT = "Parquet or CSV for the spark engine (use --engine duckdb for Arrow IPC)"
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
            kept = _kept(plan, prep, found)
            base = prep.base.select(*cells, *_dict_columns(plan, prep, kept))
            if plan.fields:
                out = {
                    "scores": _scores(plan, prep, base, cells),
                    "samples": _samples(plan, prep, base, cells),
                    "pairs": _pairs(plan, prep, base, cells, kept, found),
                }
            else:
                out = {name: _empty(plan, list(columns)) for name, columns in _DICT_TABLES.items()}
            out.update(_numeric(plan, prep, cells))
            out["categorical"] = _categorical(plan, prep, cells)
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
            table = _collect(rows, [*cells, "value"], _rename(plan))
        return _typed(table, {"bucket": np.int64, "value": np.float64})


# ---------------------------------------------- higher-order function bodies
def _not_null(k: Column, v: Column) -> Column:
    return v.isNotNull()


def _positions(entries: Column, side: int) -> Column:
    """``(side, label, position)`` of each key of a map."""

    def one(x: Column, i: Column) -> Column:
        return F.struct(F.lit(side).alias("side"), x.alias("label"), i.alias("pos"))

    return F.transform(F.map_keys(entries), one)


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


# ------------------------------------------------------------------- helpers
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
