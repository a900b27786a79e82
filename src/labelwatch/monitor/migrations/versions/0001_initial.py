"""The initial monitor schema.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_KEY = sa.String(255)


def _cell_key() -> list[sa.Column[object]]:
    """The key of a sketch / sample-sums cell: version, environment, field, segment, hour."""
    return [
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("environment", _KEY, primary_key=True),
        sa.Column("field", _KEY, primary_key=True),
        sa.Column("seg_feature", _KEY, primary_key=True),
        sa.Column("seg_value", _KEY, primary_key=True),
        sa.Column("bucket", sa.Integer, primary_key=True),
    ]


def upgrade() -> None:
    op.create_table(
        "lw_models",
        sa.Column("model_id", _KEY, primary_key=True),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "lw_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", _KEY, sa.ForeignKey("lw_models.model_id"), nullable=False),
        sa.Column("version", _KEY, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("segments", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("model_id", "version", name="uq_lw_versions_model_version"),
    )
    op.create_table(
        "lw_labels",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("lw_versions.id"), nullable=False),
        sa.Column("field", _KEY, nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("declared", sa.Boolean, nullable=False),
        sa.UniqueConstraint("version_id", "field", "label", name="uq_lw_labels"),
    )
    op.create_table(
        "lw_unseen_labels",
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("field", _KEY, primary_key=True),
        sa.Column("label", sa.Text, primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
    )
    op.create_table(
        "lw_environments",
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("name", _KEY, primary_key=True),
    )
    op.create_table(
        "lw_predictions",
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("environment", _KEY, primary_key=True),
        sa.Column("pred_id", _KEY, primary_key=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("bucket", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("predictions", sa.Text, nullable=False),
        sa.Column("raw_inputs", sa.Text, nullable=True),
        sa.Column("segments", sa.Text, nullable=False),
    )
    op.create_table(
        "lw_actuals",
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("environment", _KEY, primary_key=True),
        sa.Column("pred_id", _KEY, primary_key=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("actuals", sa.Text, nullable=False),
        sa.Column("joined", sa.Boolean, nullable=False),
    )
    op.create_table(
        "lw_score_cells",
        *_cell_key(),
        sa.Column("label_id", sa.Integer, primary_key=True),
        sa.Column("counts", sa.LargeBinary, nullable=False),
        sa.Column("coarse", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "lw_sample_cells",
        *_cell_key(),
        sa.Column("sums", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "lw_baselines",
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("field", _KEY, primary_key=True),
        sa.Column("environment", _KEY, nullable=True),
        sa.Column("sketch", sa.LargeBinary, nullable=False),
        sa.Column("samples", sa.LargeBinary, nullable=True),
        sa.Column("feature_stats", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "lw_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "lw_tokens",
        "lw_baselines",
        "lw_sample_cells",
        "lw_score_cells",
        "lw_actuals",
        "lw_predictions",
        "lw_environments",
        "lw_unseen_labels",
        "lw_labels",
        "lw_versions",
        "lw_models",
    ):
        op.drop_table(table)
