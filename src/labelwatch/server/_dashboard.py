"""The web dashboard: sign-in, HTML pages, their static files and one JSON endpoint.

Pages are Jinja2 templates (autoescaped: model, version, label and feature names are
user data) whose data is embedded as JSON in ``<script type="application/json">`` and
drawn by ``static/dashboard.js`` with the vendored uPlot; nothing is fetched from
elsewhere, so the pages work offline. Signing in stores the token in an HTTP-only,
SameSite=Strict cookie, which the API accepts too (``_auth.COOKIE``).

Routes (all but ``/login`` and ``/static`` need a ``read`` token):

- ``/`` models and versions; ``/login`` (``?token=`` once, or the form), ``/logout``
- ``/ui/overview``, ``/ui/labels``, ``/ui/label``, ``/ui/cooccurrence``, ``/ui/drift``,
  ``/ui/incidents``, ``/ui/monitors``: query ``model``, ``version`` and the pickers'
  ``env``, ``field``, ``range`` (24h, 7d, 30d, 90d, all, custom with ``start`` /
  ``end``), ``seg`` / ``seg_value``; ``/ui/label`` takes ``label``
- ``/ui/api/estimated-f1``: the overview's estimated F1 per period (it is the slow part)
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Depends, Request
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from labelwatch.errors import LabelwatchError, NotFoundError
from labelwatch.monitor import Monitor
from labelwatch.server import _views as views
from labelwatch.server._auth import COOKIE, TokenCache, require
from labelwatch.server._errors import from_exception, jsonable

__all__ = ["PAGES", "dashboard_router", "render"]

HERE = Path(__file__).parent
STATIC = HERE / "static"
COOKIE_MAX_AGE = 30 * 24 * 3600
# Scripts and styles from this origin only: even a failure to escape could run nothing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
# the version pages in the order of the nav: name -> title
PAGES: dict[str, str] = {
    "overview": "Overview",
    "labels": "Labels",
    "cooccurrence": "Co-occurrence",
    "drift": "Drift",
    "incidents": "Incidents",
    "monitors": "Monitors",
}

dashboard_router = APIRouter(include_in_schema=False)

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["script_json"] = lambda data: Markup(views.dumps_for_script(data))


def render(template: str, **context: Any) -> str:
    """A template of ``templates/`` rendered (autoescaped) with ``context``."""
    return _env.get_template(template).render(**context)


def _html(text: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(
        text, status,
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store",
                 "X-Content-Type-Options": "nosniff", **(headers or {})},
    )


# -------------------------------------------------------------------- sign-in
def _token_of(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and auth[7:].strip():
        return auth[7:].strip()
    return request.cookies.get(COOKIE) or None


def _level(request: Request, token: str | None) -> int | None:
    if not token:
        return None
    cache: TokenCache = request.app.state.tokens
    return cache.level(token)


def _safe_next(value: str | None) -> str:
    """A local path to go to after signing in (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _sign_in_redirect(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urllib.parse.urlencode({"next": here}), 303)


def _signed_in(request: Request, token: str, to: str) -> RedirectResponse:
    response = RedirectResponse(to, 303)
    response.set_cookie(
        COOKIE, token, max_age=COOKIE_MAX_AGE, httponly=True, samesite="strict",
        secure=request.url.scheme == "https", path="/",
    )
    return response


def _login_page(next_: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    return _html(render("login.html", next=next_, error=error, title="Sign in"), status)


@dashboard_router.get("/login")
def login(request: Request, token: str | None = None, next: str | None = None) -> Response:
    """The sign-in page; ``?token=`` signs in at once (the token goes to the cookie and
    the URL is left for ``next``, so it does not stay in the address bar)."""
    to = _safe_next(next)
    if token is None:
        return _login_page(to)
    if _level(request, token) is None:
        return _login_page(to, "That token is not valid.", 401)
    return _signed_in(request, token, to)


@dashboard_router.post("/login")
async def login_form(request: Request) -> Response:
    """The sign-in form's POST (``token``, ``next``, url-encoded)."""
    form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    to = _safe_next((form.get("next") or ["/"])[0])
    level = await run_in_threadpool(_level, request, token)
    if level is None:
        return _login_page(to, "That token is not valid." if token else "Paste a token.", 401)
    return _signed_in(request, token, to)


@dashboard_router.post("/logout")
def logout() -> Response:
    """Forget the sign-in cookie."""
    response = RedirectResponse("/login", 303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# --------------------------------------------------------------------- static
@dashboard_router.get("/static/{path:path}")
def static(path: str) -> Response:
    """The dashboard's CSS, JS and the vendored chart library (no token needed)."""
    target = (STATIC / path).resolve()
    if not target.is_file() or STATIC.resolve() not in target.parents:
        raise NotFoundError("static file", path)
    return FileResponse(target, headers={"Cache-Control": "public, max-age=3600"})


# ---------------------------------------------------------------------- pages
def _monitor(request: Request) -> Monitor:
    mon: Monitor = request.app.state.monitor
    return mon


def _error_page(exc: LabelwatchError, title: str = "Error") -> HTMLResponse:
    status = from_exception(exc).status_code
    return _html(render("error.html", title=title, message=str(exc), status=status), status)


def _query(request: Request, mon: Monitor) -> views.Query:
    p = request.query_params
    model, version = p.get("model"), p.get("version")
    if not model or not version:
        raise NotFoundError("model version", f"{model or '?'}/{version or '?'}",
                            hint="pick one on the models page")
    return views.Query.resolve(
        mon, model, version, environment=p.get("env") or None,
        field_name=p.get("field") or None, range_=p.get("range") or None,
        start=p.get("start"), end=p.get("end"), seg_feature=p.get("seg") or None,
        seg_value=p.get("seg_value"),
    )


def _link(q: views.Query, page: str, **extra: str) -> str:
    """The URL of a version page keeping the pickers' values."""
    params: dict[str, str] = {"model": q.model_id, "version": q.version, "env": q.environment,
                              "field": q.field, "range": q.range}
    if q.range == "custom":
        params["start"], params["end"] = q.custom_start, q.custom_end
    if q.segment is not None:
        params["seg"], params["seg_value"] = q.segment
    return f"/ui/{page}?" + urllib.parse.urlencode({**params, **extra})


def _version_page(
    page: str, build: Callable[[Monitor, views.Query, Request], dict[str, Any]]
) -> Callable[[Request], Response]:
    def endpoint(request: Request) -> Response:
        if _level(request, _token_of(request)) is None:
            return _sign_in_redirect(request)
        mon = _monitor(request)
        try:
            q = _query(request, mon)
            with mon.reading():  # the page's views of one window: one read of its cells
                data = build(mon, q, request)
        except LabelwatchError as exc:
            return _error_page(exc)
        dict_fields = [f for f, kind in q.info["predictions"].items() if kind == "dict"]
        context = {
            "title": data.pop("title", PAGES.get(page, page)),
            "page": page,
            "q": q,
            "pages": PAGES,
            "link": lambda name, **extra: _link(q, name, **extra),
            "dict_fields": dict_fields,
            "ranges": [*views.RANGES, "custom"],
            "extra_params": data.pop("params", {}),
            "data": {"page": page, "window": q.window(), "links": {
                "label": _link(q, "label"), "estimated": _link(q, "api/estimated-f1"),
                "incidents": _link(q, "incidents"),
            }, **data},
        }
        return _html(render(f"{page}.html", **context))

    endpoint.__name__ = f"page_{page}"
    return endpoint


def _label_data(mon: Monitor, q: views.Query, request: Request) -> dict[str, Any]:
    label = request.query_params.get("label")
    if label is None:
        raise NotFoundError("label", "?", hint="pick a label on the labels page")
    return {"title": f"Label {label}", "params": {"label": label},
            "label": views.label_view(mon, q, label)}


def _drift_data(mon: Monitor, q: views.Query, request: Request) -> dict[str, Any]:
    metric = request.query_params.get("metric") or "psi"
    baseline = request.query_params.get("baseline") or "training"
    return {"params": {"metric": metric, "baseline": baseline},
            "drift": views.drift_view(mon, q, metric, baseline)}


_BUILDERS: dict[str, Callable[[Monitor, views.Query, Request], dict[str, Any]]] = {
    "overview": lambda mon, q, r: {"overview": views.overview_view(mon, q)},
    "labels": lambda mon, q, r: {"labels": views.labels_view(mon, q)},
    "label": _label_data,
    "cooccurrence": lambda mon, q, r: {"cooccurrence": views.cooccurrence_view(mon, q)},
    "drift": _drift_data,
    "incidents": lambda mon, q, r: views.incidents_view(mon, q),
    "monitors": lambda mon, q, r: views.monitors_view(mon, q),
}
for _page, _build in _BUILDERS.items():
    dashboard_router.add_api_route(
        f"/ui/{_page}", _version_page(_page, _build), methods=["GET"], response_class=HTMLResponse
    )


@dashboard_router.get("/")
def home(request: Request) -> Response:
    """Every model and its versions."""
    if _level(request, _token_of(request)) is None:
        return _sign_in_redirect(request)
    mon = _monitor(request)
    models = []
    for m in mon.list_models():
        versions = mon.list_versions(m["model_id"])
        for v in versions:
            v["link"] = "/ui/overview?" + urllib.parse.urlencode(
                {"model": m["model_id"], "version": v["model_version"]}
            )
        models.append({**m, "versions": versions})
    return _html(render("home.html", title="Models", models=models, page="home"))


@dashboard_router.get("/ui/api/estimated-f1", dependencies=[Depends(require("read"))])
def estimated_f1(request: Request) -> dict[str, Any]:
    """The overview's estimated micro F1 per period (JSON; the pickers' query)."""
    mon = _monitor(request)
    return jsonable(views.estimated_f1_view(mon, _query(request, mon)))  # type: ignore[no-any-return]

