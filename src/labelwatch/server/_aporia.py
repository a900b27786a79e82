"""A drop-in server for the Aporia v1 Python SDK (PyPI ``aporia`` 1.0.x).

Code instrumented with ``aporia.init(token=..., host="http://127.0.0.1", port=8765,
environment=...)`` logs into labelwatch unchanged: the SDK's REST calls under
``/v1beta`` and its GraphQL operations at ``/v1/controller/graphql`` are answered here,
at the root (the SDK drops any path of ``host``), onto the same registry, storage and
sketches as the native API: a version created through the SDK is an ordinary
labelwatch version. Not in the OpenAPI document: these routes speak Aporia's protocol.

- Auth: ``Authorization: Bearer <token>``, a labelwatch token of scope ``ingest`` (or
  ``admin``) for every call, creating models and versions included: the SDK has one
  token for everything it does.
- Every reply is JSON with a JSON content type (the SDK decodes the body before looking
  at the status). REST errors are ``{"error": {"code", "message", "detail", ...}}`` (the
  SDK shows ``message``, or ``detail`` with ``init(verbose=True)``); GraphQL errors are
  ``{"errors": [{"message", "extensions": {"verbose_message", "code"}}]}``.
- Calls labelwatch does not answer (tags, feature importance, artifacts, data source
  connections, Aporia monitors, ``log_json``, the hasura helpers) are errors naming the
  call (REST: 501), never a silent success; unknown paths under ``/v1beta`` and ``/v1``
  are a 404 in the REST shape.
- Only ``multi-label`` versions: another ``model_type`` is a 422 naming it. A version's
  ``feature_importance``, deprecated ``labels``, ``mapping`` and custom ``metrics`` schema
  are not stored; a prediction's ``confidence`` and ``metrics`` neither (a warning says
  so when a batch carries them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from labelwatch.errors import AuthError, InvalidInputError, LabelwatchError
from labelwatch.monitor import Monitor
from labelwatch.server._aporia_graphql import NotSupportedError, graphql_error, hasura, run
from labelwatch.server._auth import SCOPES, TokenCache
from labelwatch.server._errors import error_response, from_exception

__all__ = ["CONTROLLER", "HASURA", "aporia_router"]

CONTROLLER = "/v1/controller/graphql"
HASURA = "/v1/tenant-hasura/v1/graphql"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_VERSION = "/v1beta/models/{model_id}/versions/{model_version}"

aporia_router = APIRouter(include_in_schema=False)

Handler = Callable[..., tuple[int, Any]]


# ------------------------------------------------------------------ plumbing
def _authorize(request: Request) -> None:
    """Admit a bearer token of scope ``ingest`` or higher (raises ``AuthError``)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError("ingest", "missing")
    cache: TokenCache = request.app.state.tokens
    level = cache.level(token)
    if level is None:
        raise AuthError("ingest", "invalid")
    if level < SCOPES.index("ingest"):
        raise AuthError("ingest", "scope")


async def _body(request: Request) -> tuple[Any, InvalidInputError | None]:
    """The request's JSON body (None when empty), or the error saying it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        return None, None
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError as exc:
        return None, InvalidInputError("body", "a JSON document", str(exc))


def rest_error(exc: LabelwatchError) -> JSONResponse:
    """The native error envelope of ``exc`` plus ``detail``, which the SDK shows in
    verbose mode; an unsupported call is a 501."""
    if isinstance(exc, NotSupportedError):
        response = error_response(501, str(exc), code="not_supported", hint=exc.hint)
    else:
        response = from_exception(exc)
    body = json.loads(bytes(response.body))
    error = body["error"]
    details = [f"{k}: {error[k]!r}" for k in ("field", "expected", "got") if error.get(k)]
    error["detail"] = error["message"] + (f" ({', '.join(details)})" if details else "")
    headers = {k: v for k, v in response.headers.items() if k.lower() == "www-authenticate"}
    return JSONResponse(body, status_code=response.status_code, headers=headers or None)


async def _rest(request: Request, handler: Handler, *args: Any) -> JSONResponse:
    """Authorize, then run ``handler(monitor, body, *args)`` in the thread pool (the
    database work stays off the event loop); errors in the REST envelope."""
    body, bad_body = await _body(request)

    def work() -> tuple[int, Any]:
        _authorize(request)
        if bad_body is not None:
            raise bad_body
        return handler(request.app.state.monitor, body, *args)

    try:
        status, payload = await run_in_threadpool(work)
    except LabelwatchError as exc:
        return rest_error(exc)
    return JSONResponse(payload, status_code=status)


def _unsupported(what: str, hint: str | None = None) -> Handler:
    def handler(monitor: Monitor, body: Any, *args: Any) -> tuple[int, Any]:
        raise NotSupportedError(what, hint)

    return handler


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInputError(key, "a non-empty str", value)
    return value


def _object(body: Any, what: str = "body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInputError(what, "a JSON object", body)
    return body


# ------------------------------------------------------------------ handlers
def _create_model(monitor: Monitor, body: Any) -> tuple[int, Any]:
    """``aporia.create_model``: 201 ``{"id"}``, 409 when it exists (the SDK then returns
    the id). Description, owner, color, icon and tags are not stored."""
    model_id = _text(_object(body), "id")
    name = None if body.get("name") is None else _text(body, "name")
    if any(m["model_id"] == model_id for m in monitor.list_models()):
        message = f"model {model_id!r} exists"
        return 409, {"error": {"code": "conflict", "message": message, "detail": message}}
    monitor.create_model(model_id, name=name)
    return 201, {"id": model_id}


def _create_version(monitor: Monitor, body: Any, model_id: str) -> tuple[int, Any]:
    """``aporia.create_model_version``: the version with its schema (and the model, if
    new); the same version again is a 201 too, a different schema a 409."""
    version = _text(_object(body), "name")
    model_type = body.get("model_type")
    if model_type != "multi-label":
        raise InvalidInputError(
            "model_type", "'multi-label' (labelwatch monitors multi-label models)", model_type
        )
    schema = _object(body.get("version_schema"), "version_schema")
    created = monitor.create_model_version(
        model_id,
        version,
        model_type="multi-label",
        features=schema.get("features"),
        predictions=schema.get("predictions"),
        raw_inputs=schema.get("raw_inputs"),
    )
    return 201, {
        "id": f"{model_id}/{version}",
        "model_id": model_id,
        "name": version,
        "model_type": created["model_type"],
    }


def _training_sample(
    monitor: Monitor, body: Any, model_id: str, model_version: str
) -> tuple[int, Any]:
    """The sampled rows ``log_training_set`` sends before its aggregates: checked, not
    stored (the baseline is built from the aggregates of the whole set, which follow)."""
    body = _object(body)
    for key in ("features", "labels", "raw_inputs"):
        rows = body.get(key)
        if rows is not None and not (
            isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
        ):
            raise InvalidInputError(key, "a list of row objects or null", rows)
    monitor.get_version(model_id, model_version)
    return 201, {
        "stored": False,
        "message": "labelwatch builds the training baseline from logTrainingSet's aggregates "
        "of the whole set; the sampled rows are not stored",
    }


# -------------------------------------------------------------------- routes
@aporia_router.post("/v1beta/models")
async def create_model(request: Request) -> JSONResponse:
    return await _rest(request, _create_model)


@aporia_router.post("/v1beta/models/{model_id}/versions")
async def create_version(request: Request, model_id: str) -> JSONResponse:
    return await _rest(request, _create_version, model_id)


@aporia_router.post(_VERSION + "/training_sample")
async def training_sample(request: Request, model_id: str, model_version: str) -> JSONResponse:
    return await _rest(request, _training_sample, model_id, model_version)


def _refuse(path: str, methods: list[str], what: str, hint: str | None = None) -> None:
    handler = _unsupported(what, hint)

    async def endpoint(request: Request) -> JSONResponse:
        return await _rest(request, handler)

    aporia_router.add_api_route(path, endpoint, methods=methods)


_refuse("/v1beta/models/{model_id}", ["DELETE"], "deleting a model (delete_model)")
_refuse(
    "/v1beta/models/{model_id}/tags",
    ["GET", "POST"],
    "model tagging (add_model_tags, get_model_tags, delete_model_tag)",
)
_refuse(
    "/v1beta/models/{model_id}/tags/{key}",
    ["DELETE"],
    "model tagging (add_model_tags, get_model_tags, delete_model_tag)",
)
_refuse(
    _VERSION + "/feature_importance",
    ["POST"],
    "setting feature importance (set_feature_importance)",
)
_refuse(_VERSION + "/model_artifact", ["POST"], "uploading model artifacts (upload_model_artifact)")
_refuse(
    _VERSION + "/index_to_word_mapping",
    ["POST"],
    "logging index-to-word mappings (log_index_to_word_mapping)",
)
_refuse(
    _VERSION + "/datasets",
    ["POST"],
    "connecting data sources (connect_serving, connect_training, connect_testing)",
    "summarize a data source into sketches with labelwatch's own data sources",
)
_refuse(
    "/v1beta/monitors",
    ["POST"],
    "creating Aporia monitors (experimental.create_monitor)",
    "declare labelwatch monitors (labelwatch monitors apply)",
)
_refuse(
    "/v1beta/monitors/{monitor_id}",
    ["DELETE"],
    "deleting Aporia monitors (experimental.delete_monitor)",
)


async def _graphql(
    request: Request, execute: Callable[[Request, Any], tuple[int, Any]]
) -> JSONResponse:
    """Authorize, then ``execute(request, body)`` in the thread pool; errors in the
    GraphQL shape."""
    body, bad_body = await _body(request)

    def work() -> tuple[int, Any]:
        try:
            _authorize(request)
        except AuthError as exc:
            status = 403 if exc.reason == "scope" else 401
            return status, {"data": None, "errors": [graphql_error(str(exc), _auth_code(exc))]}
        if bad_body is not None:
            error = graphql_error(str(bad_body), "invalid_request")
            return 400, {"data": None, "errors": [error]}
        return execute(request, body)

    status, payload = await run_in_threadpool(work)
    return JSONResponse(payload, status_code=status)


def _auth_code(exc: AuthError) -> str:
    return "forbidden" if exc.reason == "scope" else "unauthorized"


@aporia_router.post(CONTROLLER)
async def controller(request: Request) -> JSONResponse:
    """The controller's GraphQL operations (``logPredictions`` and the others)."""
    return await _graphql(
        request,
        lambda req, body: run(req.app.state.monitor, req.app.state.max_batch, body),
    )


@aporia_router.post(HASURA)
async def tenant_hasura(request: Request) -> JSONResponse:
    """Aporia's experimental hasura helpers: each one is refused, by name."""
    return await _graphql(request, lambda req, body: hasura(body))


@aporia_router.api_route("/v1beta/{path:path}", methods=_METHODS)
@aporia_router.api_route("/v1/{path:path}", methods=_METHODS)
async def unknown(request: Request, path: str) -> JSONResponse:
    """Anything else under the SDK's prefixes: a 404 in the REST shape, after the token."""

    def work() -> JSONResponse:
        try:
            _authorize(request)
        except AuthError as exc:
            return rest_error(exc)
        where = request.url.path
        message = f"no route {request.method} {where}: not an Aporia v1 SDK call labelwatch answers"
        return JSONResponse(
            {
                "error": {
                    "code": "not_found",
                    "message": message,
                    "detail": message,
                    "field": "path",
                    "got": where,
                }
            },
            status_code=404,
        )

    return await run_in_threadpool(work)
