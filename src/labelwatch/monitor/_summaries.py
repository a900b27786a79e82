"""A data source's ``Summary`` (``labelwatch.sources``) written as cells: the same score
cells, day roll-ups, sample sums, pair cells and feature cells that logging the source's
rows through the SDK writes, from aggregates only.

Counts are integers, so score, pair and feature cells are equal byte for byte to the
SDK's; the sample sums of ratios (example-based precision, recall, F1, Jaccard) are sums
of floats, equal up to the order of addition (as between two SDK batchings).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labelwatch.errors import InvalidInputError
from labelwatch.metrics._binning import N_OUTCOMES, make_edges
from labelwatch.monitor import _tables as t
from labelwatch.monitor._cells import add_cells, coarse_map
from labelwatch.monitor._feature_cells import add_feature_cells
from labelwatch.monitor._ingest import CellKey, segment_value
from labelwatch.monitor._pairs import MAX_PAIR_LABELS, add_pairs
from labelwatch.monitor._schema import VersionSpec
from labelwatch.monitor._summary_features import (
    factor,
    factor_objects,
    feature_deltas,
    first_of_groups,
    first_rows,
    pair_deltas,
    sample_sums,
)
from labelwatch.monitor._write import ensure_environment, learn, segments
from labelwatch.sources._plan import DenseScores, Summary, Table

__all__ = ["stage_part", "write_summary"]

FloatArray = npt.NDArray[np.float64]
_MAX_FLOATS = 1 << 22  # score deltas built at once: 32 MB
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class _Learned:
    """What ``learn`` reads of a batch: its labels and unseen labels' rows."""

    def __init__(self, labels: list[str], unseen: dict[str, int]) -> None:
        self.labels = labels
        self.unseen = {label: range(n) for label, n in unseen.items()}


class _Cells:
    """The summary's cell combinations (bucket + raw segment values) and the cells each
    adds to: its all-traffic cell and one per segment value."""

    def __init__(self, summary: Summary, stored_segments: list[str]) -> None:
        if list(summary.segments) != list(stored_segments):
            raise InvalidInputError(
                "segments", f"the version's segments {stored_segments}", summary.segments
            )
        self.segments = list(summary.segments)
        self.columns = summary.cell_columns()
        self._index: dict[tuple[tuple[type, Any], ...], int] = {}
        self.targets: list[list[CellKey]] = []

    def codes(self, table: Table) -> npt.NDArray[np.intp]:
        """Per row of ``table``, the index of its combination (new ones registered in the
        order of their first row by key: the engine's ``cell`` ids when the table has
        them, else the cell columns factorized; a Python step per combination only)."""
        columns = self.columns
        if columns[0] not in table or not len(table[columns[0]]):
            return np.zeros(0, dtype=np.intp)
        if "cell" in table:  # the engine's cell ids: the first row of each, by id
            ids, inverse = factor(np.asarray(table["cell"], dtype=np.int64))
            first = first_rows(inverse, len(ids))
        else:
            key = np.zeros(len(table[columns[0]]), dtype=np.int64)
            size = 1
            for name in columns:
                if name == "bucket":
                    values, codes = factor(np.asarray(table[name], dtype=np.int64))
                    distinct = len(values)
                else:
                    distinct, codes = factor_objects(table[name])
                key *= max(1, distinct)
                key += codes
                size *= max(1, distinct)
            first, inverse = first_of_groups(key, size)
        local = self._known(table, first)
        return local[inverse]

    def _known(self, table: Table, first: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """``_combos`` of the rows ``first``, those already registered looked up at once."""
        columns = self.columns
        if any(table[c].dtype != object for c in columns[1:]):
            return self._combos(table, first)  # (NumPy scalars: typed as _combos types them)
        values = [table[columns[0]][first].astype(np.int64).tolist()]
        values += [table[c][first].tolist() for c in columns[1:]]
        found = [
            self._index.get(tuple(zip(map(type, combo), combo, strict=True)), -1)
            for combo in zip(*values, strict=True)
        ]
        local = np.array(found, dtype=np.intp)
        new = np.flatnonzero(local < 0)
        if len(new):  # registered in the order of their rows in ``first``
            local[new] = self._combos(table, first[new])
        return local

    def _combos(self, table: Table, first: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """The combination index of each of the rows ``first`` (registered if new)."""
        local = np.empty(len(first), dtype=np.intp)
        cols = [table[c] for c in self.columns]
        for j, i in enumerate(first.tolist()):
            combo = tuple(int(c[i]) if k == 0 else c[i] for k, c in enumerate(cols))
            typed = tuple((type(x), x) for x in combo)  # True and 1 are other segments
            code = self._index.get(typed)
            if code is None:
                code = self._index[typed] = len(self.targets)
                bucket = int(combo[0])
                keys: list[CellKey] = [("", "", bucket)]
                for feature, raw in zip(self.segments, combo[1:], strict=True):
                    value = segment_value(raw)
                    if value is not None:
                        keys.append((feature, value, bucket))
                self.targets.append(keys)
            local[j] = code
        return local


def _select(table: Table, where: npt.NDArray[np.bool_]) -> Table:
    return {k: v[where] for k, v in table.items()}


def write_summary(
    conn: Connection, vid: int, spec: VersionSpec, env: str, summary: Summary
) -> dict[str, int]:
    """Add a summary to the cells of version ``vid`` in ``env`` (under its write lock,
    inside one transaction). Returns ``{"accepted": rows}``."""
    ensure_environment(conn, vid, env)
    cells = _Cells(summary, segments(conn, vid))
    rows = int(np.asarray(summary.rows.get("count", np.zeros(0)), dtype=np.int64).sum())
    for f in spec.dict_fields:
        labels = list(summary.labels.get(f, []))
        learned: Any = _Learned(labels, summary.unseen.get(f, {}))
        vocab = learn(conn, vid, f, [learned])
        scores = _select(summary.scores, summary.scores["field"] == f)
        samples = _select(summary.samples, summary.samples["field"] == f)
        dense = [d for d in summary.dense if d.field == f]
        if not len(samples["field"]) and not len(scores["field"]) and not dense:
            continue
        edges = _edges(spec, f)
        coarse = coarse_map(spec, f)[0]
        parts = _score_deltas(cells, labels, len(edges), scores, samples, dense)
        for score_part, sums_part in parts:
            add_cells(conn, vid, env, f, vocab, labels, score_part, sums_part, coarse=coarse)
        if len(vocab) <= MAX_PAIR_LABELS:
            pairs = _select(summary.pairs, summary.pairs["field"] == f)
            add_pairs(conn, vid, env, f, pair_deltas(cells, vocab, pairs))
    add_feature_cells(conn, vid, env, feature_deltas(cells, spec, summary))
    return {"accepted": rows}


def _edges(spec: VersionSpec, f: str) -> FloatArray:
    return make_edges(spec.bins, spec.edges(f))


def _dense_blocks(
    cells: _Cells, labels: list[str], m: int, dense: list[DenseScores]
) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp], Any]]:
    """Per dense block: the combination of each row, the label positions it fills,
    the block's columns for them, and its counts."""
    position = {name: j for j, name in enumerate(labels)}
    out = []
    for d in dense:
        counts = np.asarray(d.counts)
        if counts.ndim != 4 or counts.shape[2:] != (N_OUTCOMES, m) or (
            counts.shape[1] < len(d.labels)
        ):
            raise InvalidInputError(
                "dense.counts", f"(cells, >= {len(d.labels)} labels, {N_OUTCOMES}, {m})",
                counts.shape,
            )  # fmt: skip
        if len(counts) and counts.min() < 0:
            raise InvalidInputError("dense.counts", "counts >= 0", int(counts.min()))
        src = [j for j, x in enumerate(d.labels) if x in position]
        dropped = [j for j, x in enumerate(d.labels) if x not in position]
        if dropped and counts[:, dropped].any():
            missing = [d.labels[j] for j in dropped]
            raise InvalidInputError(
                "scores.label", f"one of the summary's labels {labels}", missing
            )
        dst = np.array([position[d.labels[j]] for j in src], dtype=np.intp)
        out.append((cells.codes(d.cells), dst, np.array(src, dtype=np.intp), counts))
    return out


def _score_deltas(
    cells: _Cells,
    labels: list[str],
    m: int,
    scores: Table,
    samples: Table,
    dense: list[DenseScores],
) -> Iterator[tuple[dict[CellKey, FloatArray], dict[CellKey, FloatArray]]]:
    """Per chunk of hours, the score and sum deltas of every cell."""
    blocks = _dense_blocks(cells, labels, m, dense)
    position = {name: j for j, name in enumerate(labels)}
    s_combo = cells.codes(scores)
    n_combos = len(cells.targets)
    names = scores["label"].tolist()
    missing = [x for x in dict.fromkeys(names) if x not in position]
    if missing:
        raise InvalidInputError("scores.label", f"one of the summary's labels {labels}", missing)
    s_label = np.fromiter(map(position.__getitem__, names), np.int64, len(names))
    s_out = scores["outcome"].astype(np.int64)
    s_bin = scores["bin"].astype(np.int64)
    s_count = scores["count"].astype(np.float64)
    if len(s_bin) and (s_bin.min() < 0 or s_bin.max() >= m or s_out.min() < 0 or s_out.max() > 2):
        raise InvalidInputError("scores", f"bins in [0, {m}) and outcomes 0, 1 or 2", "others")
    sums = sample_sums(cells, samples)  # combo -> sums
    buckets = np.array([cells.targets[c][0][2] for c in range(n_combos)], dtype=np.int64)
    # every combination, with its scores and sums, in chunks of whole hours
    order = np.unique(buckets)
    per_combo = len(labels) * N_OUTCOMES * m
    combos_per_hour = max(1, n_combos // max(1, len(order)))
    step = max(1, _MAX_FLOATS // max(1, per_combo * combos_per_hour))
    for start in range(0, len(order), step):
        hours = order[start : start + step]
        in_chunk = np.flatnonzero(np.isin(buckets, hours))
        local = np.full(n_combos, -1, dtype=np.int64)
        local[in_chunk] = np.arange(len(in_chunk))
        pick = local[s_combo] >= 0 if len(s_combo) else np.zeros(0, dtype=bool)
        flat = ((local[s_combo[pick]] * len(labels) + s_label[pick]) * N_OUTCOMES + s_out[pick]) * m
        flat += s_bin[pick]
        counts = np.bincount(flat, weights=s_count[pick], minlength=len(in_chunk) * per_combo)
        counts = counts.reshape(len(in_chunk), len(labels), N_OUTCOMES, m)
        for block_combo, dst, src, block in blocks:
            rows = np.flatnonzero(local[block_combo] >= 0)
            targets = local[block_combo[rows]]
            if len(np.unique(targets)) == len(targets):
                counts[targets[:, None], dst[None, :]] += block[rows[:, None], src[None, :]]
            else:  # two rows of one combination (not from one engine pass)
                for r, t in zip(rows.tolist(), targets.tolist(), strict=True):
                    counts[t, dst] += block[r, src]
        score_part: dict[CellKey, FloatArray] = {}
        sums_part: dict[CellKey, FloatArray] = {}
        for k, combo in enumerate(in_chunk.tolist()):
            total = sums.get(combo)
            if total is None:  # no scored row in this combination
                continue
            for key in cells.targets[combo]:
                if key in sums_part:
                    score_part[key] = score_part[key] + counts[k]
                    sums_part[key] = sums_part[key] + total
                else:
                    score_part[key], sums_part[key] = counts[k], total
        yield score_part, sums_part


_STAGED_FOR = 86_400.0  # seconds an unfinished upload's parts are kept


def stage_part(
    conn: Connection,
    vid: int,
    spec: VersionSpec,
    env: str,
    upload: tuple[str, int, int],
    body: bytes,
    decode: Callable[[bytes], Summary],
) -> dict[str, int]:
    """Store one part of an upload; with the last, write every part and drop them."""
    upload_id, part, parts = upload
    if not (isinstance(upload_id, str) and _UPLOAD_ID.fullmatch(upload_id)):
        raise InvalidInputError("upload_id", "1 to 64 letters, digits, '-' or '_'", upload_id)
    if not (isinstance(parts, int) and 1 <= parts <= 100_000):
        raise InvalidInputError("parts", "an integer from 1 to 100000", parts)
    if not (isinstance(part, int) and 0 <= part < parts):
        raise InvalidInputError("part", f"an integer from 0 to {parts - 1}", part)
    sp = t.staged_parts
    now = time.time()
    conn.execute(sa.delete(sp).where(sp.c.created_at < now - _STAGED_FOR))
    others = conn.execute(
        sa.select(sp.c.part, sp.c.version_id, sp.c.environment, sp.c.parts).where(
            sp.c.upload_id == upload_id
        )
    ).all()
    for o in others:
        if (o.version_id, o.environment, o.parts) != (vid, env, parts):
            raise InvalidInputError(
                "upload_id",
                f"the id of one upload: its other parts are for another version, "
                f"environment or number of parts ({o.parts})",
                upload_id,
            )
    conn.execute(sa.delete(sp).where(sp.c.upload_id == upload_id, sp.c.part == part))
    conn.execute(
        sa.insert(sp).values(
            upload_id=upload_id, part=part, version_id=vid, environment=env, parts=parts,
            body=body, created_at=now,
        )
    )  # fmt: skip
    received = len({o.part for o in others} | {part})
    if received < parts:
        return {"staged": part, "received": received, "parts": parts}
    accepted = 0
    for (blob,) in conn.execute(
        sa.select(sp.c.body).where(sp.c.upload_id == upload_id).order_by(sp.c.part)
    ):
        accepted += write_summary(conn, vid, spec, env, decode(bytes(blob)))["accepted"]
    conn.execute(sa.delete(sp).where(sp.c.upload_id == upload_id))
    return {"accepted": accepted, "parts": parts}
