"""Week roll-ups of the score and sample cells (7 UTC days, bucket: hour // 168), filled
from the stored day roll-ups.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_KEY = sa.String(255)
_ENTRY = np.dtype([("pos", "<u4"), ("value", "<f8")])  # a sparse cell's entries
_BATCH = 2000


def _key_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("environment", _KEY, primary_key=True),
        sa.Column("field", _KEY, primary_key=True),
        sa.Column("seg_feature", _KEY, primary_key=True),
        sa.Column("seg_value", _KEY, primary_key=True),
        sa.Column("bucket", sa.Integer, primary_key=True),
    ]


def _decode(blob: bytes, size: int) -> np.ndarray:
    # every stored form, also those of later releases (a downgrade, then this again)
    from labelwatch.monitor._cells import decode_counts

    return decode_counts(blob, (size,))


def _encode(values: np.ndarray) -> bytes:
    nz = np.flatnonzero(values)
    if len(nz) * _ENTRY.itemsize >= values.size * 8:
        return values.astype("<f8").tobytes()
    entries = np.empty(len(nz), dtype=_ENTRY)
    entries["pos"], entries["value"] = nz, values[nz]
    return entries.tobytes()


def upgrade() -> None:
    op.create_table(
        "lw_score_weeks",
        *_key_columns(),
        sa.Column("label_id", sa.Integer, primary_key=True),
        sa.Column("counts", sa.LargeBinary, nullable=False),
        sa.Column("coarse", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "lw_sample_weeks",
        *_key_columns(),
        sa.Column("sums", sa.LargeBinary, nullable=False),
    )
    _backfill()


def _backfill() -> None:
    """Sum the stored day cells per week, streaming in key order. Score cells may be
    sparse: they are decoded to their field's dense length, from the version's spec."""
    bind = op.get_bind()
    meta = sa.MetaData()
    versions = sa.Table("lw_versions", meta, autoload_with=bind)
    sc = sa.Table("lw_score_days", meta, autoload_with=bind)
    sm = sa.Table("lw_sample_days", meta, autoload_with=bind)
    sw = sa.Table("lw_score_weeks", meta, autoload_with=bind)
    smw = sa.Table("lw_sample_weeks", meta, autoload_with=bind)
    sizes = _cell_sizes(bind, versions)
    key = [sc.c.version_id, sc.c.environment, sc.c.field, sc.c.seg_feature, sc.c.seg_value]
    batch: list[dict[str, Any]] = []
    current: tuple[Any, ...] | None = None
    acc: list[np.ndarray] = []
    query = sa.select(*key, sc.c.label_id, sc.c.bucket, sc.c.counts, sc.c.coarse).order_by(
        *key, sc.c.label_id, sc.c.bucket
    )
    for row in bind.execute(query):
        size, coarse_size = sizes[(row.version_id, row.field)]
        values = [_decode(row.counts, size), _decode(row.coarse, coarse_size)]
        k = (*row[:6], row.bucket // 7)
        if k != current:
            if current is not None:
                batch.append(_score_row(current, acc))
            current, acc = k, values
        else:
            acc = [a + v for a, v in zip(acc, values, strict=True)]
        if len(batch) >= _BATCH:
            bind.execute(sa.insert(sw), batch)
            batch = []
    if current is not None:
        batch.append(_score_row(current, acc))
    if batch:
        bind.execute(sa.insert(sw), batch)
    skey = [sm.c.version_id, sm.c.environment, sm.c.field, sm.c.seg_feature, sm.c.seg_value]
    batch = []
    week: tuple[Any, ...] | None = None
    total: np.ndarray = np.zeros(0)
    for row in bind.execute(sa.select(*skey, sm.c.bucket, sm.c.sums).order_by(*skey, sm.c.bucket)):
        part = np.frombuffer(row.sums, dtype="<f8")
        dkey = (*row[:5], row.bucket // 7)
        if dkey != week:
            if week is not None:
                batch.append(_sums_row(week, total))
            week, total = dkey, part.copy()
        else:
            total = total + part
        if len(batch) >= _BATCH:
            bind.execute(sa.insert(smw), batch)
            batch = []
    if week is not None:
        batch.append(_sums_row(week, total))
    if batch:
        bind.execute(sa.insert(smw), batch)


_NAMES = ("version_id", "environment", "field", "seg_feature", "seg_value")


def _score_row(k: tuple[Any, ...], acc: list[np.ndarray]) -> dict[str, Any]:
    return {**dict(zip(_NAMES, k[:5], strict=True)), "label_id": k[5], "bucket": k[6],
            "counts": _encode(acc[0]), "coarse": _encode(acc[1])}  # fmt: skip


def _sums_row(k: tuple[Any, ...], total: Any) -> dict[str, Any]:
    return {**dict(zip(_NAMES, k[:5], strict=True)), "bucket": k[5],
            "sums": np.asarray(total, dtype="<f8").tobytes()}  # fmt: skip


def _cell_sizes(bind: Any, versions: sa.Table) -> dict[tuple[int, str], tuple[int, int]]:
    """Per (version, field): the number of values of its full and coarse cells,
    ``3 x edges``, from the version's spec (bins and the field's thresholds)."""
    from labelwatch.monitor._schema import VersionSpec

    out: dict[tuple[int, str], tuple[int, int]] = {}
    for row in bind.execute(sa.select(versions.c.id, versions.c.spec)):
        spec = VersionSpec.from_json(json.loads(row.spec))
        for field in spec.dict_fields:
            fine = len(_edges(spec.bins, spec.edges(field)))
            coarse = len(_edges(1, spec.edges(field)))
            out[(row.id, field)] = (3 * fine, 3 * coarse)
    return out


def _edges(bins: int, thresholds: Any) -> Any:
    from labelwatch.metrics import ScoreSketch

    return ScoreSketch.empty([], bins=bins, thresholds=thresholds).edges


def downgrade() -> None:
    op.drop_table("lw_sample_weeks")
    op.drop_table("lw_score_weeks")
