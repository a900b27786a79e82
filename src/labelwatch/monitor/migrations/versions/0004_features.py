"""Feature summary cells.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_KEY = sa.String(255)


def upgrade() -> None:
    op.create_table(
        "lw_feature_cells",
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("environment", _KEY, primary_key=True),
        sa.Column("feature", _KEY, primary_key=True),
        sa.Column("seg_feature", _KEY, primary_key=True),
        sa.Column("seg_value", _KEY, primary_key=True),
        sa.Column("bucket", sa.Integer, primary_key=True),
        sa.Column("summary", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("lw_feature_cells")
