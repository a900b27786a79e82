"""The monitor's tables (SQLAlchemy Core), as the Alembic migrations create them.

Times are float seconds since the epoch (UTC) and hour buckets are integer hours since
the epoch, so both databases store and compare them the same way. JSON is stored as
text that this package writes canonically (sorted keys), which also gives the digest
used for idempotent retries.

Sketch storage: one row per (version, environment, field, segment, hour, label) holding
that label's ``(3, m)`` float64 counts (negative, positive, unlabeled x bins) as bytes.
A field's vocabulary may grow with traffic: a new label is a new row, so stored rows
never need widening, and a query builds the ``ScoreSketch`` over the field's current
vocabulary (``labels`` ordered by id), a label without a row counting zero.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "actuals",
    "baselines",
    "deliveries",
    "environments",
    "feature_cells",
    "incidents",
    "labels",
    "metadata",
    "models",
    "monitor_runs",
    "monitors",
    "pair_cells",
    "predictions",
    "sample_cells",
    "sample_days",
    "sample_weeks",
    "score_cells",
    "score_days",
    "score_weeks",
    "staged_parts",
    "tokens",
    "touched",
    "unseen_labels",
    "versions",
    "webhooks",
]

metadata = sa.MetaData()


def _cell_key(what: str) -> list[sa.Column[object]]:
    """The key of a cell: version, environment, ``what`` (field or feature), segment, hour."""
    return [
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("environment", sa.String(255), primary_key=True),
        sa.Column(what, sa.String(255), primary_key=True),
        sa.Column("seg_feature", sa.String(255), primary_key=True),
        sa.Column("seg_value", sa.String(255), primary_key=True),
        sa.Column("bucket", sa.Integer, primary_key=True),
    ]

models = sa.Table(
    "lw_models",
    metadata,
    sa.Column("model_id", sa.String(255), primary_key=True),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

versions = sa.Table(
    "lw_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.String(255), sa.ForeignKey("lw_models.model_id"), nullable=False),
    sa.Column("version", sa.String(255), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("segments", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("model_id", "version", name="uq_lw_versions_model_version"),
)

labels = sa.Table(
    "lw_labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("lw_versions.id"), nullable=False),
    sa.Column("field", sa.String(255), nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("declared", sa.Boolean, nullable=False),
    sa.UniqueConstraint("version_id", "field", "label", name="uq_lw_labels"),
)

unseen_labels = sa.Table(
    "lw_unseen_labels",
    metadata,
    sa.Column("version_id", sa.Integer, primary_key=True),
    sa.Column("field", sa.String(255), primary_key=True),
    sa.Column("label", sa.Text, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("first_seen", sa.Float, nullable=False),
)

environments = sa.Table(
    "lw_environments",
    metadata,
    sa.Column("version_id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
)

predictions = sa.Table(
    "lw_predictions",
    metadata,
    sa.Column("version_id", sa.Integer, primary_key=True),
    sa.Column("environment", sa.String(255), primary_key=True),
    sa.Column("pred_id", sa.String(255), primary_key=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("bucket", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("features", sa.Text, nullable=False),
    sa.Column("predictions", sa.Text, nullable=False),
    sa.Column("raw_inputs", sa.Text, nullable=True),
    # the (feature, value) segments this prediction was counted in, as JSON
    sa.Column("segments", sa.Text, nullable=False),
)

actuals = sa.Table(
    "lw_actuals",
    metadata,
    sa.Column("version_id", sa.Integer, primary_key=True),
    sa.Column("environment", sa.String(255), primary_key=True),
    sa.Column("pred_id", sa.String(255), primary_key=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("actuals", sa.Text, nullable=False),
    sa.Column("joined", sa.Boolean, nullable=False),
)

def _score_table(name: str) -> sa.Table:
    """Per cell and label: the counts, and the same folded into the bins between the
    field's thresholds (``coarse``)."""
    return sa.Table(
        name,
        metadata,
        *_cell_key("field"),
        sa.Column("label_id", sa.Integer, primary_key=True),
        sa.Column("counts", sa.LargeBinary, nullable=False),
        sa.Column("coarse", sa.LargeBinary, nullable=False),
    )


def _sample_table(name: str) -> sa.Table:
    """Per cell: the per-sample sums."""
    sums = sa.Column("sums", sa.LargeBinary, nullable=False)
    return sa.Table(name, metadata, *_cell_key("field"), sums)


score_cells = _score_table("lw_score_cells")
sample_cells = _sample_table("lw_sample_cells")
# the same cells summed per UTC day (``bucket``: days since the epoch), written in the same
# transaction: a long window reads its whole days here and only its other hours above
score_days = _score_table("lw_score_days")
sample_days = _sample_table("lw_sample_days")
# and per week of 7 UTC days (``bucket``: hours since the epoch // 168; weeks start on
# Thursdays, like the epoch): a month reads four weeks, a few days and hours
score_weeks = _score_table("lw_score_weeks")
sample_weeks = _sample_table("lw_sample_weeks")

# label co-occurrence per cell (see _pairs.py): sparse upper triangles, by label id
pair_cells = sa.Table(
    "lw_pair_cells",
    metadata,
    *_cell_key("field"),
    sa.Column("pairs", sa.LargeBinary, nullable=False),
)

# feature summaries per cell (see _feature_cells.py)
feature_cells = sa.Table(
    "lw_feature_cells",
    metadata,
    *_cell_key("feature"),
    sa.Column("summary", sa.LargeBinary, nullable=False),
)

baselines = sa.Table(
    "lw_baselines",
    metadata,
    sa.Column("version_id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("field", sa.String(255), primary_key=True),
    sa.Column("environment", sa.String(255), nullable=True),
    sa.Column("sketch", sa.LargeBinary, nullable=False),
    sa.Column("samples", sa.LargeBinary, nullable=True),
    sa.Column("feature_stats", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

# parts of a summary posted in several requests, until the last arrives (_summaries.py)
staged_parts = sa.Table(
    "lw_staged_parts",
    metadata,
    sa.Column("upload_id", sa.String(64), primary_key=True),
    sa.Column("part", sa.Integer, primary_key=True),
    sa.Column("version_id", sa.Integer, nullable=False),
    sa.Column("environment", sa.String(255), nullable=False),
    sa.Column("parts", sa.Integer, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

tokens = sa.Table(
    "lw_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

# ------------------------------------------------------------- monitors and alerts
monitors = sa.Table(
    "lw_monitors",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("lw_versions.id"), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),  # canonical JSON of the declared monitor
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("last_run_at", sa.Float, nullable=True),  # the evaluation time of the last run
)

# one row per evaluated window of a monitor: its values (the metric's own history)
monitor_runs = sa.Table(
    "lw_monitor_runs",
    metadata,
    sa.Column("monitor", sa.String(255), primary_key=True),
    sa.Column("window_start", sa.Float, primary_key=True),
    sa.Column("window_end", sa.Float, primary_key=True),
    sa.Column("evaluated_at", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # ok | breach | too_few
    sa.Column("result", sa.Text, nullable=False),  # JSON: per entry value, breach, n
)

incidents = sa.Table(
    "lw_incidents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("monitor", sa.String(255), nullable=False, index=True),
    sa.Column("version_id", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open | acknowledged | resolved
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("opened_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("resolved_at", sa.Float, nullable=True),
    sa.Column("resolved_by", sa.String(255), nullable=True),
    sa.Column("acknowledged_by", sa.String(255), nullable=True),
    sa.Column("window_start", sa.Float, nullable=False),  # the latest breaching window
    sa.Column("window_end", sa.Float, nullable=False),
    sa.Column("runs", sa.Integer, nullable=False),  # breaching evaluations folded in
    sa.Column("breaches", sa.Text, nullable=False),  # JSON: the ranked breaching entries
)

webhooks = sa.Table(
    "lw_webhooks",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("min_severity", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# the webhook outbox: a delivery survives restarts until acknowledged or given up
deliveries = sa.Table(
    "lw_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("webhook", sa.String(255), nullable=False),
    sa.Column("incident_id", sa.Integer, nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # pending|delivered|failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_at", sa.Float, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("delivered_at", sa.Float, nullable=True),
)

# hour buckets whose performance changed after the fact (late actuals): windows over
# them are evaluated again by the next monitor run
touched = sa.Table(
    "lw_touched",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("version_id", sa.Integer, nullable=False),
    sa.Column("environment", sa.String(255), nullable=False),
    sa.Column("bucket", sa.Integer, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)
