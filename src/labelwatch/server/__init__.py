"""The HTTP server: the REST API under ``/api/v1`` over a :class:`~labelwatch.monitor.Monitor`,
the web dashboard, and the endpoints of the Aporia v1 Python SDK (``/v1beta``,
``/v1/controller/graphql``), so code instrumented with it logs here unchanged.

Run it with ``labelwatch serve``, or build the ASGI app yourself:

>>> from labelwatch.monitor import Monitor
>>> from labelwatch.server import create_app
>>> app = create_app(Monitor("sqlite://"))
>>> "/api/v1/models" in app.openapi()["paths"]
True
"""

from labelwatch.server._app import DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_BYTES, create_app
from labelwatch.server._auth import SCOPES

__all__ = ["DEFAULT_MAX_BATCH", "DEFAULT_MAX_BODY_BYTES", "SCOPES", "create_app"]
