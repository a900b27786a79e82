"""The DuckDB engine of ``labelwatch ingest --source``: files or a SQL query -> aggregates.

Every pass is one SQL query that DuckDB streams over the source (Parquet, CSV, Arrow IPC
files, an in-memory Arrow table, or a SQL query's rows spooled to a temporary Parquet
file); only small aggregates come back to Python (``records`` and ``numeric_values``
excepted). Semantics: see ``labelwatch.sources._plan``.

The mapped columns as SQL and the per-field SQL engine (bins, label sets): see
``labelwatch.sources._duckdb_sql``; the compiled pass: ``_duckdb_pass``.

How the exact parts are computed in SQL:

- exact sums: ``x = m * 2**e`` with ``e = floor(log2|x|) - 53`` (the logarithm may be one
  off: ``m`` is then an integer below ``2**55`` all the same), ``m`` scaled in two
  power-of-two steps (exact), summed as HUGEINT per exponent.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb
import numpy as np

from labelwatch.errors import InvalidInputError
from labelwatch.metrics._categorical import OTHER
from labelwatch.sources._duckdb_open import ROW, _Opening
from labelwatch.sources._duckdb_pass import (
    _FLOAT_COLUMNS,
    _INT_COLUMNS,
    _MAX_PAIR_LABELS,
    _NO_FIRST,
    _cell_columns,
    _concat,
    _FieldAcc,
    _objects,
    _Pass,
    _pass_tables,
    _stream,
    _to_table,
    pa_string_array,
)
from labelwatch.sources._duckdb_sql import (
    _NUMERIC,
    _cell_hash,
    _ColumnSQL,
    _FieldSQL,
    _json_object,
    _kind,
    _lit,
    _num,
    _q,
    _Side,
    _valid,
)
from labelwatch.sources._parquet_read import OutOfStep, ParquetPlan, pyarrow_plan
from labelwatch.sources._pass_kernels import _POS, HAVE_NUMBA
from labelwatch.sources._pass_numeric import NumericAcc, fits
from labelwatch.sources._pass_threads import _small_pages
from labelwatch.sources._plan import DenseScores, Discovery, Plan, Summary, Table

if TYPE_CHECKING:
    import pyarrow

__all__ = ["DuckDBSource"]

_TINY = float(np.finfo(np.float64).tiny)
_DEBUG = bool(os.environ.get("LABELWATCH_DUCKDB_DEBUG"))
_SORTED_HASHES = 1 << 25  # ids checked by sorting their hashes (8 bytes each) up to this many


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


class DuckDBSource(_Opening, _ColumnSQL):
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
        self._parquet_files: list[str] | None = None  # the files of ``lw_src``, if Parquet
        self._key_paths: dict[tuple[str, ...], Any] = {}  # columns -> their map key paths
        wanted = engine or os.environ.get("LABELWATCH_DUCKDB_ENGINE", "").strip().lower()
        if wanted not in ("", "numba", "sql"):
            raise InvalidInputError("engine", "'numba' or 'sql'", wanted)
        self._engine = "numba" if HAVE_NUMBA and wanted != "sql" else "sql"
        self._cache: tuple[Plan, _Pass, dict[str, set[str]]] | None = None
        self._prepared: _Prepared | None = None  # the summary's tables, built by discover
        self._shared = True  # lw_src readable from another cursor (nothing registered)
        try:
            self._con.execute("SET TimeZone = 'UTC'")
            self._con.execute("SET enable_progress_bar = false")  # stdout is the caller's
            if table is not None:
                self._con.register("lw_table", table)
                self._shared = False
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

    # ------------------------------------------------------------------ queries
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

    def _sql(
        self, query: str, con: duckdb.DuckDBPyConnection | None = None
    ) -> list[tuple[Any, ...]]:
        con = self._con if con is None else con
        if _DEBUG:
            import time

            t0 = time.perf_counter()
            out = con.execute(query).fetchall()
            print(
                f"{time.perf_counter() - t0:7.2f}s {len(out):7d} rows  "
                f"{' '.join(query.split())[:150]}"
            )
            return out
        return con.execute(query).fetchall()

    # --------------------------------------------------------------- discovery
    @_readable
    @_small_pages()
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
        beside = _Beside(self, plan, 0, m.id if self._shared else None, errors, n_rows)
        try:
            passed = None
            if self._engine == "numba" and not errors and sides:
                passed = self._pass(plan, None, validate=True, salt=0, ahead=beside.start)
            prepared = self._found(plan, sides, passed, errors, found, beside)
            if m.id is not None and not beside.checks_ids:
                self._duplicates(m.id, errors, n_rows)
        finally:
            beside.close()
        if errors:
            raise min(errors, key=lambda e: (e[0], e[1]))[2]
        if passed is not None:
            seen = {
                f: {x for key in keys for _, _, x, _ in found.get(key, [])}
                for f, keys in ((f, [(f, False), (f, True)]) for f in passed.fields)
            }
            self._cache = (dataclasses.replace(plan, labels=None), passed, seen)
            self._prepared = prepared
        labels: tuple[dict[str, list[tuple[str, int]]], ...] = ({}, {})
        for f in plan.fields:
            for actual in (False, True):
                if (f, actual) in sides:
                    ordered = sorted(found.get((f, actual), []))
                    labels[actual][f] = [(label, n) for _, _, label, n in ordered]
        return Discovery(n_rows, labels[0], labels[1])

    def _found(
        self,
        plan: Plan,
        sides: dict[tuple[str, bool], _Side],
        passed: _Pass | None,
        errors: list[tuple[int, int, InvalidInputError]],
        found: dict[tuple[str, bool], list[tuple[int, int, str, int]]],
        beside: _Beside,
    ) -> _Prepared | None:
        """``discover`` after its pass: the labels of the map sides into ``found``, and
        the summary's tables when the rows were valid (the duplicate ids checked beside
        them: ``beside.finish``)."""
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
        prepared = None
        if passed is not None and not errors:
            beside.start()
            prepared = self._prepare(plan, passed, beside.got)
        beside.finish()
        return prepared

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

    def _duplicates(
        self,
        id_column: str,
        errors: list[tuple[int, int, InvalidInputError]],
        n_rows: int,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        """A duplicate id (the first row holding an id met before) into ``errors``."""
        col = _q(id_column)
        # distinct hashes first (faster than grouping the ids): as many as rows, no two
        # equal ids; else the ids themselves are grouped
        if n_rows <= _SORTED_HASHES:  # the hashes sorted by NumPy: 10M ids 1.1 -> 0.6 s
            cur = self._con if con is None else con
            found = cur.execute(f"SELECT hash({col}) FROM lw_src").fetchnumpy()
            hashes = np.sort(next(iter(found.values())))  # NULL ids: one hash, checked below
            if not (hashes[1:] == hashes[:-1]).any():
                return
        else:
            distinct = f"SELECT count({col}) - count(DISTINCT hash({col})) FROM lw_src"
            if not self._sql(distinct, con)[0][0]:
                return
        dup = (
            f"SELECT {col} AS id, min({ROW}) AS first FROM lw_src WHERE {col} IS NOT NULL "
            f"GROUP BY {col} HAVING count(*) > 1"
        )
        if not self._sql(f"SELECT count(*) FROM ({dup})", con)[0][0]:
            return
        i, rid, first = self._sql(
            f"SELECT s.{ROW}, CAST(s.{col} AS VARCHAR), d.first FROM lw_src s JOIN ({dup}) d "
            f"ON s.{col} = d.id AND s.{ROW} > d.first ORDER BY s.{ROW} LIMIT 1",
            con,
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
    @_small_pages()
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
        the same labels, and its tables when ``discover`` built them)."""
        passed = self._cached(plan, labels)
        prepared = self._prepared if passed is not None else None
        self._prepared = None  # the tables go to one summary: the next builds its own
        salt = 0
        while prepared is None:
            beside = _Beside(self, plan, salt, None, [], 0)
            try:
                if passed is None:
                    passed = self._pass(plan, labels, validate=False, salt=salt, ahead=beside.start)
                prepared = self._prepare(plan, passed, beside.got)
            finally:
                beside.close()
            if prepared is None:  # two cells of one hash: again, salted otherwise
                salt = passed.salt + 1
                passed = None
        numeric = prepared.numeric
        if numeric is None:
            numeric = self._numeric(plan, cells, names)
        return Summary(
            segments=list(plan.segments),
            scores=prepared.scores,
            dense=prepared.dense,
            samples=prepared.samples,
            pairs=prepared.pairs(labels),
            numeric=numeric[0],
            numeric_keys=numeric[1],
            numeric_sums=numeric[2],
            categorical=prepared.categorical,
            rows=_to_table([r[1:] for r in prepared.rows], [*names, "count"]),
        )

    def _grouped_sql(self, plan: Plan, salt: int) -> str:
        """The query of the cells' rows and the categorical counts (``_prepare``): one
        scan, grouped by cell and each categorical feature's value in turn (grouping
        sets), the cells' hashes computed once per cell. 10M rows, one categorical
        feature: two scans (the second unnesting a list of the features) 0.54 + 0.53 s,
        one scan unnesting 0.72 s, this 0.29 s (alone)."""
        cells, names = self._cells(plan)
        h = _cell_hash(names, salt)  # of the grouped cells: the rows' hashes
        values = [self._category_sql(plan, feature)[1] for feature in plan.categorical]
        if not values:
            return (
                f"SELECT {h} AS h, {', '.join(names)}, n FROM "
                f"(SELECT {', '.join(cells)}, count(*) AS n FROM lw_src GROUP BY ALL)"
            )
        v = [f"__lw_v{j}" for j in range(len(values))]
        inner = ", ".join([*cells, *(f"{x} AS {a}" for x, a in zip(values, v, strict=True))])
        sets = ", ".join(f"({', '.join([*names, a])})" for a in v)
        return (
            f"SELECT {h}, {', '.join(names)}, {', '.join(v)}, grouping_id({', '.join(v)}), "
            f"count(*) FROM (SELECT {inner} FROM lw_src) GROUP BY GROUPING SETS ({sets})"
        )

    def _prepare(
        self, plan: Plan, passed: _Pass, got: list[tuple[Any, ...]] | None = None
    ) -> _Prepared | None:
        """The tables of a pass (None: two cells of one hash, the pass to be salted
        otherwise); ``got``: the rows of ``_grouped_sql`` for the pass' salt, if run
        already. The cells' rows those grouped by the first categorical feature."""
        _, names = self._cells(plan)
        if got is None:
            got = self._sql(self._grouped_sql(plan, passed.salt))
        counted: list[Any] = []
        if not plan.categorical:
            rows = got
        else:
            k, f = len(names), len(plan.categorical)
            per: dict[tuple[Any, ...], int] = {}
            for r in got:
                g = int(r[-2])  # the features not grouped by: their bits set, the first highest
                j = next(j for j in range(f) if not (g >> (f - 1 - j)) & 1)
                counted.append((*r[1 : 1 + k], j, r[1 + k + j], r[-1]))
                if j == 0:  # a cell's rows: its counts by the first feature's values
                    per[r[: 1 + k]] = per.get(r[: 1 + k], 0) + r[-1]
            rows = [(*key, n) for key, n in per.items()]
        if len({r[0] for r in rows}) != len(rows):
            return None
        scores, samples, dense, pairs = _pass_tables(passed, rows, names)
        numeric = None
        if passed.numeric is not None and passed.numeric.usable:
            numeric = passed.numeric.tables(
                len(passed.cell_hash), _cell_columns(passed, rows, names)
            )
        categorical = self._categorical_table(plan, names, counted)
        return _Prepared(rows, scores, samples, dense, pairs, numeric, categorical)

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
        self,
        plan: Plan,
        labels: dict[str, list[str]] | None,
        *,
        validate: bool,
        salt: int,
        arrow: bool = True,
        ahead: Callable[[], None] | None = None,
    ) -> _Pass:
        """The streamed pass over the dict fields (``labels`` None: every label met;
        ``arrow``: MAP columns of Parquet files read by pyarrow when they can be;
        ``ahead``: called once the last batch is encoded, see ``_stream``)."""
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
        numeric = None
        if plan.numeric and fits(len(plan.numeric), plan.log_gamma):
            numeric = NumericAcc(list(plan.numeric), plan.log_gamma)
            items += [self._numeric_sql(plan, x)[1] for x in plan.numeric]
        parquet = None
        if arrow and self._parquet_files and os.environ.get("LABELWATCH_PARQUET_MAPS") != "0":
            parquet = pyarrow_plan(self._parquet_files, fields, self._key_paths)
        if parquet is not None:
            sql = f"SELECT {ROW}, {', '.join(items[1:])} FROM lw_src"
            try:
                return self._run_pass(sql, fields, validate, salt, parquet, numeric, ahead)
            except OutOfStep:  # read by DuckDB instead, with new accumulators
                return self._pass(
                    plan, labels, validate=validate, salt=salt, arrow=False, ahead=ahead
                )
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
        return self._run_pass(sql, fields, validate, salt, None, numeric, ahead)

    def _run_pass(
        self,
        sql: str,
        fields: dict[str, _FieldAcc],
        validate: bool,
        salt: int,
        parquet: ParquetPlan | None = None,
        numeric: NumericAcc | None = None,
        ahead: Callable[[], None] | None = None,
    ) -> _Pass:
        import time

        t0 = time.perf_counter()
        try:
            out = _stream(self._con, sql, fields, validate, salt, parquet, numeric, ahead)
        finally:
            if parquet is not None:  # pyarrow's pool keeps what the batches freed
                import pyarrow as pa

                pa.default_memory_pool().release_unused()
        if _DEBUG:
            how = "pass" if parquet is None else "pass (pyarrow maps)"
            print(f"{time.perf_counter() - t0:7.2f}s {how} {sql[:150]}")
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
        query = self._categorical_sql(plan, cells, names)
        return self._categorical_table(plan, names, [] if query is None else self._sql(query))

    def _categorical_sql(self, plan: Plan, cells: list[str], names: list[str]) -> str | None:
        """The categorical counts' query (None: no categorical feature)."""
        if not plan.categorical:
            return None
        values = ", ".join(
            f"{{'f': {j}, 'v': {self._category_sql(plan, feature)[1]}}}"
            for j, feature in enumerate(plan.categorical)
        )
        c = ", ".join(names)
        return (
            f"SELECT {c}, e.f, e.v, count(*) FROM "
            f"(SELECT {', '.join(cells)}, unnest([{values}]) AS e FROM lw_src) GROUP BY ALL"
        )

    def _categorical_table(self, plan: Plan, names: list[str], rows: list[Any]) -> Table:
        k = len(names)
        return _to_table(
            [(*r[:k], plan.categorical[r[k]], r[k + 1], r[k + 2]) for r in rows],
            [*names, "feature", "category", "count"],
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


class _Beside:
    """What a pass' summary needs of the source besides the pass, started once the
    pass' last batch is encoded (``start``, called by the pass), while its last chunks
    are added up on one core: the duplicate ids checked on a second cursor in a thread
    (into ``errors``; ``id_column`` None: not here), and the cells' grouped query
    (``_grouped_sql``) on another cursor (``got``). A source DuckDB alone reads (a
    registered table: ``_shared`` false) runs neither here."""

    def __init__(
        self,
        src: DuckDBSource,
        plan: Plan,
        salt: int,
        id_column: str | None,
        errors: list[tuple[int, int, InvalidInputError]],
        n_rows: int,
    ) -> None:
        self.src, self.plan, self.salt = src, plan, salt
        self.id_column, self.errors, self.n_rows = id_column, errors, n_rows
        self.checks_ids = False  # the duplicate check started here
        self.got: list[tuple[Any, ...]] | None = None
        self._started = False
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._pool: ThreadPoolExecutor | None = None
        self._job: Any = None

    def start(self) -> None:
        """Start the duplicate check, run the grouped query (once)."""
        if self._started or not self.src._shared:
            return
        self._started = True
        if self.id_column is not None:
            cursor = self.src._con.cursor()
            self._cursors.append(cursor)
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="labelwatch-duckdb-side")
            self._job = self._pool.submit(
                self.src._duplicates, self.id_column, self.errors, self.n_rows, cursor
            )
            self.checks_ids = True
        cursor = self.src._con.cursor()
        self._cursors.append(cursor)
        self.got = self.src._sql(self.src._grouped_sql(self.plan, self.salt), cursor)

    def finish(self) -> None:
        """Wait for the duplicate check (its error, if any, in ``errors``)."""
        if self._job is not None:
            job, self._job = self._job, None
            job.result()

    def close(self) -> None:
        """The check stopped if still running (a failure elsewhere), the cursors
        closed."""
        try:
            if self._job is not None:
                self._job.cancel()
                for cursor in self._cursors:
                    cursor.interrupt()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
        finally:
            for cursor in self._cursors:
                cursor.close()
            self._cursors.clear()


@dataclasses.dataclass
class _Prepared:
    """A pass' tables for its summary (``_prepare``): the cells (hash, cell..., count),
    scores, samples, dense scores, ``pairs(order)``, the numeric tables (None: by SQL)
    and the categorical counts."""

    rows: list[tuple[Any, ...]]
    scores: Table
    samples: Table
    dense: list[DenseScores]
    pairs: Callable[[dict[str, list[str]]], Table]
    numeric: tuple[Table, Table, Table] | None
    categorical: Table


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
