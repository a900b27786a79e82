"""The contract between a data source's engine (DuckDB, Spark) and the monitor.

An engine reads a source (files or a SQL query) through a column ``Mapping`` and hands
back small aggregates: a ``Discovery`` (the labels found, after validating every row) and
a ``Summary`` (counts per hour bucket and segment combination). ``_apply`` turns a
``Summary`` into exactly the cells that logging the same rows through the SDK writes:
score cells, sample sums, pair cells and feature cells. Only these aggregates leave the
engine; the rows stay where they are.

Conventions every engine follows:

- A *row* is one prediction. Rows are numbered from 0 in source order: files in sorted
  path order, then rows in file order; a SQL query's rows in result order. Errors name
  the row by that number.
- ``bucket`` = floor(timestamp in seconds since the epoch / 3600); a naive timestamp is
  UTC; without a timestamp column every row has ``Plan.now``.
- A dict field's prediction of a row is the map / struct column's entries, or, in the
  one-column-per-label form, the non-null label columns (in mapping order); a null map,
  or all label columns null, is no prediction for that field. Same for actuals.
- ``segments``: every table keyed by cell carries ``bucket`` and one column per segment
  feature, ``seg_0`` ... ``seg_{k-1}`` (``Plan.segments`` order), holding the row's raw
  value of that feature (str, int, bool or None), grouped on as is. The monitor maps
  raw values to segment names and sums the combinations into its cells.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwatch.errors import InvalidInputError

__all__ = ["DenseScores", "Discovery", "Mapping", "Plan", "Summary", "Table"]

Table = dict[str, npt.NDArray[Any]]
"""A small aggregate as columns: name -> 1-D array (object arrays for text and raw values)."""


@dataclass(frozen=True)
class Mapping:
    """Which source column holds what.

    ``id``: prediction ids (None: none; raw rows then cannot be kept). ``timestamp``:
    TIMESTAMP, TIMESTAMPTZ, seconds since the epoch, or ISO 8601 text (None: ingestion
    time). ``features``: schema feature -> column. ``predictions`` / ``actuals``: dict
    field -> a MAP(text, number) or STRUCT column; ``prediction_columns`` /
    ``actual_columns``: dict field -> {label: column}, one column per label.
    """

    id: str | None = None
    timestamp: str | None = None
    features: dict[str, str] = field(default_factory=dict)
    predictions: dict[str, str] = field(default_factory=dict)
    prediction_columns: dict[str, dict[str, str]] = field(default_factory=dict)
    actuals: dict[str, str] = field(default_factory=dict)
    actual_columns: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, items: list[str]) -> Mapping:
        """From ``key=column`` items: ``id=...``, ``timestamp=...``, ``features.F=...``,
        ``predictions.F=...``, ``predictions.F.LABEL=...``, ``actuals.F=...``,
        ``actuals.F.LABEL=...``."""
        out: dict[str, Any] = {
            "features": {},
            "predictions": {},
            "prediction_columns": {},
            "actuals": {},
            "actual_columns": {},
        }
        for item in items:
            key, sep, column = item.partition("=")
            parts = key.strip().split(".", 2)
            column = column.strip()
            if not sep or not column:
                raise InvalidInputError("map", "key=column", item)
            if parts[0] in ("id", "timestamp") and len(parts) == 1:
                out[parts[0]] = column
            elif parts[0] == "features" and len(parts) == 2:
                out["features"][parts[1]] = column
            elif parts[0] in ("predictions", "actuals") and len(parts) == 2:
                out[parts[0]][parts[1]] = column
            elif parts[0] in ("predictions", "actuals") and len(parts) == 3:
                side = "prediction_columns" if parts[0] == "predictions" else "actual_columns"
                out[side].setdefault(parts[1], {})[parts[2]] = column
            else:
                raise InvalidInputError(
                    "map",
                    "id=, timestamp=, features.NAME=, predictions.FIELD[.LABEL]= or "
                    "actuals.FIELD[.LABEL]= followed by a column name",
                    item,
                )
        return cls(**out)

    @classmethod
    def from_dict(cls, data: MappingABC[str, Any]) -> Mapping:
        """From its JSON form (the keys of the dataclass)."""
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(data) - known)
        if extra:
            raise InvalidInputError("mapping", f"keys among {sorted(known)}", extra)
        return cls(**dict(data))

    def fields(self) -> list[str]:
        """The dict fields mapped, predictions first, in mapping order."""
        names = [*self.predictions, *self.prediction_columns, *self.actuals, *self.actual_columns]
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Plan:
    """What an engine computes, derived from a version's schema and a ``Mapping``.

    ``edges[f]``: the sketch edges of field ``f`` (``make_edges(bins, thresholds)``); a
    score's bin is ``np.searchsorted(edges[f], score, side="left")``, reproduced exactly.
    ``thresholds[f][label]``: the label's decision threshold (a label is predicted when
    its score is strictly above); labels absent from it use ``default_threshold[f]``.
    ``labels[f]``: the labels to count (others are dropped from every aggregate); None
    (discovery) means all. ``numeric``: numeric features to summarize; ``categorical``:
    categorical, boolean and string ones; ``booleans``: the boolean ones among them (an
    integer column holds them as 0 / 1, as SQL databases without a boolean type do).
    ``log_gamma``: ``NumericSketch``'s
    ``log1p(2a / (1 - a))``. ``now``: the timestamp of rows without one.
    """

    mapping: Mapping
    fields: list[str]
    edges: dict[str, list[float]]
    thresholds: dict[str, dict[str, float]]
    default_threshold: dict[str, float]
    segments: list[str]
    numeric: list[str]
    categorical: list[str]
    log_gamma: float
    now: float
    labels: dict[str, list[str]] | None = None
    booleans: list[str] = field(default_factory=list)

    def threshold(self, field_name: str, label: str) -> float:
        return self.thresholds.get(field_name, {}).get(
            label, self.default_threshold.get(field_name, 0.5)
        )


@dataclass
class Discovery:
    """What a first pass over the source found, once every row was validated.

    ``rows``: the number of rows. ``prediction_labels[f]`` / ``actual_labels[f]``: each
    label with the number of rows whose prediction (actual) of ``f`` holds it, in order of
    first appearance: by row, then by position in the map (or mapping order).
    """

    rows: int
    prediction_labels: dict[str, list[tuple[str, int]]]
    actual_labels: dict[str, list[tuple[str, int]]]


@dataclass
class Summary:
    """The aggregates of a source. Every table has the cell columns ``bucket`` (int64) and
    ``seg_0`` ... ``seg_{k-1}`` (raw segment values); counts are int64.

    - ``scores``: ``field, label, outcome, bin, count``: per label the rows whose score
      falls in ``bin`` with ``outcome`` 0 (actual 0), 1 (actual 1) or 2 (no actual for the
      field). Counted: the labels present in the prediction, and in a labelled row also
      those present only in the actual (score 0, so bin 0); a label of the prediction
      absent from the actual is outcome 0.
    - ``samples``: ``field, labeled, n_pred, n_true, tp, count``: the rows with a
      prediction or an actual of ``field``, by whether labelled, how many labels are
      predicted (score above threshold), true (actual 1) and both (0 when unlabelled).
    - ``pairs``: ``field, label_a, label_b, predicted, actual``: each unordered pair of
      labels once (``label_a == label_b`` included): the rows predicting both, and the
      labelled rows whose actual holds both.
    - ``numeric``: ``feature, missing, count, zero, min, max``: per numeric feature, the
      rows without a value (null), with one, with ``|x| <`` the smallest normal float, and
      the extremes (NaN when none; -0.0 counts as 0.0).
    - ``numeric_keys``: ``feature, sign, key, count, lo, hi``: per sign (+1, -1) and key
      ``ceil(ln|x| / log_gamma)`` of the values ``|x| >=`` the smallest normal float:
      how many, and their least and greatest ``|x|`` (both NaN: keys computed by
      ``NumericSketch``'s own NumPy formula, nothing for ``verify_keys`` to check).
    - ``numeric_sums``: ``feature, exponent, mantissa``: Σx = Σ mantissa * 2**exponent
      exactly (``mantissa`` a Python int: an object array), over the present values.
    - ``categorical``: ``feature, category, count``: category text as
      ``CategoricalCounts`` names it (bool "true"/"false", other values ``str``), None
      for missing.
    - ``rows``: ``count``: the rows of each cell.

    A table may also carry ``cell``, the engine's int64 id of the row's cell combination
    (equal ids, equal ``bucket`` and ``seg_*``): the monitor then groups by it.

    ``dense``: score counts an engine kept as per-cell arrays (``DenseScores``) instead
    of ``scores`` rows; they add to ``scores``. ``sparse()`` turns them into rows (the
    JSON form and the parts of an upload carry rows only).

    ``labels[f]`` (set by ``decide_labels``, not the engine): the labels counted, in the
    order the vocabulary learns them; ``unseen[f]``: labels left out (outside a declared
    vocabulary, ``unknown_labels="ignore"``) with the number of rows holding them.
    """

    segments: list[str]
    scores: Table
    samples: Table
    pairs: Table
    numeric: Table
    numeric_keys: Table
    numeric_sums: Table
    categorical: Table
    rows: Table
    labels: dict[str, list[str]] = field(default_factory=dict)
    unseen: dict[str, dict[str, int]] = field(default_factory=dict)
    dense: list[DenseScores] = field(default_factory=list)

    def cell_columns(self) -> list[str]:
        return ["bucket", *[f"seg_{i}" for i in range(len(self.segments))]]

    def sparse(self) -> Summary:
        """This summary with its ``dense`` counts as ``scores`` rows (itself if none)."""
        if not self.dense:
            return self
        columns = [*self.cell_columns(), "field", "label", "outcome", "bin", "count"]
        if "cell" in self.scores and all("cell" in d.cells for d in self.dense):
            columns.insert(-4, "cell")
        parts = [self.scores, *(d.rows(columns) for d in self.dense)]
        parts = [p for p in parts if len(_column(p, "bucket"))] or parts[-1:]
        scores = {c: np.concatenate([_column(p, c) for p in parts]) for c in columns}
        return dataclasses.replace(self, scores=scores, dense=[])


@dataclass
class DenseScores:
    """One field's score counts of many cells at once: ``counts[i, j, outcome, bin]``
    for the cell of row ``i`` of ``cells`` (its ``bucket``, ``seg_*`` and ``cell``
    columns) and ``labels[j]`` (``counts`` may have spare columns past the labels: zero).
    The same counts as ``Summary.scores`` rows, in the form an engine accumulates them."""

    field: str
    cells: Table
    labels: list[str]
    counts: npt.NDArray[np.integer[Any]]

    def rows(self, columns: list[str]) -> Table:
        """The nonzero counts as ``Summary.scores`` rows, with ``columns``."""
        i, j, outcome, b = np.nonzero(self.counts[:, : len(self.labels)])
        names = np.empty(len(self.labels), dtype=object)
        names[:] = self.labels
        out: Table = {name: np.asarray(col)[i] for name, col in self.cells.items()}
        out["field"] = np.full(len(i), self.field, dtype=object)
        out.update(
            label=names[j],
            outcome=outcome.astype(np.int64),
            bin=b.astype(np.int64),
            count=self.counts[i, j, outcome, b].astype(np.int64),
        )
        return {c: out[c] for c in columns if c in out}


def _column(table: Table, name: str) -> npt.NDArray[Any]:
    if name in table:
        return np.asarray(table[name])
    n = len(next(iter(table.values()))) if table else 0
    return np.zeros(n, dtype=object)


def empty_table(columns: list[str]) -> Table:
    """A table without rows."""
    return {c: np.zeros(0, dtype=object) for c in columns}
