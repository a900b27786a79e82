"""Score cells of whole counts stored as unsigned integers (``_cells.encode_counts``).

Nothing to change on upgrade: the new forms are read beside the float64 ones, and cells
take them when next written. The revision marks the database, so a release from before
it refuses to open one that may hold them (Alembic: an unknown revision) instead of
misreading cells. Downgrade rewrites every integer-form cell in a float64 form.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TABLES = ("lw_score_cells", "lw_score_days", "lw_score_weeks")
_KEYS = ("version_id", "environment", "field", "seg_feature", "seg_value", "bucket", "label_id")
_MAGIC = b"\xff\xff\xff\xff"  # the first bytes of an integer-form cell, and of no other
_ENTRY = np.dtype([("pos", "<u4"), ("value", "<f8")])  # a float64 sparse cell's entries
_BATCH = 2000


def upgrade() -> None:
    pass


def downgrade() -> None:
    from labelwatch.monitor._cells import decode_counts

    bind = op.get_bind()
    meta = sa.MetaData()
    sizes = _cell_sizes(bind, sa.Table("lw_versions", meta, autoload_with=bind))
    for name in _TABLES:
        table = sa.Table(name, meta, autoload_with=bind)
        update = (
            sa.update(table)
            .where(*(table.c[k] == sa.bindparam(f"k_{k}") for k in _KEYS))
            .values(counts=sa.bindparam("v_counts"), coarse=sa.bindparam("v_coarse"))
        )
        query = sa.select(*(table.c[k] for k in _KEYS), table.c.counts, table.c.coarse)
        batch: list[dict[str, Any]] = []
        for row in bind.execute(query).all():
            if row.counts[:4] != _MAGIC and row.coarse[:4] != _MAGIC:
                continue
            size, coarse_size = sizes[(row.version_id, row.field)]
            batch.append(
                {
                    **{f"k_{k}": getattr(row, k) for k in _KEYS},
                    "v_counts": _float_form(decode_counts(row.counts, (size,))),
                    "v_coarse": _float_form(decode_counts(row.coarse, (coarse_size,))),
                }
            )
            if len(batch) >= _BATCH:
                bind.execute(update, batch)
                batch = []
        if batch:
            bind.execute(update, batch)


def _float_form(values: np.ndarray) -> bytes:
    """A cell as releases before this revision stored it: sparse float64 entries when
    shorter than the dense float64 values."""
    nz = np.flatnonzero(values)
    if len(nz) * _ENTRY.itemsize >= values.size * 8:
        return np.asarray(values, dtype="<f8").tobytes()
    entries = np.empty(len(nz), dtype=_ENTRY)
    entries["pos"], entries["value"] = nz, values[nz]
    return entries.tobytes()


def _cell_sizes(bind: Any, versions: sa.Table) -> dict[tuple[int, str], tuple[int, int]]:
    """Per (version, field): the number of values of its full and coarse cells,
    ``3 x edges``, from the version's spec (bins and the field's thresholds)."""
    from labelwatch.metrics import ScoreSketch
    from labelwatch.monitor._schema import VersionSpec

    out: dict[tuple[int, str], tuple[int, int]] = {}
    for row in bind.execute(sa.select(versions.c.id, versions.c.spec)):
        spec = VersionSpec.from_json(json.loads(row.spec))
        for field in spec.dict_fields:
            fine = ScoreSketch.empty([], bins=spec.bins, thresholds=spec.edges(field)).edges
            coarse = ScoreSketch.empty([], bins=1, thresholds=spec.edges(field)).edges
            out[(row.id, field)] = (3 * len(fine), 3 * len(coarse))
    return out
