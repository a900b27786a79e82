"""``create_app``: the FastAPI application over one :class:`~labelwatch.monitor.Monitor`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from labelwatch.errors import LabelwatchError
from labelwatch.monitor import Monitor
from labelwatch.server._alert_routes import alert_router
from labelwatch.server._aporia import aporia_router
from labelwatch.server._auth import TokenCache
from labelwatch.server._dashboard import dashboard_router
from labelwatch.server._errors import error_response, from_exception, from_validation_error
from labelwatch.server._routes import BatchTooLargeError, router
from labelwatch.server._scheduler import Scheduler
from labelwatch.server._schemas import Health
from labelwatch.server._source_routes import source_router

__all__ = ["DEFAULT_MAX_BATCH", "DEFAULT_MAX_BODY_BYTES", "create_app"]

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
"""A request body larger than this is refused with 413 (a 10,000-prediction batch of
20-label dicts and 10 features is about 8 MB)."""
DEFAULT_MAX_BATCH = 10_000
"""A batch with more records than this is refused with 413."""

logger = logging.getLogger("labelwatch.server")


class _BodyLimit:
    """Refuses a body over ``max_bytes`` with 413, by Content-Length or while it streams."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = -1
            if size < 0:
                await error_response(
                    400, "Content-Length: expected a non-negative integer",
                    field="Content-Length", expected="a non-negative integer", got=declared.decode(
                        "latin-1"
                    ),
                )(scope, receive, send)
                return
            if size > self.max_bytes:
                await self._too_large(size)(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises an HTTPException from reading the body unchanged.
                    raise StarletteHTTPException(413, self._message(received))
            return message

        await self.app(scope, limited, send)

    def _message(self, size: int) -> str:
        return f"body: expected at most {self.max_bytes} bytes, got {size} or more"

    def _too_large(self, size: int) -> JSONResponse:
        return error_response(
            413, self._message(size), field="body",
            expected=f"at most {self.max_bytes} bytes", got=size,
        )


class _CatchAll:
    """The last line: any unhandled exception is logged and answered with a 500 envelope
    (never a traceback)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            logger.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await error_response(500, "internal server error")(scope, receive, send)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 404:
        message = f"no route {request.method} {request.url.path}"
        return error_response(404, message, field="path", got=request.url.path)
    if status == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
        return error_response(405, message, field="method", got=request.method)
    if status == 413:
        return error_response(413, str(exc.detail), field="body")
    headers = dict(exc.headers) if exc.headers else None
    return error_response(status, str(exc.detail), headers=headers)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return from_validation_error(exc)


async def _on_labelwatch_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LabelwatchError)
    return from_exception(exc)


async def _on_batch_too_large(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BatchTooLargeError)
    return error_response(
        413, str(exc), field="records", expected=f"at most {exc.limit} records", got=exc.size,
        hint="split the batch",
    )


def create_app(
    monitor: Monitor,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_batch: int = DEFAULT_MAX_BATCH,
    schedule_interval: float = 0,
    scheduler: Callable[[Monitor, float], Scheduler] = Scheduler,
    close_monitor: bool = False,
) -> FastAPI:
    """The REST API over ``monitor``: routes under ``/api/v1``, ``/healthz`` (no token),
    the OpenAPI document at ``/openapi.json``. The caller owns (and closes) the monitor.

    ``schedule_interval`` > 0: while the app runs (its lifespan), a background thread
    runs the due monitors and delivers webhooks every that many seconds (0: never);
    ``scheduler`` builds that thread (``labelwatch serve --workers`` passes one that runs
    only while it holds the database's scheduler lock). ``close_monitor``: the app owns
    the monitor and closes it when it shuts down.

    >>> from labelwatch.monitor import Monitor
    >>> app = create_app(Monitor("sqlite://"))
    >>> app.openapi()["info"]["title"]
    'labelwatch'
    """
    from labelwatch import __version__

    if schedule_interval < 0:
        raise ValueError(f"schedule_interval: expected seconds >= 0, got {schedule_interval!r}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = scheduler(monitor, schedule_interval) if schedule_interval > 0 else None
        app.state.scheduler = thread
        if thread is not None:
            thread.start()
        try:
            yield
        finally:
            if thread is not None:  # waits for a tick in progress, off the event loop
                await run_in_threadpool(thread.stop)
            if close_monitor:
                monitor.close()

    app = FastAPI(
        title="labelwatch",
        version=__version__,
        summary="Monitor multi-label classification models in production.",
        description=(
            "Every route but `/healthz` needs `Authorization: Bearer <token>`. Scopes nest: "
            "`read` (queries) < `ingest` (logging, acknowledging and resolving incidents) < "
            "`admin` (models, versions, tokens, monitors, webhooks). "
            "Every error is `{\"error\": {\"code\", \"message\", \"field\", \"expected\", "
            "\"got\", \"row\", \"label\", \"hint\"}}`."
        ),
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.monitor = monitor
    app.state.tokens = TokenCache(monitor)
    app.state.max_batch = max_batch
    app.include_router(router)
    app.include_router(alert_router)
    app.include_router(source_router)  # data source summaries, Parquet / Arrow uploads
    app.include_router(aporia_router)  # the Aporia v1 SDK's endpoints, at the root
    app.include_router(dashboard_router)  # the web dashboard at /

    @app.get("/healthz", tags=["health"])
    async def healthz() -> Health:
        """Liveness; needs no token."""
        return Health(version=__version__)

    handlers: list[tuple[Any, Any]] = [
        (StarletteHTTPException, _on_http_error),
        (RequestValidationError, _on_validation_error),
        (LabelwatchError, _on_labelwatch_error),
        (BatchTooLargeError, _on_batch_too_large),
    ]
    for exc_class, handler in handlers:
        app.add_exception_handler(exc_class, handler)
    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(_CatchAll)
    return app
