"""The SQL of the DuckDB engine (``_duckdb``): SQL text, the mapping's columns as SQL,
and the per-field SQL engine.

- SQL text: identifiers and literals (``_q``, ``_lit``, ``_num``), DuckDB types as kinds
  (``_kind``), and the expressions discovery and the passes share (``_floordiv``,
  ``_json_object``, ``_valid``, ``_cell_hash``);
- ``_Side``: one side (prediction or actual) of a dict field, as SQL;
- ``_ColumnSQL``: a base of ``DuckDBSource``, the mapped columns as checked SQL
  expressions (an ``InvalidInputError`` naming a column of the wrong type), from the
  source's column types alone;
- ``_FieldSQL``: one dict field's aggregates (scores, samples, pairs) in SQL, the
  ``"sql"`` engine (the compiled one: ``_duckdb_pass``).

How the exact parts of ``_FieldSQL`` are computed in SQL:

- bins: ``np.searchsorted(edges, s, side="left")`` is the number of edges below ``s``.
  On a uniform grid of ``cells`` cells (``u = floor(s * cells)``, monotone in ``s`` as
  IEEE multiplication is) every edge of a lower cell is below ``s`` and every edge of a
  higher one above, so the bin is ``lut[u]`` (the edges of the lower cells) plus one
  comparison per edge of cell ``u`` (one, for a grid fine enough).
- label sets: per row and field, 64-bit masks of the labels present, predicted (score
  above threshold) and true (actual 1), labels numbered by an ENUM type (a hash look-up
  per map entry); samples are bit counts, pairs are counted per pair of bytes of the
  masks (at most one fact per pair of non-empty bytes) and expanded in NumPy.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from labelwatch.errors import InvalidInputError
from labelwatch.sources._duckdb_pass import _MAX_PAIR_LABELS, _lookup, _to_table
from labelwatch.sources._plan import Plan, Table

if TYPE_CHECKING:
    from labelwatch.sources._duckdb import DuckDBSource

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
_HOUR_US = 3_600_000_000


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
        plain: str | None = None,
    ) -> None:
        self.column = column  # MAP column (quoted SQL, or a MAP expression) or None
        self.value_kind = value_kind
        self.entries = entries or []  # (label, value SQL, kind, name in errors)
        self.has = has
        self.name = name  # the source column, in errors
        self.json = json  # a text column of JSON objects (quoted SQL) the MAP is cast from
        self.plain = plain  # the source's MAP column itself (its name), not an expression

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


def _cell_hash(cells: list[str], salt: int) -> str:
    """SQL: the hash of a row's cell (``cells``: its SELECT items)."""
    exprs = [item.rsplit(" AS ", 1)[0] for item in cells]
    return f"hash({', '.join(exprs)}, {salt})"


def _valid(x: str, actual: bool) -> str:
    """SQL: ``x`` is a valid actual (0 or 1) or score (in [0, 1]; NaN is not)."""
    return f"({x} = 0 OR {x} = 1)" if actual else f"({x} >= 0 AND {x} <= 1 AND NOT isnan({x}))"


class _ColumnSQL:
    """The mapped columns of a source as checked SQL expressions (a base of
    ``DuckDBSource``: ``_types`` is its column name -> DuckDB type)."""

    _types: dict[str, Any]

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
                return _Side(
                    column=sql, value_kind=value_kind, has=f"{sql} IS NOT NULL", plain=single
                )
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
