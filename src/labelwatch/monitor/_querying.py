"""Queries on the ``Monitor`` facade: the cells of a query window read in one snapshot
(whole weeks and days from the roll-ups, other hours from the hour cells) and merged, the
views built on them (``sketch``, ``sample_stats``, ``timeseries``) and ``get_prediction``.
The metrics of merged cells are computed in ``_queries``."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labelwatch.errors import InvalidInputError, NotFoundError, UndefinedMetricWarning
from labelwatch.labels import LabelSpace
from labelwatch.metrics import SampleStats, ScoreSketch
from labelwatch.monitor import _tables as t
from labelwatch.monitor._cells import ROLLUPS, merge_counts
from labelwatch.monitor._ingest import SUM_NAMES, parse_time, segment_value
from labelwatch.monitor._pairs import MAX_PAIR_LABELS, pair_matrices
from labelwatch.monitor._queries import (
    COARSE_METRICS,
    SAMPLE_METRICS,
    SKETCH_METRICS,
    clean,
    sample_metric,
    sketch_metric,
    stats_of,
)
from labelwatch.monitor._schema import VersionSpec
from labelwatch.monitor._util import _iso, _no_gc
from labelwatch.monitor._write import prediction_row, segments, vocab

if TYPE_CHECKING:
    import threading

    from sqlalchemy.engine import Engine

__all__ = ["QueriesMixin"]

FloatArray = npt.NDArray[np.float64]
Segment = tuple[str, str]


@dataclass
class _Window:
    """The cells of a query window, as read in one snapshot."""

    spec: VersionSpec
    labels: list[str]  # the field's vocabulary
    buckets: npt.NDArray[np.int64]  # per score cell: its hour
    label_pos: npt.NDArray[np.intp]  # per score cell: its label's position in ``labels``
    blobs: list[bytes]  # the score cells' counts (dense or sparse, see ``encode_counts``)
    sum_buckets: npt.NDArray[np.int64]  # per sums cell: its hour
    sums: FloatArray  # (n cells, len(SUM_NAMES))
    pairs: tuple[FloatArray, FloatArray] | None = None  # (predicted, actual) co-occurrence
    merged: ScoreSketch | None = None  # the counts merged (see ``sketch_of``), once

    def sketch_of(self, field: str) -> ScoreSketch:
        """The window's score cells merged into one sketch of every label (kept: the
        views of one window in a ``reading()`` block merge it once)."""
        if self.merged is None:
            edges, bins = self.spec.edges(field), self.spec.bins
            empty = ScoreSketch.empty(LabelSpace(self.labels), thresholds=edges, bins=bins)
            counts = merge_counts(empty.counts.shape, self.label_pos, self.blobs)
            self.merged = ScoreSketch(empty.labels, counts, bins=bins, thresholds=edges)
        return self.merged


class QueriesMixin:
    """Windows of cells read and merged, and the queries over them (mixed into
    ``Monitor``)."""

    _engine: Engine
    _reads: threading.local  # .cache: the windows read in a ``reading()`` block

    if TYPE_CHECKING:

        def _resolve(
            self, conn: Connection, model_id: str, model_version: str
        ) -> tuple[int, VersionSpec]: ...

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Within the block (in this thread), queries of a window already read in it
        reuse its cells instead of reading them again: the several views of one window
        a dashboard page shows cost one read. Writes made meanwhile may not be seen."""
        outer = getattr(self._reads, "cache", None)
        if outer is None:
            self._reads.cache = {}
        try:
            yield
        finally:
            if outer is None:
                self._reads.cache = None

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """A read connection that sees one snapshot across its statements (SQLite: one
        deferred transaction; PostgreSQL: REPEATABLE READ), so the vocabulary, score
        cells and sums of a query agree with each other."""
        with self._engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    # ================================================================ queries
    @staticmethod
    def _check_field(spec: VersionSpec, field: str) -> None:
        if field not in spec.dict_fields:
            raise NotFoundError(
                "prediction field", str(field), hint=f"dict fields: {list(spec.dict_fields)}"
            )

    def _window(
        self,
        model_id: str,
        model_version: str,
        environment: str,
        field: str,
        start: Any,
        end: Any,
        segment: Segment | None,
        column: Literal["counts", "coarse"] | None,
        with_pairs: bool = False,
        only: Sequence[str] | None = None,
        unit: int = 168,
    ) -> _Window:
        """The window's cells: score cells (their ``column``; None: none) and sums, and
        with ``with_pairs`` the summed co-occurrence matrices. ``only``: read the score
        cells of these labels only (names of the vocabulary; positions stay those of
        the whole vocabulary). The window's whole UTC days are read from the day
        roll-ups, cells of ``unit`` hours at most (1: hours only; 24: days; 168: weeks),
        each reported at its first hour."""
        seg = ("", "")
        if segment is not None:
            if not (isinstance(segment, tuple | list) and len(segment) == 2):
                raise InvalidInputError("segment", "a (feature, value) pair or None", segment)
            value = segment_value(segment[1])
            seg = (str(segment[0]), value if value is not None else "")
        lo, hi = _bucket(start, "start"), _bucket(end, "end")
        cache = getattr(self._reads, "cache", None)
        key = (
            model_id, model_version, environment, field, seg, lo, hi, column, with_pairs,
            None if only is None else tuple(sorted(set(only))), unit,
        )  # fmt: skip
        if cache is not None and key in cache:
            return cache[key]  # type: ignore[no-any-return]
        with _no_gc(), self._snapshot() as conn:
            vid, spec = self._resolve(conn, model_id, model_version)
            self._check_field(spec, field)
            if segment is not None and seg[0] not in segments(conn, vid):
                raise NotFoundError("segment", seg[0], hint=f"segments: {segments(conn, vid)}")
            field_vocab = vocab(conn, vid).get(field, {})
            wanted = None
            if only is not None:
                wanted = sorted({field_vocab[x] for x in only if x in field_vocab})
            tables = {1: (t.score_cells, t.sample_cells), **{n: tb for tb, n in ROLLUPS}}
            score_rows: list[Any] = []
            sum_rows: list[Any] = []
            for per, spans in _spans(lo, hi, unit):
                sc, sm = tables[per]
                cells = [sc.c.version_id == vid, sc.c.environment == environment,
                         sc.c.field == field, sc.c.seg_feature == seg[0],
                         sc.c.seg_value == seg[1], _in_spans(sc.c.bucket, spans)]  # fmt: skip
                if wanted is not None:
                    cells.append(sc.c.label_id.in_(wanted))
                if column is not None:
                    # raw driver values: LargeBinary's result processing cost more than
                    # the query; a roll-up cell's bucket is its first hour
                    score_rows += conn.execute(
                        sa.select(
                            sc.c.bucket * per, sc.c.label_id,
                            sa.type_coerce(sc.c[column], sa.types.NullType),
                        ).where(*cells)
                    ).all()
                sum_rows += conn.execute(
                    sa.select(sm.c.bucket * per, sa.type_coerce(sm.c.sums, sa.types.NullType))
                    .where(sm.c.version_id == vid, sm.c.environment == environment,
                           sm.c.field == field, sm.c.seg_feature == seg[0],
                           sm.c.seg_value == seg[1], _in_spans(sm.c.bucket, spans))
                ).all()  # fmt: skip
            pairs = None
            if with_pairs and len(field_vocab) <= MAX_PAIR_LABELS:
                positions = {label_id: j for j, label_id in enumerate(field_vocab.values())}
                pairs = pair_matrices(conn, vid, environment, field, seg, lo, hi, positions)
        ids = {label_id: j for j, label_id in enumerate(field_vocab.values())}
        n = len(score_rows)
        window = _Window(
            spec=spec,
            labels=list(field_vocab),
            buckets=np.fromiter((r[0] for r in score_rows), dtype=np.int64, count=n),
            label_pos=np.fromiter((ids[r[1]] for r in score_rows), dtype=np.intp, count=n),
            blobs=[r[2] for r in score_rows],
            sum_buckets=np.array([r[0] for r in sum_rows], dtype=np.int64),
            sums=np.frombuffer(b"".join(r[1] for r in sum_rows), dtype="<f8").reshape(
                len(sum_rows), len(SUM_NAMES)
            ),
            pairs=pairs,
        )
        if cache is not None:
            cache[key] = window
        return window

    def sketch(
        self,
        model_id: str,
        model_version: str,
        environment: str,
        field: str,
        start: Any = None,
        end: Any = None,
        segment: Segment | None = None,
        labels: Sequence[str] | None = None,
    ) -> ScoreSketch:
        """The merged ``ScoreSketch`` of ``field`` over the hour buckets in
        ``[start, end)`` (a bucket is in when its hour starts there), over the whole
        traffic or one ``(feature, value)`` segment; labels: the field's vocabulary, or
        ``labels`` (names of it, in that order: only their cells are read)."""
        only = None if labels is None else self._label_names(model_id, model_version, field, labels)
        w = self._window(
            model_id, model_version, environment, field, start, end, segment, "counts", only=only
        )
        whole = w.sketch_of(field)
        if only is None:
            return whole
        pos = {name: j for j, name in enumerate(w.labels)}
        keep = [pos[name] for name in only]
        return ScoreSketch(list(only), whole.counts[keep], bins=w.spec.bins,
                           thresholds=w.spec.edges(field))  # fmt: skip

    def _label_names(
        self, model_id: str, model_version: str, field: str, labels: Any
    ) -> list[str]:
        """``labels`` checked: a list of distinct names of the field's vocabulary."""
        if isinstance(labels, str) or not isinstance(labels, Sequence):
            raise InvalidInputError("labels", "a list of label names", labels)
        with self._snapshot() as conn:
            vid, spec = self._resolve(conn, model_id, model_version)
            self._check_field(spec, field)
            known = vocab(conn, vid).get(field, {})
        for name in labels:
            if not isinstance(name, str) or name not in known:
                raise InvalidInputError(
                    "labels", f"labels of {field!r} ({len(known)} known)", name,
                    label=name if isinstance(name, str) else None,
                )
        if len(set(labels)) != len(labels):
            raise InvalidInputError("labels", "distinct label names", list(labels))
        return list(labels)

    def sample_stats(
        self,
        model_id: str,
        model_version: str,
        environment: str,
        field: str,
        start: Any = None,
        end: Any = None,
        segment: Segment | None = None,
        cooccurrence: bool = False,
    ) -> SampleStats:
        """The merged ``SampleStats`` of the window, at the field's thresholds;
        ``hamming_loss`` counts the field's current vocabulary. ``cooccurrence``: with
        the predicted and actual co-occurrence matrices (from the pair cells)."""
        w = self._window(
            model_id, model_version, environment, field, start, end, segment, None,
            with_pairs=cooccurrence,
        )
        stats = stats_of(w.spec, field, w.labels, w.sums.sum(axis=0))
        if w.pairs is None:
            return stats
        predicted, actual = w.pairs
        return dataclasses.replace(
            stats, predicted_cooccurrence=predicted, actual_cooccurrence=actual
        )

    def timeseries(
        self,
        model_id: str,
        model_version: str,
        environment: str,
        field: str,
        metric: str,
        granularity: str = "hour",
        start: Any = None,
        end: Any = None,
        labels: Sequence[str] | None = None,
        average: str | None = None,
        segment: Segment | None = None,
    ) -> list[dict[str, Any]]:
        """``metric`` of ``field`` per hour or day (UTC) with data in ``[start, end)``.

        ``metric``: a ScoreSketch metric (threshold metrics at the field's thresholds)
        or a SampleStats one (``subset_accuracy``, ``hamming_loss``, ``jaccard``,
        ``label_cardinality``, ``samples_precision`` / ``_recall`` / ``_f1``).
        ``labels``: restrict to these labels; ``average``: None (a list, one value per
        label), "micro", "macro" or "weighted". Points: ``{"start": ISO, "value":
        float, list or None (undefined), "count": predictions}``. Metrics at the
        thresholds read the coarse cells (the bins between thresholds), the others the
        full ones.
        """
        if metric not in SKETCH_METRICS and metric not in SAMPLE_METRICS:
            raise InvalidInputError(
                "metric", f"one of {[*SKETCH_METRICS, *SAMPLE_METRICS]}", metric
            )
        if granularity not in ("hour", "day"):
            raise InvalidInputError("granularity", "'hour' or 'day'", granularity)
        if average not in (None, "micro", "macro", "weighted"):
            raise InvalidInputError("average", "None, 'micro', 'macro' or 'weighted'", average)
        column: Literal["counts", "coarse"] | None = (
            None if metric in SAMPLE_METRICS else "coarse" if metric in COARSE_METRICS else "counts"
        )
        only = None  # one label's series reads that label's cells only (checked below)
        if isinstance(labels, Sequence) and not isinstance(labels, str):
            only = [x for x in labels if isinstance(x, str)]
        w = self._window(
            model_id, model_version, environment, field, start, end, segment, column,
            only=only, unit=1 if granularity == "hour" else 24,
        )
        spec, names = w.spec, w.labels
        keep = list(range(len(names)))
        if labels is not None:
            if isinstance(labels, str) or not isinstance(labels, Sequence):
                raise InvalidInputError("labels", "a list of label names", labels)
            pos = {name: j for j, name in enumerate(names)}
            for name in labels:
                if name not in pos:
                    raise InvalidInputError(
                        "labels", f"labels of {field!r} among {names}", name, label=name
                    )
            keep = [pos[name] for name in labels]
        width = 1 if granularity == "hour" else 24
        periods, inverse = np.unique(
            np.concatenate([w.buckets, w.sum_buckets]) // width, return_inverse=True
        )
        cell_period, sum_period = inverse[: len(w.buckets)], inverse[len(w.buckets) :]
        sums = np.zeros((len(periods), len(SUM_NAMES)))
        np.add.at(sums, sum_period, w.sums)
        bins = 1 if column == "coarse" else spec.bins
        edges = spec.edges(field)
        counts = None
        if column is not None:
            m = len(ScoreSketch.empty([], bins=bins, thresholds=edges).edges)
            shape = (len(periods), len(names), 3, m)
            counts = merge_counts(shape, cell_period * len(names) + w.label_pos, w.blobs)
        space = LabelSpace([names[j] for j in keep])
        ths = np.array([spec.threshold(field, names[j]) for j in keep])
        n_predicted = sums[:, SUM_NAMES.index("n_predicted")].tolist()
        out = []
        per_label = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            if counts is not None and average is None:
                # per-label values of every period at once: one sketch whose labels are
                # the (period, label) pairs
                flat = counts[:, keep].reshape(len(periods) * len(keep), *counts.shape[2:])
                whole = ScoreSketch(LabelSpace.range(len(flat)), flat, bins=bins, thresholds=edges)
                tiled = np.tile(ths, len(periods))
                per_label = np.asarray(sketch_metric(whole, metric, tiled, None, sums[0]))
                per_label = per_label.reshape(len(periods), len(keep))
            for k, period in enumerate(periods.tolist()):
                if per_label is not None:
                    value = per_label[k]
                elif counts is not None:
                    sk = ScoreSketch(space, counts[k][keep], bins=bins, thresholds=edges)
                    value = sketch_metric(sk, metric, ths, average, sums[k])
                else:
                    value = sample_metric(stats_of(spec, field, names, sums[k]), metric)
                out.append(
                    {
                        "start": _iso(period * width * 3600.0),
                        "value": clean(value),
                        "count": n_predicted[k],
                    }
                )
        return out

    def get_prediction(
        self, model_id: str, model_version: str, environment: str, id: str
    ) -> dict[str, Any]:
        """A stored prediction with its actuals (None until they come) and raw inputs."""
        with self._engine.connect() as conn:
            vid, _ = self._resolve(conn, model_id, model_version)
            row = prediction_row(conn, vid, environment, id)
            if row is None:
                raise NotFoundError("prediction", str(id), hint=f"environment {environment!r}")
            a = t.actuals
            act = conn.execute(
                sa.select(a.c.actuals, a.c.ts).where(
                    a.c.version_id == vid, a.c.environment == environment, a.c.pred_id == id
                )
            ).first()
        return {
            "id": row.pred_id,
            "environment": environment,
            "timestamp": _iso(row.ts),
            "features": json.loads(row.features),
            "predictions": json.loads(row.predictions),
            "raw_inputs": None if row.raw_inputs is None else json.loads(row.raw_inputs),
            "actuals": None if act is None else json.loads(act.actuals),
            "actuals_timestamp": None if act is None else _iso(act.ts),
            "segments": [list(s) for s in json.loads(row.segments)],
        }


Span = tuple[int | None, int | None]


def _spans(lo: int | None, hi: int | None, unit: int) -> list[tuple[int, list[Span]]]:
    """The hour window ``[lo, hi)`` (None: unbounded) as ``(hours per cell, spans of
    cell buckets)``: its whole weeks, then whole days of what is left, then hours; no
    cell longer than ``unit`` hours."""
    out: list[tuple[int, list[Span]]] = []
    pieces: list[Span] = [(lo, hi)]
    for size in (n for n in (168, 24) if n <= unit):
        units: list[Span] = []
        rest: list[Span] = []
        for a, b in pieces:
            ulo = None if a is None else -(-a // size)
            uhi = None if b is None else b // size
            if ulo is not None and uhi is not None and ulo >= uhi:
                rest.append((a, b))
                continue
            units.append((ulo, uhi))
            if a is not None and ulo is not None and a < ulo * size:
                rest.append((a, ulo * size))
            if b is not None and uhi is not None and uhi * size < b:
                rest.append((uhi * size, b))
        if units:
            out.append((size, units))
        pieces = rest
    if pieces:
        out.append((1, pieces))
    return out


def _in_spans(column: Any, spans: list[Span]) -> Any:
    """``column`` in any of the ``[a, b)`` spans (None: unbounded)."""
    parts = []
    for a, b in spans:
        cond = [c for c in (None if a is None else column >= a,
                            None if b is None else column < b) if c is not None]  # fmt: skip
        parts.append(sa.and_(*cond) if cond else sa.true())
    return sa.or_(*parts)


def _bucket(value: Any, what: str) -> int | None:
    """The first hour bucket starting at or after ``value`` (None: unbounded)."""
    if value is None:
        return None
    return math.ceil(parse_time(value, what) / 3600)
