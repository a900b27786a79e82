"""The row-at-a-time feature deltas, pair deltas and sample sums of a ``Summary``: the
slow, obvious oracle of ``labelwatch.monitor._summary_features`` (which the monitor uses)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwatch.errors import InvalidInputError
from labelwatch.metrics import CategoricalCounts, NumericSketch, SampleStats
from labelwatch.metrics._numeric import DEFAULT_ACCURACY, _canonical
from labelwatch.monitor._feature_cells import SUMMARIZED
from labelwatch.monitor._ingest import SUM_NAMES, CellKey
from labelwatch.monitor._pairs import _sum_pairs
from labelwatch.monitor._schema import VersionSpec
from labelwatch.monitor._summaries import _Cells
from labelwatch.sources._plan import Summary, Table

FloatArray = npt.NDArray[np.float64]


def _sample_sums(cells: _Cells, samples: Table) -> dict[int, FloatArray]:
    """Per combination, the ``SUM_NAMES`` sums of its histogram of rows by (labelled,
    predicted, true, both): ``SampleStats.from_arrays`` over one made-up row per bin
    with its count as weight, so every sum follows the SDK's formulas."""
    combo = cells.codes(samples)
    labeled = samples["labeled"].astype(bool)
    n_pred = samples["n_pred"].astype(np.int64)
    n_true = samples["n_true"].astype(np.int64)
    tp = samples["tp"].astype(np.int64)
    count = samples["count"].astype(np.float64)
    if len(tp) and (
        (tp < 0).any() or (tp > n_pred).any() or (tp > n_true).any() or (count < 0).any()
    ):
        raise InvalidInputError("samples", "0 <= tp <= n_pred, n_true and counts >= 0", "others")
    width = int(max(1, (n_pred + n_true - tp).max())) if len(tp) else 1
    names = [str(j) for j in range(width)]
    out: dict[int, FloatArray] = {}
    by_combo: dict[int, list[int]] = defaultdict(list)
    for i, c in enumerate(combo.tolist()):
        by_combo[c].append(i)
    col = np.arange(width)
    for c, idx_list in by_combo.items():
        idx = np.asarray(idx_list)
        total = np.zeros(len(SUM_NAMES))
        for is_labeled in (False, True):
            part = idx[labeled[idx] == is_labeled]
            if not len(part):
                continue
            p, y, b = n_pred[part, None], n_true[part, None], tp[part, None]
            scores = (col < p).astype(np.float64)  # predicted: the first n_pred columns
            # true: the tp shared columns, then n_true - tp columns after the predicted ones
            actual = (col < b) | ((col >= p) & (col < p + y - b))
            stats = SampleStats.from_arrays(
                names,
                scores,
                actual if is_labeled else None,
                thresholds=0.5,
                weights=count[part],
                cooccurrence=False,
            )
            total += np.array([getattr(stats, name) for name in SUM_NAMES])
        out[c] = total
    return out


def _pair_deltas(
    cells: _Cells, vocab: dict[str, int], pairs: Table
) -> dict[CellKey, tuple[npt.NDArray[np.int64], FloatArray]]:
    if not len(pairs["field"]):
        return {}
    combo = cells.codes(pairs)
    a = np.fromiter((vocab[x] for x in pairs["label_a"].tolist()), np.int64, len(combo))
    b = np.fromiter((vocab[x] for x in pairs["label_b"].tolist()), np.int64, len(combo))
    ij = np.sort(np.column_stack([a, b]), axis=1)
    values = np.column_stack(
        [pairs["predicted"].astype(np.float64), pairs["actual"].astype(np.float64)]
    )
    rows_of: dict[CellKey, list[int]] = defaultdict(list)
    for i, c in enumerate(combo.tolist()):
        for key in cells.targets[c]:
            rows_of[key].append(i)
    out = {}
    for key, rows in rows_of.items():
        summed = _sum_pairs(ij[rows], values[rows])
        if len(summed[0]):
            out[key] = summed
    return out


def _feature_deltas(
    cells: _Cells, spec: VersionSpec, summary: Summary
) -> dict[tuple[str, CellKey], NumericSketch | CategoricalCounts]:
    """Per (feature, cell), the feature's summary, as ``NumericSketch.from_groups`` and
    ``CategoricalCounts.from_groups`` make it from the rows."""
    kinds = {f: k for f, k in spec.features.items() if k in SUMMARIZED}
    if not kinds:
        return {}
    rows_combo = cells.codes(summary.rows)
    rows_count = summary.rows["count"].astype(np.int64).tolist()
    cell_rows: dict[CellKey, int] = defaultdict(int)
    for c, n in zip(rows_combo.tolist(), rows_count, strict=True):
        for key in cells.targets[c]:
            cell_rows[key] += n
    out: dict[tuple[str, CellKey], NumericSketch | CategoricalCounts] = {}
    numeric = [f for f, k in kinds.items() if k == "numeric"]
    if numeric:
        out.update(_numeric(cells, summary, numeric, cell_rows))
    categorical = [f for f, k in kinds.items() if k != "numeric"]
    if categorical:
        out.update(_categorical(cells, summary, categorical, cell_rows))
    return out


def _per_cell(cells: _Cells, table: Table) -> Iterator[tuple[CellKey, int]]:
    """(cell, row of ``table``) for each cell each row adds to."""
    combo = cells.codes(table)
    for i, c in enumerate(combo.tolist()):
        for key in cells.targets[c]:
            yield key, i


def _numeric(
    cells: _Cells, summary: Summary, features: Sequence[str], cell_rows: dict[CellKey, int]
) -> dict[tuple[str, CellKey], NumericSketch]:
    num, keys, sums = summary.numeric, summary.numeric_keys, summary.numeric_sums
    parts: dict[tuple[str, CellKey], dict[str, Any]] = {}
    for key, i in _per_cell(cells, num):
        f = str(num["feature"][i])
        p = parts.setdefault((f, key), {"missing": 0, "count": 0, "zero": 0, "lo": [], "hi": []})
        p["missing"] += int(num["missing"][i])
        p["count"] += int(num["count"][i])
        p["zero"] += int(num["zero"][i])
        p["lo"].append(float(num["min"][i]))
        p["hi"].append(float(num["max"][i]))
    buckets: dict[tuple[str, CellKey, int], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for key, i in _per_cell(cells, keys):
        f, sign = str(keys["feature"][i]), int(keys["sign"][i])
        buckets[(f, key, sign)][int(keys["key"][i])] += int(keys["count"][i])
    exact: dict[tuple[str, CellKey], int] = defaultdict(int)
    low_exp: dict[tuple[str, CellKey], int] = {}
    terms: dict[tuple[str, CellKey], list[tuple[int, int]]] = defaultdict(list)
    for key, i in _per_cell(cells, sums):
        f = str(sums["feature"][i])
        e, k = int(sums["exponent"][i]), int(sums["mantissa"][i])
        terms[(f, key)].append((k, e))
    for fk, items in terms.items():
        low = min(e for _, e in items)
        low_exp[fk] = low
        exact[fk] = sum(k << (e - low) for k, e in items)
    out: dict[tuple[str, CellKey], NumericSketch] = {}
    for key, n in cell_rows.items():
        for f in features:
            sk = NumericSketch(DEFAULT_ACCURACY)
            out[(f, key)] = sk
            found = parts.get((f, key))
            if found is None:  # the feature is not in the source: every row misses it
                sk.missing = float(n)
                continue
            p = found
            sk.missing = float(p["missing"])
            lows = [x for x in p["lo"] if not math.isnan(x)]
            highs = [x for x in p["hi"] if not math.isnan(x)]
            sk.min = min(lows) + 0.0 if lows else math.nan
            sk.max = max(highs) + 0.0 if highs else math.nan
            if p["count"] == 0:
                continue
            sk.count = sk.squared_weights = float(p["count"])
            sk.zero = float(p["zero"])
            total = exact.get((f, key), 0)
            sk._exact = _canonical(total, low_exp.get((f, key), 0)) if total else (0, 0)
            for sign in (1, -1):
                tally = buckets.get((f, key, sign), {})
                ks = np.array(sorted(tally), dtype=np.int64)
                cs = np.array([float(tally[k]) for k in ks.tolist()], dtype=np.float64)
                if sign > 0:
                    sk.pos_keys, sk.pos_counts = ks, cs
                else:
                    sk.neg_keys, sk.neg_counts = ks, cs
    return out


def _categorical(
    cells: _Cells, summary: Summary, features: Sequence[str], cell_rows: dict[CellKey, int]
) -> dict[tuple[str, CellKey], CategoricalCounts]:
    cat = summary.categorical
    kept: dict[tuple[str, CellKey], dict[str, float]] = defaultdict(dict)
    missing: dict[tuple[str, CellKey], float] = defaultdict(float)
    for key, i in _per_cell(cells, cat):
        f, name, n = str(cat["feature"][i]), cat["category"][i], float(cat["count"][i])
        if name is None:
            missing[(f, key)] += n
        else:
            d = kept[(f, key)]
            d[str(name)] = d.get(str(name), 0.0) + n
    out: dict[tuple[str, CellKey], CategoricalCounts] = {}
    for key in cell_rows:
        for f in features:
            c = CategoricalCounts()
            counts = dict(sorted(kept.get((f, key), {}).items()))
            present = float(sum(counts.values()))
            c.missing = missing.get((f, key), float(cell_rows[key] - present))
            c.squared_weights = present
            c._set(counts, 0.0, truncated=False)
            out[(f, key)] = c
    return out


def codes(cells: _Cells, table: Table) -> npt.NDArray[np.intp]:
    """``cells.codes(table)`` the slow way: each cell column factorized by a dict in
    order of appearance, the rows grouped by ``np.unique`` of the packed codes (or of the
    engine's ``cell`` ids), each new combination registered through ``cells._combos``."""
    if cells.columns[0] not in table or not len(table[cells.columns[0]]):
        return np.zeros(0, dtype=np.intp)
    if "cell" in table:
        _, first, inverse = np.unique(
            np.asarray(table["cell"], np.int64), return_index=True, return_inverse=True
        )
        return cells._combos(table, first)[inverse.reshape(-1)]
    key = np.zeros(len(table[cells.columns[0]]), dtype=np.int64)
    for name in cells.columns:
        column = table[name]
        if name == "bucket":
            values, found = np.unique(column.astype(np.int64), return_inverse=True)
            distinct: list[Any] = values.tolist()
        else:
            seen: dict[tuple[type, Any], int] = {}
            items = column.tolist()
            found = np.fromiter(
                (seen.setdefault((type(x), x), len(seen)) for x in items), np.int64, len(items)
            )
            distinct = [x for _, x in seen]
        key = key * max(1, len(distinct)) + found.reshape(-1)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return cells._combos(table, first)[inverse.reshape(-1)]
