"""The DuckDB engine of ``labelwatch ingest --source``: files or a SQL query -> aggregates.

Every pass is one SQL query that DuckDB streams over the source (Parquet, CSV, Arrow IPC
files, an in-memory Arrow table, or a SQL query's rows spooled to a temporary Parquet
file); only small aggregates come back to Python (``records`` and ``numeric_values``
excepted). Semantics: see ``labelwatch.sources._plan``.

How the exact parts are computed in SQL:

- bins: ``np.searchsorted(edges, s, side="left")`` is the number of edges below ``s``.
  On a uniform grid of ``cells`` cells (``u = floor(s * cells)``, monotone in ``s`` as
  IEEE multiplication is) every edge of a lower cell is below ``s`` and every edge of a
  higher one above, so the bin is ``lut[u]`` (the edges of the lower cells) plus one
  comparison per edge of cell ``u`` (one, for a grid fine enough).
- label sets: per row and field, 64-bit masks of the labels present, predicted (score
  above threshold) and true (actual 1), labels numbered by an ENUM type (a hash look-up
  per map entry); samples are bit counts, pairs are counted per pair of bytes of the
  masks (at most one fact per pair of non-empty bytes) and expanded in NumPy.
- exact sums: ``x = m * 2**e`` with ``e = floor(log2|x|) - 53`` (the logarithm may be one
  off: ``m`` is then an integer below ``2**55`` all the same), ``m`` scaled in two
  power-of-two steps (exact), summed as HUGEINT per exponent.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import inspect
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb
import numpy as np

from labelwatch.errors import InvalidInputError
from labelwatch.metrics._features import OTHER
from labelwatch.sources._duckdb_pass import (
    _FLOAT_COLUMNS,
    _INT_COLUMNS,
    _MAX_PAIR_LABELS,
    _NO_FIRST,
    _POS,
    HAVE_NUMBA,
    _concat,
    _FieldAcc,
    _lookup,
    _objects,
    _Pass,
    _pass_tables,
    _stream,
    _to_table,
    pa_string_array,
)
from labelwatch.sources._plan import Discovery, Plan, Summary, Table

if TYPE_CHECKING:
    import pyarrow

__all__ = ["DuckDBSource"]

ROW = "__lw_row"
_TINY = float(np.finfo(np.float64).tiny)
_INTS = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}
_FLOATS = {"FLOAT", "DOUBLE"}
_TIMES = {
    "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE",
    "TIMESTAMP_S",
    "TIMESTAMP_MS",
    "TIMESTAMP_NS",
    "DATE",
}
_FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}
_HOUR_US = 3_600_000_000
_CHUNK_ROWS = 50_000
_DEBUG = bool(os.environ.get("LABELWATCH_DUCKDB_DEBUG"))


def _format_of(path: str) -> str | None:
    """The format a file's extension names (``.csv.gz``: csv), or None."""
    name = path.lower()
    if name.endswith(".gz"):
        return "csv" if name.endswith(".csv.gz") else None
    return _FORMATS.get(os.path.splitext(name)[1])


def _data_files(directory: str) -> list[str]:
    """The data files under a directory, at any depth (partition folders), skipping the
    hidden and bookkeeping ones (``.crc``, ``_SUCCESS``, ``_delta_log``...)."""
    out = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        for n in names:
            if not n.startswith((".", "_")) and _format_of(n) is not None:
                out.append(os.path.join(root, n))
    return sorted(out)


def _q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _num(x: float) -> str:
    """A DOUBLE literal that reads back as exactly ``x``."""
    if math.isinf(x):
        return "'inf'::DOUBLE" if x > 0 else "'-inf'::DOUBLE"
    return f"{x!r}::DOUBLE"


def _floordiv(x: str, d: int) -> str:
    """Integer floor division (DuckDB's ``//`` truncates)."""
    return f"(CASE WHEN {x} >= 0 THEN {x} // {d} ELSE -((-({x}) - 1) // {d}) - 1 END)"


def _kind(t: Any) -> str:
    """``"map"``, ``"struct"``, ``"int"``, ``"float"``, ``"bool"``, ``"text"``, ``"time"``,
    ``"decimal"`` or ``"other"`` for a DuckDB type."""
    text = str(t)
    if t.id == "map":
        return "map"
    if t.id == "struct":
        return "struct"
    if text in _INTS:
        return "int"
    if text in _FLOATS:
        return "float"
    if text.startswith("DECIMAL"):
        return "decimal"
    if text == "BOOLEAN":
        return "bool"
    if text == "VARCHAR":
        return "text"
    if text in _TIMES:
        return "time"
    return "other"


_NUMERIC = ("int", "float", "decimal")


class _Side:
    """One side (prediction or actual) of a dict field: a MAP column, or fixed labels
    (a STRUCT's fields or one column per label) each with a value expression."""

    def __init__(
        self,
        *,
        column: str | None = None,
        value_kind: str = "float",
        entries: list[tuple[str, str, str, str]] | None = None,
        has: str = "",
        name: str | None = None,
        json: str | None = None,
    ) -> None:
        self.column = column  # MAP column (quoted SQL, or a MAP expression) or None
        self.value_kind = value_kind
        self.entries = entries or []  # (label, value SQL, kind, name in errors)
        self.has = has
        self.name = name  # the source column, in errors
        self.json = json  # a text column of JSON objects (quoted SQL) the MAP is cast from

    @property
    def is_map(self) -> bool:
        return self.column is not None


def _json_object(text: str) -> str:
    """SQL: whether ``text`` (not NULL) is a JSON object whose values are numbers,
    booleans or null (a null value is refused later, naming its label)."""
    values = f"map_values(CAST(CAST({text} AS JSON) AS MAP(VARCHAR, JSON)))"
    kinds = "('DOUBLE', 'BIGINT', 'UBIGINT', 'BOOLEAN')"
    return (
        f"(CASE WHEN json_valid({text}) AND json_type(CAST({text} AS JSON)) = 'OBJECT' "
        f"THEN coalesce(list_bool_and(list_transform({values}, v -> json_type(v) IN {kinds})),"
        " true) ELSE false END)"
    )


def _unreadable(exc: duckdb.Error) -> InvalidInputError:
    """A file DuckDB cannot read (truncated, not of its format, unreadable types) as an
    input error, DuckDB's message in full as the hint."""
    text = str(exc).split("\n")[0]
    return InvalidInputError("source", "files DuckDB can read", type(exc).__name__, hint=text)


F = TypeVar("F", bound=Callable[..., Any])


def _readable(method: F) -> F:
    """Turn DuckDB's errors while reading the source into ``_unreadable``."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            out = method(*args, **kwargs)
        except duckdb.Error as exc:
            raise _unreadable(exc) from None
        if inspect.isgenerator(out):
            return _generator(out)
        return out

    return wrapper  # type: ignore[return-value]


def _generator(gen: Iterator[Any]) -> Iterator[Any]:
    try:
        yield from gen
    except duckdb.Error as exc:
        raise _unreadable(exc) from None


class DuckDBSource:
    """A source read by DuckDB: files (``paths``: paths or globs, Parquet, CSV or Arrow
    IPC), a SQL query (``url`` + ``query``), or an in-memory Arrow ``table``."""

    def __init__(
        self,
        paths: str | list[str] | None = None,
        *,
        format: str | None = None,
        url: str | None = None,
        query: str | None = None,
        table: pyarrow.Table | None = None,
        threads: int | None = None,
        engine: str | None = None,
    ) -> None:
        given = [paths is not None, url is not None or query is not None, table is not None]
        if sum(given) != 1:
            raise InvalidInputError(
                "source", "exactly one of paths, url with query, or table", given
            )
        self._tmp = tempfile.mkdtemp(prefix="labelwatch-duckdb-")
        self._con = duckdb.connect(
            ":memory:",
            config={
                "threads": threads or 2,
                "memory_limit": "512MB",
                "preserve_insertion_order": True,
                "temp_directory": os.path.join(self._tmp, "spill"),
            },
        )
        self._enums = 0
        wanted = engine or os.environ.get("LABELWATCH_DUCKDB_ENGINE", "").strip().lower()
        if wanted not in ("", "numba", "sql"):
            raise InvalidInputError("engine", "'numba' or 'sql'", wanted)
        self._engine = "numba" if HAVE_NUMBA and wanted != "sql" else "sql"
        self._cache: tuple[Plan, _Pass, dict[str, set[str]]] | None = None
        try:
            self._con.execute("SET TimeZone = 'UTC'")
            self._con.execute("SET enable_progress_bar = false")  # stdout is the caller's
            if table is not None:
                self._con.register("lw_table", table)
                self._numbered("lw_table")
            elif paths is not None:
                self._open_files([paths] if isinstance(paths, str) else list(paths), format)
            else:
                if url is None or query is None:
                    raise InvalidInputError("source", "both url and query", (url, query))
                self._parquet(self._spool_query(url, query))
            rel = self._con.sql(f"SELECT * EXCLUDE ({ROW}) FROM lw_src LIMIT 0")
            self._types: dict[str, Any] = dict(zip(rel.columns, rel.types, strict=True))
        except duckdb.Error as exc:
            self.close()
            raise _unreadable(exc) from None
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ opening
    def _open_files(self, patterns: list[str], format: str | None) -> None:
        files: list[str] = []
        for pattern in patterns:
            if glob.has_magic(pattern):
                found = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
                if not found:
                    raise InvalidInputError(
                        "source",
                        "a glob matching files",
                        pattern,
                        hint=f"no file matches {pattern}",
                    )
                files += found
            elif os.path.isfile(pattern):
                files.append(pattern)
            elif os.path.isdir(pattern):  # e.g. a Spark or Hive output: its data files
                found = _data_files(pattern)
                if not found:
                    raise InvalidInputError(
                        "source",
                        f"a directory holding data files ({', '.join(sorted(_FORMATS))})",
                        pattern,
                    )
                files += found
            else:
                raise InvalidInputError(
                    "source",
                    "an existing file, directory or glob",
                    pattern,
                    hint=f"no such file: {pattern}",
                )
        files = sorted(dict.fromkeys(os.path.abspath(f) for f in files))
        if format is None:
            kinds = {_format_of(f) for f in files}
            if None in kinds or len(kinds) != 1:
                raise InvalidInputError(
                    "format",
                    f"files of one format among {sorted(set(_FORMATS.values()))}, by "
                    f"extension {sorted(_FORMATS)} (or pass format=...)",
                    files[0],
                )
            format = kinds.pop()
        if format == "parquet":
            self._parquet(files)
        elif format == "csv":
            listed = ", ".join(map(_lit, files))
            self._con.execute(
                f"CREATE VIEW lw_scan AS SELECT * FROM read_csv([{listed}], union_by_name = true)"
            )
            self._numbered("lw_scan")
        elif format == "arrow":
            self._arrow(files)
        else:
            raise InvalidInputError("format", "'parquet', 'csv' or 'arrow'", format)

    def _numbered(self, scan: str) -> None:
        """``lw_src``: the scan with its row number (an order-preserving window)."""
        self._con.execute(
            f"CREATE VIEW lw_src AS SELECT *, row_number() OVER () - 1 AS {ROW} FROM {scan}"
        )

    def _parquet(self, files: list[str]) -> None:
        """``lw_src`` over Parquet files: each file's row numbers offset by the rows of
        the files before it (parallel, unlike a window)."""
        parts, offset = [], 0
        for f in files:
            parts.append(
                f"SELECT * EXCLUDE (file_row_number), file_row_number + {offset} AS {ROW} "
                f"FROM read_parquet({_lit(f)}, file_row_number = true)"
            )
            row = self._con.execute(
                f"SELECT sum(num_rows) FROM parquet_file_metadata({_lit(f)})"
            ).fetchone()
            offset += int(row[0] or 0) if row else 0
        self._con.execute("CREATE VIEW lw_src AS " + " UNION ALL BY NAME ".join(parts))

    def _arrow(self, files: list[str]) -> None:
        import pyarrow.dataset as ds
        import pyarrow.ipc as ipc
        import pyarrow.parquet as pq

        streams = []
        for f in files:
            with open(f, "rb") as fh:
                streams.append(fh.read(6) != b"ARROW1")
        if not any(streams):
            self._con.register("lw_dataset", ds.dataset(files, format="arrow"))
            self._numbered("lw_dataset")
            return
        out = []
        for k, f in enumerate(files):  # IPC streams: spooled to Parquet (a second pass)
            path = os.path.join(self._tmp, f"arrow-{k:05d}.parquet")
            with open(f, "rb") as fh:
                reader = ipc.open_stream(fh) if streams[k] else ipc.open_file(fh)
                writer = pq.ParquetWriter(path, reader.schema)
                try:
                    if streams[k]:
                        for batch in reader:
                            writer.write_batch(batch)
                    else:
                        for i in range(reader.num_record_batches):
                            writer.write_batch(reader.get_batch(i))
                finally:
                    writer.close()
            out.append(path)
        self._parquet(out)

    def _spool_query(self, url: str, query: str) -> list[str]:
        """The query's rows, streamed in chunks into Parquet files (a new file when a
        chunk's inferred types differ from the file's)."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        import sqlalchemy as sa

        files: list[str] = []
        writer: Any = None
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                result = conn.execution_options(yield_per=_CHUNK_ROWS).execute(sa.text(query))
                names = list(result.keys())
                for part in result.partitions():
                    columns = list(zip(*part, strict=True)) if part else [()] * len(names)
                    chunk = pa.table(
                        {n: pa.array(list(c)) for n, c in zip(names, columns, strict=True)}
                    )
                    if writer is not None and chunk.schema != writer.schema:
                        try:
                            chunk = chunk.cast(writer.schema)
                        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
                            writer.close()
                            writer = None
                    if writer is None:
                        files.append(os.path.join(self._tmp, f"query-{len(files):05d}.parquet"))
                        writer = pq.ParquetWriter(files[-1], chunk.schema)
                    writer.write_table(chunk)
                if writer is None:
                    files.append(os.path.join(self._tmp, "query-00000.parquet"))
                    empty = pa.table({n: pa.array([], pa.string()) for n in names})
                    pq.write_table(empty, files[-1])
        except sa.exc.SQLAlchemyError as exc:
            raise InvalidInputError("query", "a query the database runs", str(exc)) from None
        finally:
            if writer is not None:
                writer.close()
            engine.dispose()
        return files

    # ------------------------------------------------------------------ public
    @_readable
    def columns(self) -> dict[str, str]:
        """Column name -> DuckDB type text, in source order."""
        return {name: str(t) for name, t in self._types.items()}

    def close(self) -> None:
        """Release the connection and the temporary files."""
        con = getattr(self, "_con", None)
        if con is not None:
            con.close()
            self._con = None  # type: ignore[assignment]
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> DuckDBSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ column checks
    def _column(self, name: str) -> tuple[str, Any]:
        """(quoted name, DuckDB type) of a mapped column; an error naming it if absent."""
        t = self._types.get(name)
        if t is None:
            raise InvalidInputError(
                name, f"a column of the source, among {list(self._types)}", name
            )
        return _q(name), t

    def _typed(self, name: str, kinds: tuple[str, ...], expected: str) -> tuple[str, str]:
        sql, t = self._column(name)
        kind = _kind(t)
        if kind not in kinds:
            raise InvalidInputError(name, expected, str(t))
        return sql, kind

    def _side(self, plan: Plan, field: str, actual: bool) -> _Side | None:
        m = plan.mapping
        single = (m.actuals if actual else m.predictions).get(field)
        per_label = (m.actual_columns if actual else m.prediction_columns).get(field)
        what = "0/1 numbers or booleans" if actual else "scores (numbers)"
        if single is not None:
            sql, t = self._column(single)
            kind = _kind(t)
            if kind == "text" or str(t) == "JSON":  # JSON objects as text (CSV, SQL tables)
                return _Side(
                    column=f"CAST(CAST({sql} AS JSON) AS MAP(VARCHAR, DOUBLE))",
                    has=f"{sql} IS NOT NULL",
                    name=single,
                    json=sql,
                )
            if kind == "map":
                (_, key_t), (_, value_t) = t.children
                value_kind = _kind(value_t)
                if str(key_t) != "VARCHAR" or value_kind not in (*_NUMERIC, "bool"):
                    raise InvalidInputError(
                        single, f"a MAP(VARCHAR, number) or STRUCT column of {what}", str(t)
                    )
                return _Side(column=sql, value_kind=value_kind, has=f"{sql} IS NOT NULL")
            if kind == "struct":
                entries = []
                for label, child in t.children:
                    ck = _kind(child)
                    if ck not in (*_NUMERIC, "bool"):
                        raise InvalidInputError(
                            f"{single}.{label}", f"a number or boolean ({what})", str(child)
                        )
                    entries.append((label, f"{sql}.{_q(label)}", ck, f"{single}.{label}"))
                return _Side(entries=entries, has=f"{sql} IS NOT NULL")
            raise InvalidInputError(
                single, f"a MAP(VARCHAR, number) or STRUCT column of {what}", str(t)
            )
        if per_label is not None:
            entries = []
            for label, col in per_label.items():
                sql, ck = self._typed(col, (*_NUMERIC, "bool"), f"a number or boolean ({what})")
                entries.append((label, sql, ck, col))
            has = " OR ".join(f"{e[1]} IS NOT NULL" for e in entries) or "false"
            return _Side(entries=entries, has=f"({has})")
        return None

    def _time(self, plan: Plan) -> tuple[str, str, str, str]:
        """(bucket SQL, seconds-or-microseconds SQL, unit, validity SQL) of the rows."""
        name = plan.mapping.timestamp
        if name is None:
            now_bucket = int(np.floor_divide(plan.now, 3600.0))
            return str(now_bucket), _num(plan.now), "s", "true"
        sql, t = self._column(name)
        kind = _kind(t)
        if kind == "time":
            us = f"epoch_us({sql})" if "ZONE" in str(t) else f"epoch_us(CAST({sql} AS TIMESTAMP))"
            return _floordiv(us, _HOUR_US), us, "us", f"{sql} IS NOT NULL"
        if kind == "text":
            us = f"epoch_us(TRY_CAST({sql} AS TIMESTAMPTZ))"
            return _floordiv(us, _HOUR_US), us, "us", f"{us} IS NOT NULL"
        if kind in _NUMERIC:
            x = f"CAST({sql} AS DOUBLE)"
            bucket = f"CAST(floor({x} / 3600.0) AS BIGINT)"
            return f"(CASE WHEN isfinite({x}) THEN {bucket} END)", x, "s", f"isfinite({x})"
        raise InvalidInputError(
            name, "a TIMESTAMP, TIMESTAMPTZ, seconds since the epoch or ISO 8601 text", str(t)
        )

    def _cells(self, plan: Plan) -> tuple[list[str], list[str]]:
        """(SELECT items, names) of the cell columns: bucket, seg_0...."""
        items = [f"{self._time(plan)[0]} AS bucket"]
        for i, feature in enumerate(plan.segments):
            sql, _ = self._typed(
                self._feature_column(plan, feature),
                ("text", "int", "bool"),
                "a text, integer or boolean column (a segment)",
            )
            items.append(f"{sql} AS seg_{i}")
        return items, ["bucket", *[f"seg_{i}" for i in range(len(plan.segments))]]

    @staticmethod
    def _feature_column(plan: Plan, feature: str) -> str:
        column = plan.mapping.features.get(feature)
        if column is None:
            raise InvalidInputError(
                "mapping", f"a column for feature {feature!r} in features", feature
            )
        return column

    def _numeric_sql(self, plan: Plan, feature: str) -> tuple[str, str, str]:
        column = self._feature_column(plan, feature)
        sql, kind = self._typed(column, _NUMERIC, "a numeric column")
        return column, f"CAST({sql} AS DOUBLE)", kind

    def _category_sql(self, plan: Plan, feature: str) -> tuple[str, str]:
        column = self._feature_column(plan, feature)
        sql, kind = self._typed(
            column, ("text", "int", "bool"), "a text, integer or boolean column"
        )
        if kind == "bool":
            return column, f"(CASE WHEN {sql} THEN 'true' WHEN NOT {sql} THEN 'false' END)"
        if kind == "int" and feature in plan.booleans:  # 0 / 1 (checked in discover)
            return column, f"(CASE {sql} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)"
        if kind == "int":
            return column, f"CAST({sql} AS VARCHAR)"
        return column, sql

    def _columns(self, query: str, columns: list[str]) -> Table:
        """A query's result read as columns (no Python per row), typed as ``_to_table``
        types them (NULL: None in object columns, NaN in float ones)."""
        got = self._con.execute(query).fetchnumpy()
        out: Table = {}
        for name, values in zip(columns, got.values(), strict=True):
            if name in _INT_COLUMNS:
                out[name] = np.asarray(values, dtype=np.int64)
            elif name in _FLOAT_COLUMNS:
                out[name] = np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)
            else:
                out[name] = _objects(values.tolist())
        return out

    def _sql(self, query: str) -> list[tuple[Any, ...]]:
        if _DEBUG:
            import time

            t0 = time.perf_counter()
            out = self._con.execute(query).fetchall()
            print(
                f"{time.perf_counter() - t0:7.2f}s {len(out):7d} rows  "
                f"{' '.join(query.split())[:150]}"
            )
            return out
        return self._con.execute(query).fetchall()

    # --------------------------------------------------------------- discovery
    @_readable
    def discover(self, plan: Plan) -> Discovery:
        """Validate every row (the first bad row's ``InvalidInputError``) and find the
        labels of each field."""
        m = plan.mapping
        checks: list[tuple[str, str, str, str]] = []  # (condition, got SQL, what, expected)
        if m.id is not None:
            sql, _ = self._typed(m.id, ("text", "int"), "a text or integer column (ids)")
            checks.append((f"{sql} IS NULL", "CAST(NULL AS VARCHAR)", m.id, "a prediction id"))
        if m.timestamp is not None:
            _, _, _, valid = self._time(plan)
            sql, t = self._column(m.timestamp)
            got = f"CAST({sql} AS VARCHAR)"
            expected = (
                "seconds since the epoch (finite)"
                if _kind(t) in _NUMERIC
                else "an ISO 8601 date-time"
                if _kind(t) == "text"
                else "a timestamp"
            )
            checks.append((f"NOT coalesce({valid}, false)", got, m.timestamp, expected))
        self._cells(plan)  # segment columns checked
        sides: dict[tuple[str, bool], _Side] = {}
        for f in plan.fields:
            for actual in (False, True):
                side = self._side(plan, f, actual)
                if side is None:
                    continue
                sides[(f, actual)] = side
                if side.json is not None:
                    checks.append(
                        (
                            f"{side.json} IS NOT NULL AND NOT {_json_object(side.json)}",
                            f"CAST({side.json} AS VARCHAR)",
                            side.name or "",
                            "a JSON object of label: number (as text), a MAP or a STRUCT",
                        )
                    )
                for _, value, kind, what in side.entries:
                    if kind == "bool":
                        continue
                    checks.append(
                        (
                            f"{value} IS NOT NULL AND NOT "
                            f"({_valid(f'CAST({value} AS DOUBLE)', actual)})",
                            f"CAST({value} AS DOUBLE)",
                            what,
                            "0 or 1" if actual else "a finite number in [0, 1]",
                        )
                    )
        for feature in plan.numeric:
            column, x, kind = self._numeric_sql(plan, feature)
            if kind == "float":
                checks.append((f"NOT isfinite({x})", x, column, "a finite number (NULL: missing)"))
        for feature in plan.categorical:
            column, text = self._category_sql(plan, feature)
            sql, t = self._column(column)
            if feature in plan.booleans and _kind(t) == "int":
                checks.append(
                    (f"{sql} NOT IN (0, 1)", sql, column, "a boolean (true / false, or 1 / 0)")
                )
            checks.append(
                (f"{text} = {_lit(OTHER)}", text, column, f"a category other than {OTHER!r}")
            )
        # min(CASE ...) rather than FILTER / arg_min: several times faster over wide rows;
        # the offending value is read back for the first bad row only
        items = ["count(*)"]
        items += [f"min(CASE WHEN {cond} THEN {ROW} END)" for cond, _, _, _ in checks]
        fixed = [(key, e) for key, side in sides.items() if not side.is_map for e in side.entries]
        for _, (_, value, _, _) in fixed:
            items += [f"min(CASE WHEN {value} IS NOT NULL THEN {ROW} END)", f"count({value})"]
        row = self._sql(f"SELECT {', '.join(items)} FROM lw_src")[0]
        n_rows = int(row[0])
        errors: list[tuple[int, int, InvalidInputError]] = []
        bad = [(int(at), k) for k, at in enumerate(row[1 : 1 + len(checks)]) if at is not None]
        if bad:
            at, k = min(bad)
            _, got_sql, what, expected = checks[k]
            got = self._sql(f"SELECT {got_sql} FROM lw_src WHERE {ROW} = {at}")[0][0]
            errors.append((at, 0, InvalidInputError(what, expected, got, row=at)))
        base = 1 + len(checks)
        found: dict[tuple[str, bool], list[tuple[int, int, str, int]]] = {}
        for j, ((key, (label, _, _, _)), index) in enumerate(
            zip(fixed, _positions(fixed), strict=True)
        ):
            first, count = row[base + 2 * j], row[base + 2 * j + 1]
            if first is not None:
                found.setdefault(key, []).append((int(first), index, label, int(count)))
        passed = None
        if self._engine == "numba" and not errors and sides:
            passed = self._pass(plan, None, validate=True, salt=0)
        for key, side in sides.items():
            if not side.is_map:
                continue
            acc = passed.fields[key[0]] if passed is not None else None
            if acc is None or acc.bad[int(key[1])] != _NO_FIRST:
                found[key] = self._map_labels(side, key[1], errors)
                continue
            stats = acc.stats[int(key[1])]
            found[key] = [
                (int(stats[1, j]) // _POS, int(stats[1, j]) % _POS, label, int(stats[0, j]))
                for j, label in enumerate(acc.labels.names)
                if stats[0, j] > 0
            ]
        if m.id is not None:
            self._duplicates(m.id, errors)
        if errors:
            raise min(errors, key=lambda e: (e[0], e[1]))[2]
        if passed is not None:
            seen = {
                f: {x for key in keys for _, _, x, _ in found.get(key, [])}
                for f, keys in ((f, [(f, False), (f, True)]) for f in passed.fields)
            }
            self._cache = (dataclasses.replace(plan, labels=None), passed, seen)
        labels: tuple[dict[str, list[tuple[str, int]]], ...] = ({}, {})
        for f in plan.fields:
            for actual in (False, True):
                if (f, actual) in sides:
                    ordered = sorted(found.get((f, actual), []))
                    labels[actual][f] = [(label, n) for _, _, label, n in ordered]
        return Discovery(n_rows, labels[0], labels[1])

    def _map_labels(
        self, side: _Side, actual: bool, errors: list[tuple[int, int, InvalidInputError]]
    ) -> list[tuple[int, int, str, int]]:
        """A map side's labels as (first row, position, label, rows), and its first bad
        entry appended to ``errors``."""
        col = side.column
        valid = f"{col} IS NOT NULL"
        if side.json is not None:  # the rows that are not JSON objects have their error
            valid = f"{side.json} IS NOT NULL AND {_json_object(side.json)}"
        v = "CAST(v AS DOUBLE)"
        bad = f"k = '' OR v IS NULL OR NOT ({_valid(v, actual)})"
        at = f"{ROW} * {_POS} + pos"
        rows = self._sql(
            f"SELECT k, min({at}), count(*), min({at}) FILTER (WHERE {bad}), "
            f"arg_min({v}, {at}) FILTER (WHERE {bad}), "
            f"bool_or(k = '') FILTER (WHERE {bad}) "
            f"FROM (SELECT {ROW}, unnest(map_keys({col})) AS k, unnest(map_values({col})) AS v, "
            f"unnest(range(CAST(cardinality({col}) AS BIGINT))) AS pos "
            f"FROM lw_src WHERE {valid}) "
            "GROUP BY k"
        )
        name = side.name or (col.strip('"').replace('""', '"') if col else "")
        worst = min((r for r in rows if r[3] is not None), key=lambda r: r[3], default=None)
        if worst is not None:
            i, pos = divmod(int(worst[3]), _POS)
            if worst[0] == "":
                err = InvalidInputError(name, "a non-empty label name", "", row=i)
            else:
                err = InvalidInputError(
                    f"{name}.{worst[0]}",
                    "0 or 1" if actual else "a finite number in [0, 1]",
                    worst[4],
                    row=i,
                )
            errors.append((i, 1 + pos, err))
        out = []
        for k, first, count, *_ in rows:
            i, pos = divmod(int(first), _POS)
            out.append((i, pos, k, int(count)))
        return out

    def _duplicates(self, id_column: str, errors: list[tuple[int, int, InvalidInputError]]) -> None:
        col = _q(id_column)
        dup = (
            f"SELECT {col} AS id, min({ROW}) AS first FROM lw_src WHERE {col} IS NOT NULL "
            f"GROUP BY {col} HAVING count(*) > 1"
        )
        if not self._sql(f"SELECT count(*) FROM ({dup})")[0][0]:
            return
        i, rid, first = self._sql(
            f"SELECT s.{ROW}, CAST(s.{col} AS VARCHAR), d.first FROM lw_src s JOIN ({dup}) d "
            f"ON s.{col} = d.id AND s.{ROW} > d.first ORDER BY s.{ROW} LIMIT 1"
        )[0]
        errors.append(
            (
                int(i),
                0,
                InvalidInputError(
                    id_column,
                    f"a prediction id unique in the source (also at row {first})",
                    rid,
                    row=int(i),
                ),
            )
        )

    # --------------------------------------------------------------- summaries
    @_readable
    def summarize(self, plan: Plan) -> Summary:
        """The aggregates of the source (``plan.labels`` set: only those labels count)."""
        if plan.labels is None:
            found = self.discover(plan)
            labels = {
                f: list(
                    dict.fromkeys(
                        [x for x, _ in found.prediction_labels.get(f, [])]
                        + [x for x, _ in found.actual_labels.get(f, [])]
                    )
                )
                for f in plan.fields
            }
        else:
            labels = plan.labels
        cells, names = self._cells(plan)
        if self._engine == "numba":
            return self._summarize_pass(plan, labels, cells, names)
        scores: list[Table] = []
        samples: list[Table] = []
        pairs: list[Table] = []
        for f in plan.fields:
            pred, act = self._side(plan, f, False), self._side(plan, f, True)
            if pred is None and act is None:
                continue
            fl = _FieldSQL(self, plan, f, labels.get(f, []), pred, act, cells, names)
            scores.append(fl.scores())
            s, p = fl.samples_and_pairs()
            samples.append(s)
            pairs.append(p)
        numeric, keys, sums = self._numeric(plan, cells, names)
        return Summary(
            segments=list(plan.segments),
            scores=_concat(scores, [*names, "field", "label", "outcome", "bin", "count"]),
            samples=_concat(
                samples, [*names, "field", "labeled", "n_pred", "n_true", "tp", "count"]
            ),
            pairs=_concat(pairs, [*names, "field", "label_a", "label_b", "predicted", "actual"]),
            numeric=numeric,
            numeric_keys=keys,
            numeric_sums=sums,
            categorical=self._categorical(plan, cells, names),
            rows=self._table(
                f"SELECT {', '.join(cells)}, count(*) FROM lw_src GROUP BY ALL",
                [*names, "count"],
            ),
        )

    def _summarize_pass(
        self, plan: Plan, labels: dict[str, list[str]], cells: list[str], names: list[str]
    ) -> Summary:
        """``summarize`` with the compiled pass (the one of ``discover`` when it counted
        the same labels)."""
        passed = self._cached(plan, labels)
        salt = 0
        while True:
            if passed is None:
                passed = self._pass(plan, labels, validate=False, salt=salt)
            rows = self._sql(
                f"SELECT {_cell_hash(cells, passed.salt)} AS h, {', '.join(cells)}, count(*) "
                "FROM lw_src GROUP BY ALL"
            )
            if len({r[0] for r in rows}) == len(rows):
                break
            salt = passed.salt + 1  # two cells of one hash: again, salted otherwise
            passed = None
        scores, samples, pairs, dense = _pass_tables(passed, rows, names, labels)
        numeric, keys, sums = self._numeric(plan, cells, names)
        return Summary(
            segments=list(plan.segments),
            scores=scores,
            dense=dense,
            samples=samples,
            pairs=pairs,
            numeric=numeric,
            numeric_keys=keys,
            numeric_sums=sums,
            categorical=self._categorical(plan, cells, names),
            rows=_to_table([r[1:] for r in rows], [*names, "count"]),
        )

    def _cached(self, plan: Plan, labels: dict[str, list[str]]) -> _Pass | None:
        if self._cache is None:
            return None
        key, passed, seen = self._cache
        if dataclasses.replace(plan, labels=None) != key:
            return None
        for f, acc in passed.fields.items():
            want = set(labels.get(f, []))
            if want != seen[f] or acc.n != len(want):
                return None
            if len(want) <= _MAX_PAIR_LABELS and not acc.pairs_ok:
                return None
        return passed

    def _pass(
        self, plan: Plan, labels: dict[str, list[str]] | None, *, validate: bool, salt: int
    ) -> _Pass:
        """The streamed pass over the dict fields (``labels`` None: every label met)."""
        fields: dict[str, _FieldAcc] = {}
        for f in plan.fields:
            pred, act = self._side(plan, f, False), self._side(plan, f, True)
            if pred is None and act is None:
                continue
            wanted = None if labels is None else labels.get(f, [])
            fields[f] = _FieldAcc(plan, f, pred, act, wanted)
        if not fields:
            return _Pass({}, np.zeros(0, dtype=np.uint64), salt)
        cells, _ = self._cells(plan)
        items = [ROW if validate else "0", f"{_cell_hash(cells, salt)} AS h"]
        for acc in fields.values():
            for k, side in enumerate((acc.pred, acc.act)):
                if side is None:
                    continue
                if side.is_map:
                    template = self._template(side)
                    acc.template_codes[k] = acc.labels.intern(pa_string_array(template))
                    keys = f"map_keys({side.column})"
                    items.append(f"map_values(CAST({side.column} AS MAP(VARCHAR, DOUBLE)))")
                    items.append(
                        f"CASE WHEN {keys} = CAST([{', '.join(map(_lit, template))}] AS "
                        f"VARCHAR[]) THEN NULL ELSE {keys} END"
                    )
                else:
                    items.append(f"coalesce({side.has}, false)")
                    items += acc.fixed_entries[k]
        sql = f"SELECT {', '.join(items)} FROM lw_src"
        if not _DEBUG:
            return _stream(self._con, sql, fields, validate, salt)
        import time

        t0 = time.perf_counter()
        out = _stream(self._con, sql, fields, validate, salt)
        print(f"{time.perf_counter() - t0:7.2f}s pass     {sql[:150]}")
        return out

    def _template(self, side: _Side) -> list[str]:
        """The keys most maps of the side's first rows hold, in order: the rows holding
        these export no keys."""
        rows = self._sql(
            f"SELECT map_keys(c) AS k, count(*) AS n FROM (SELECT {side.column} AS c FROM "
            f"lw_src LIMIT 4096) WHERE c IS NOT NULL GROUP BY k ORDER BY n DESC, k LIMIT 1"
        )
        return list(rows[0][0]) if rows else []

    def _table(self, query: str, columns: list[str]) -> Table:
        return _to_table(self._sql(query), columns)

    def _numeric(
        self, plan: Plan, cells: list[str], names: list[str]
    ) -> tuple[Table, Table, Table]:
        cols_n = [*names, "feature", "missing", "count", "zero", "min", "max"]
        cols_k = [*names, "feature", "sign", "key", "count", "lo", "hi"]
        cols_s = [*names, "feature", "exponent", "mantissa"]
        if not plan.numeric:
            return _to_table([], cols_n), _to_table([], cols_k), _to_table([], cols_s)
        values = ", ".join(
            f"{{'f': {j}, 'x': {self._numeric_sql(plan, feature)[1]}}}"
            for j, feature in enumerate(plan.numeric)
        )
        c = ", ".join(names)
        e0 = "CAST(floor(log2(abs(x))) AS INTEGER)"
        mant = (
            f"CAST(x * pow(2.0, least(53 - {e0}, 1000)) "
            f"* pow(2.0, 53 - {e0} - least(53 - {e0}, 1000)) "
            "AS BIGINT)"
        )
        tiny = _num(_TINY)
        key = f"CAST(ceil(ln(abs(x)) / {_num(plan.log_gamma)}) AS BIGINT)"
        src = (
            f"(SELECT {c}, e.f AS f, e.x AS x "
            f"FROM (SELECT {', '.join(cells)}, unnest([{values}]) AS e FROM lw_src))"
        )
        k = len(names)
        # three aggregations, each small but the keys (cells x keys rows: read as columns)
        rows = self._sql(
            f"SELECT {c}, f, count(*), count(x), count(*) FILTER (WHERE abs(x) < {tiny}), "
            f"min(x + 0.0), max(x + 0.0) FROM {src} GROUP BY ALL"
        )
        out_n = [
            (*r[:k], plan.numeric[r[k]], r[k + 1] - r[k + 2], r[k + 2], r[k + 3], _nan(r[k + 4]),
             _nan(r[k + 5]))
            for r in rows
        ]  # fmt: skip
        rows = self._sql(
            f"SELECT {c}, f, {e0} - 53, sum(CAST({mant} AS HUGEINT)) FROM {src} WHERE x <> 0 "
            "GROUP BY ALL"
        )
        out_s = [(*r[:k], plan.numeric[r[k]], r[k + 1], int(r[k + 2])) for r in rows]
        keys = self._columns(
            f"SELECT {c}, f, CAST(sign(x) AS BIGINT), {key}, count(*), min(abs(x)), max(abs(x)) "
            f"FROM {src} WHERE abs(x) >= {tiny} GROUP BY ALL",
            [*names, "feature", "sign", "key", "count", "lo", "hi"],
        )
        keys["feature"] = np.array(plan.numeric, dtype=object)[keys["feature"].astype(np.int64)]
        return _to_table(out_n, cols_n), keys, _to_table(out_s, cols_s)

    def _categorical(self, plan: Plan, cells: list[str], names: list[str]) -> Table:
        columns = [*names, "feature", "category", "count"]
        if not plan.categorical:
            return _to_table([], columns)
        values = ", ".join(
            f"{{'f': {j}, 'v': {self._category_sql(plan, feature)[1]}}}"
            for j, feature in enumerate(plan.categorical)
        )
        c = ", ".join(names)
        rows = self._sql(
            f"SELECT {c}, e.f, e.v, count(*) FROM "
            f"(SELECT {', '.join(cells)}, unnest([{values}]) AS e FROM lw_src) GROUP BY ALL"
        )
        k = len(names)
        return _to_table(
            [(*r[:k], plan.categorical[r[k]], r[k + 1], r[k + 2]) for r in rows], columns
        )

    @_readable
    def numeric_values(self, plan: Plan, feature: str, lo: float, hi: float) -> Table:
        """The rows whose ``|value|`` of ``feature`` is in [lo, hi]: bucket, seg_*, value."""
        cells, names = self._cells(plan)
        _, x, _ = self._numeric_sql(plan, feature)
        return self._table(
            f"SELECT {', '.join(cells)}, {x} FROM lw_src "
            f"WHERE abs({x}) BETWEEN {_num(lo)} AND {_num(hi)} ORDER BY {ROW}",
            [*names, "value"],
        )

    # ------------------------------------------------------------------ records
    def records(
        self, plan: Plan, batch_size: int = 5000
    ) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        """The rows as SDK records, in row order, per batch: (predictions, actuals)."""
        m = plan.mapping
        if m.id is None:
            raise InvalidInputError("mapping", "an id column (id=...) to keep raw rows", None)
        id_sql, _ = self._typed(m.id, ("text", "int"), "a text or integer column (ids)")
        _, ts_sql, unit, _ = self._time(plan)
        items = [f"CAST({id_sql} AS VARCHAR)", ts_sql]
        features = list(m.features)
        for name in features:
            sql, t = self._column(m.features[name])
            kind = _kind(t)
            items.append(
                f"CAST({sql} AS DOUBLE)"
                if kind == "decimal"
                else sql
                if kind in ("int", "float", "bool", "text")
                else f"CAST({sql} AS VARCHAR)"
            )
        shapes: list[tuple[str, bool, _Side]] = []
        for f in m.fields():
            for actual in (False, True):
                side = self._side(plan, f, actual)
                if side is None:
                    continue
                shapes.append((f, actual, side))
                if side.is_map:
                    items.append(
                        f"map_from_entries(list_transform(map_entries({side.column}), "
                        "lambda e: {'k': e.key, 'v': CAST(e.value AS DOUBLE)}))"
                    )
                else:
                    items += [side.has] + [f"CAST({v} AS DOUBLE)" for _, v, _, _ in side.entries]
        result = self._con.execute(f"SELECT {', '.join(items)} FROM lw_src")
        while True:
            batch = result.fetchmany(batch_size)
            if not batch:
                return
            preds: list[dict[str, Any]] = []
            acts: list[dict[str, Any]] = []
            for r in batch:
                ts = r[1] / 1e6 if unit == "us" else float(r[1])
                feats = {name: r[2 + j] for j, name in enumerate(features) if r[2 + j] is not None}
                k = 2 + len(features)
                p: dict[str, Any] = {}
                a: dict[str, Any] = {}
                for f, actual, side in shapes:
                    target = a if actual else p
                    if side.is_map:
                        if r[k] is not None:
                            target[f] = dict(r[k])
                        k += 1
                    else:
                        n = len(side.entries)
                        if r[k]:
                            target[f] = {
                                label: v
                                for (label, _, _, _), v in zip(
                                    side.entries, r[k + 1 : k + 1 + n], strict=True
                                )
                                if v is not None
                            }
                        k += 1 + n
                rec: dict[str, Any] = {"id": r[0], "timestamp": ts, "predictions": p}
                if feats:
                    rec["features"] = feats
                preds.append(rec)
                if a:
                    acts.append({"id": r[0], "actuals": a})
            yield preds, acts

    def _enum(self, labels: list[str]) -> str:
        self._enums += 1
        name = f"lw_labels_{self._enums}"
        self._con.execute(f"CREATE TYPE {name} AS ENUM ({', '.join(map(_lit, labels))})")
        return name


def _cell_hash(cells: list[str], salt: int) -> str:
    """SQL: the hash of a row's cell (``cells``: its SELECT items)."""
    exprs = [item.rsplit(" AS ", 1)[0] for item in cells]
    return f"hash({', '.join(exprs)}, {salt})"


def _valid(x: str, actual: bool) -> str:
    """SQL: ``x`` is a valid actual (0 or 1) or score (in [0, 1]; NaN is not)."""
    return f"({x} = 0 OR {x} = 1)" if actual else f"({x} >= 0 AND {x} <= 1 AND NOT isnan({x}))"


def _positions(fixed: list[tuple[Any, tuple[str, str, str, str]]]) -> list[int]:
    """Each fixed entry's position within its side."""
    out: list[int] = []
    seen: dict[Any, int] = {}
    for key, _ in fixed:
        out.append(seen.get(key, 0))
        seen[key] = out[-1] + 1
    return out


def _nan(x: Any) -> float:
    return math.nan if x is None else float(x)


class _FieldSQL:
    """The SQL of one dict field's aggregates."""

    def __init__(
        self,
        src: DuckDBSource,
        plan: Plan,
        field: str,
        labels: list[str],
        pred: _Side | None,
        act: _Side | None,
        cells: list[str],
        names: list[str],
    ) -> None:
        self.src, self.field, self.labels = src, field, list(labels)
        self.pred, self.act = pred, act
        self.cells, self.names = cells, names
        self.index = {x: j for j, x in enumerate(self.labels)}
        self.n = len(self.labels)
        self.words = max(1, -(-self.n // 64))
        self.edges = [float(x) for x in plan.edges[field]]
        self.thresholds = [plan.threshold(field, x) for x in self.labels]
        needs_enum = (pred is not None and pred.is_map) or (act is not None and act.is_map)
        self.enum = src._enum(self.labels) if needs_enum and self.n else None

    # per row SQL ---------------------------------------------------------
    def _code(self, key: str) -> str:
        if self.enum is None:
            return "CAST(NULL AS INTEGER)"
        return f"CAST(enum_code(TRY_CAST({key} AS {self.enum})) AS INTEGER)"

    def _threshold(self, code: str) -> str:
        distinct = set(self.thresholds)
        if len(distinct) <= 1:
            return _num(distinct.pop() if distinct else 0.5)
        return f"[{', '.join(map(_num, self.thresholds))}][{code} + 1]"

    def _mask(self, side: _Side | None, word: int, kind: str) -> str:
        """SQL of a row's mask word ``word`` of labels: ``kind`` "present", "pred"
        (score above threshold) or "true" (value 1)."""
        if side is None or not self.n:
            return "CAST(0 AS UBIGINT)"
        if side.is_map:
            code = self._code("e.key")
            cond = f"{code} // 64 = {word}" if self.words > 1 else f"{code} IS NOT NULL"
            v = "CAST(e.value AS DOUBLE)"
            if kind == "pred":
                cond += f" AND {v} > {self._threshold(code)}"
            elif kind == "true":
                cond += f" AND {v} = 1"
            return (
                f"coalesce(list_aggregate(list_transform(list_filter(map_entries({side.column}), "
                f"lambda e: {cond}), lambda e: CAST(1 AS UBIGINT) << ({code} % 64)), 'bit_or'), "
                "CAST(0 AS UBIGINT))"
            )
        terms = []
        for label, value, _, _ in side.entries:
            j = self.index.get(label)
            if j is None or j // 64 != word:
                continue
            v = f"CAST({value} AS DOUBLE)"
            cond = f"{value} IS NOT NULL"
            if kind == "pred":
                cond = f"{v} > {_num(self.thresholds[j])}"
            elif kind == "true":
                cond = f"{v} = 1"
            terms.append(f"CASE WHEN {cond} THEN CAST({1 << (j % 64)} AS UBIGINT) ELSE 0 END")
        return "(" + " | ".join(terms) + ")" if terms else "CAST(0 AS UBIGINT)"

    def _rows(self, masks: dict[str, tuple[_Side | None, str]], extra: list[str]) -> str:
        """SELECT of the per-row columns: cells, hp, ha, masks ``name_w``, ``extra``."""
        hp = self.pred.has if self.pred else "false"
        ha = self.act.has if self.act else "false"
        items = [*self.cells, f"{hp} AS hp", f"coalesce({ha}, false) AS ha", *extra]
        for name, (side, kind) in masks.items():
            items += [f"{self._mask(side, w, kind)} AS {name}_{w}" for w in range(self.words)]
        return f"SELECT {', '.join(items)} FROM lw_src"

    def _word(self, name: str, code: str) -> str:
        if self.words == 1:
            return f"{name}_0"
        return f"[{', '.join(f'{name}_{w}' for w in range(self.words))}][{code} // 64 + 1]"

    @staticmethod
    def _entries(side: _Side, index: dict[str, int], value_name: str) -> tuple[str, str]:
        """(per-row SELECT item ``ents``, SELECT item unnesting it into ``k`` or ``c``, and
        ``value_name``) of a side's entries."""
        if side.is_map:
            return (
                f"{side.column} AS ents",
                "unnest(map_keys(ents)) AS k, "
                f"CAST(unnest(map_values(ents)) AS DOUBLE) AS {value_name}",
            )
        parts = [
            f"{{'c': {index[label]}, '{value_name}': CAST({value} AS DOUBLE)}}"
            for label, value, _, _ in side.entries
            if label in index
        ]
        if not parts:
            return (
                "NULL AS ents",
                f"CAST(NULL AS INTEGER) AS c, CAST(NULL AS DOUBLE) AS {value_name}",
            )
        return f"[{', '.join(parts)}] AS ents", "unnest(ents, recursive := true)"

    # aggregates -----------------------------------------------------------
    def scores(self) -> Table:
        names = ", ".join(self.names)
        columns = [*self.names, "field", "label", "outcome", "bin", "count"]
        if not self.n:
            return _to_table([], columns)
        m = len(self.edges)
        cells, lut, tables = _lookup(self.edges)
        lut_sql = f"[{', '.join(map(str, lut))}]"
        u = f"CAST(floor(s * {cells}) AS INTEGER) + 1"
        bin_sql = f"{lut_sql}[u]" + "".join(
            f" + CAST(s > [{', '.join(map(_num, t))}][u] AS INTEGER)" for t in tables
        )
        parts = []
        if self.pred is not None:
            ents, entries = self._entries(self.pred, self.index, "s")
            rows = self._rows({"am": (self.act, "true")}, [ents])
            code = self._code("k") if self.pred.is_map else "c"
            am = self._word("am", "c")
            am_cols = ", ".join(f"am_{w}" for w in range(self.words))
            parts.append(
                f"""SELECT {names}, c * {3 * m}
                    + CASE WHEN ha THEN CAST(({am} >> (c % 64)) & 1 AS INTEGER)
                    ELSE 2 END * {m} + {bin_sql} AS code
                FROM (SELECT *, {u} AS u FROM (
                    SELECT {names}, ha, {am_cols}, {code} AS c, s
                    FROM (SELECT {names}, ha, {am_cols},
                        {entries} FROM ({rows}) WHERE hp)
                ) WHERE c IS NOT NULL AND s IS NOT NULL)"""
            )
        if self.act is not None:
            ents, entries = self._entries(self.act, self.index, "v")
            rows = self._rows({"pp": (self.pred, "present")}, [ents])
            code = self._code("k") if self.act.is_map else "c"
            pp = self._word("pp", "c")
            pp_cols = ", ".join(f"pp_{w}" for w in range(self.words))
            parts.append(
                f"""SELECT {names}, c * {3 * m} + CAST(v AS INTEGER) * {m} AS code
                FROM (SELECT {names}, {pp_cols}, {code} AS c, v
                    FROM (SELECT {names}, {pp_cols}, {entries}
                        FROM ({rows}) WHERE ha))
                WHERE c IS NOT NULL AND v IS NOT NULL AND (({pp} >> (c % 64)) & 1) = 0"""
            )
        union = " UNION ALL ".join(parts)
        rows_out = self.src._sql(f"SELECT {names}, code, count(*) FROM ({union}) GROUP BY ALL")
        k = len(self.names)
        out = []
        for r in rows_out:
            label, rest = divmod(int(r[k]), 3 * m)
            outcome, b = divmod(rest, m)
            out.append((*r[:k], self.field, self.labels[label], outcome, b, r[k + 1]))
        return _to_table(out, columns)

    def samples_and_pairs(self) -> tuple[Table, Table]:
        names = ", ".join(self.names)
        k = len(self.names)
        w = range(self.words)
        rows = self._rows({"pt": (self.pred, "pred"), "am": (self.act, "true")}, [])
        n_pred = " + ".join(f"bit_count(pt_{i})" for i in w)
        n_true = " + ".join(f"bit_count(am_{i})" for i in w)
        tp = " + ".join(f"bit_count(pt_{i} & am_{i})" for i in w)
        result = self.src._sql(
            f"SELECT {names}, ha, {n_pred} AS n_pred, "
            f"CASE WHEN ha THEN {n_true} ELSE 0 END AS n_true, "
            f"CASE WHEN ha THEN {tp} ELSE 0 END AS tp, count(*) "
            f"FROM ({rows}) WHERE hp OR ha GROUP BY ALL"
        )
        samples = [(*r[:k], self.field, int(r[k]), *r[k + 1 :]) for r in result]
        s_cols = [*self.names, "field", "labeled", "n_pred", "n_true", "tp", "count"]
        p_cols = [*self.names, "field", "label_a", "label_b", "predicted", "actual"]
        if not 0 < self.n <= _MAX_PAIR_LABELS:
            return _to_table(samples, s_cols), _to_table([], p_cols)
        return _to_table(samples, s_cols), _to_table(self._pairs(), p_cols)

    def _pairs(self) -> list[tuple[Any, ...]]:
        """Per cell, side (predicted, actual) and label ``a`` held: how many of those
        rows hold each label ``b`` (one small-integer sum per ``b``)."""
        names = ", ".join(self.names)
        k = len(self.names)
        parts = []
        for kind, mask, flag in ((0, "pt", "hp"), (1, "am", "ha")):
            side = self.pred if kind == 0 else self.act
            rows = self._rows({mask: (side, "pred" if kind == 0 else "true")}, [])
            words = ", ".join(f"{mask}_{i}" for i in range(self.words))
            bits = ", ".join(
                f"CAST(({mask}_{b // 64} >> {b % 64}) & 1 AS INTEGER) AS b{b}"
                for b in range(self.n)
            )
            nonzero = " OR ".join(f"{mask}_{i} <> 0" for i in range(self.words))
            parts.append(
                f"SELECT {names}, {kind} AS kind, a, {', '.join(f'b{b}' for b in range(self.n))} "
                f"FROM (SELECT {names}, {words}, {bits}, unnest(range({self.n})) AS a "
                f"FROM ({rows}) WHERE {flag} AND ({nonzero})) "
                f"WHERE (({self._word(mask, 'a')} >> (a % 64)) & 1) = 1"
            )
        result = self.src._sql(
            f"SELECT {names}, kind, a, {', '.join(f'sum(b{b})' for b in range(self.n))} "
            f"FROM ({' UNION ALL '.join(parts)}) GROUP BY ALL"
        )
        counts: dict[tuple[Any, ...], Any] = {}
        for r in result:
            cell = tuple(r[:k])
            table = counts.get(cell)
            if table is None:
                table = counts[cell] = np.zeros((2, self.n, self.n), dtype=np.int64)
            table[int(r[k]), int(r[k + 1])] = [int(x) for x in r[k + 2 :]]
        out = []
        for cell, table in counts.items():
            a_idx, b_idx = np.nonzero(np.triu((table[0] > 0) | (table[1] > 0)))
            for a, b in zip(a_idx.tolist(), b_idx.tolist(), strict=True):
                out.append(
                    (
                        *cell,
                        self.field,
                        self.labels[a],
                        self.labels[b],
                        int(table[0, a, b]),
                        int(table[1, a, b]),
                    )
                )
        return out
