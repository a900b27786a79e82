"""The monitor: the service's domain and storage, without HTTP.

Model versions with a schema, prediction / actual / raw-input logging into hour-bucketed
``ScoreSketch`` cells, baselines, time-bucketed queries and tokens, over SQLite (WAL)
or PostgreSQL through SQLAlchemy, the schema managed by Alembic migrations shipped in
the package.

>>> from labelwatch.monitor import Monitor
>>> mon = Monitor("sqlite:///monitor.db")  # doctest: +SKIP
"""

from labelwatch.errors import AuthError, ConflictError, NotFoundError
from labelwatch.monitor._monitor import SAMPLE_METRICS, SCOPES, SKETCH_METRICS, Monitor
from labelwatch.monitor._pairs import MAX_PAIR_LABELS

__all__ = [
    "MAX_PAIR_LABELS",
    "SAMPLE_METRICS",
    "SCOPES",
    "SKETCH_METRICS",
    "AuthError",
    "ConflictError",
    "Monitor",
    "NotFoundError",
]
