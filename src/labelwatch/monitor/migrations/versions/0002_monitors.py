"""Monitors, their runs, incidents, webhooks and their outbox, late-touched buckets.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_KEY = sa.String(255)


def upgrade() -> None:
    op.create_table(
        "lw_monitors",
        sa.Column("name", _KEY, primary_key=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("lw_versions.id"), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("last_run_at", sa.Float, nullable=True),
    )
    op.create_table(
        "lw_monitor_runs",
        sa.Column("monitor", _KEY, primary_key=True),
        sa.Column("window_start", sa.Float, primary_key=True),
        sa.Column("window_end", sa.Float, primary_key=True),
        sa.Column("evaluated_at", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.Text, nullable=False),
    )
    op.create_table(
        "lw_incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("monitor", _KEY, nullable=False, index=True),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("resolved_at", sa.Float, nullable=True),
        sa.Column("resolved_by", _KEY, nullable=True),
        sa.Column("acknowledged_by", _KEY, nullable=True),
        sa.Column("window_start", sa.Float, nullable=False),
        sa.Column("window_end", sa.Float, nullable=False),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("breaches", sa.Text, nullable=False),
    )
    op.create_table(
        "lw_webhooks",
        sa.Column("name", _KEY, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("min_severity", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "lw_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("webhook", _KEY, nullable=False),
        sa.Column("incident_id", sa.Integer, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("delivered_at", sa.Float, nullable=True),
    )
    op.create_table(
        "lw_touched",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("environment", _KEY, nullable=False),
        sa.Column("bucket", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "lw_touched",
        "lw_deliveries",
        "lw_webhooks",
        "lw_incidents",
        "lw_monitor_runs",
        "lw_monitors",
    ):
        op.drop_table(table)
