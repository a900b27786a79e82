"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a real
``labelwatch serve`` over a SQLite database filled through ``Monitor``.

Every page loads with no console error and no failed request, its charts draw, the
threshold slider shows the API's own precision / recall / F1, and a label named like an
HTML tag shows as text and runs nothing. Screenshots land in test-artifacts/screenshots.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from labelwatch.metrics import ScoreSketch
from labelwatch.monitor import Monitor
from tests.server.helpers import ServeProcess
from tests.server.traffic import FIELD, LABELS, MODEL, MODEL_NAME, VERSION, XSS, fill

CHROMIUM = Path("/usr/bin/chromium")
BIG = "thousand-labels"
if not CHROMIUM.exists() and not os.environ.get("LABELWATCH_REQUIRE_BROWSER"):
    pytest.skip(
        "no /usr/bin/chromium (apt-get install chromium); set LABELWATCH_REQUIRE_BROWSER=1 "
        "to fail instead",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright  # noqa: E402

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PAGES = ["overview", "labels", "label", "cooccurrence", "drift", "incidents", "monitors"]
CHART_PAGES = {"overview", "labels", "label", "cooccurrence", "drift", "monitors"}
# a canvas with any drawn (non-transparent, non-white) pixel
DRAWN = """canvas => {
  const ctx = canvas.getContext('2d');
  const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 0; i < px.length; i += 4) {
    if (px[i + 3] > 0 && (px[i] < 250 || px[i + 1] < 250 || px[i + 2] < 250)) return true;
  }
  return false;
}"""


@dataclass
class Site:
    url: str
    token: str
    db_url: str
    now: float


@dataclass
class Watched:
    """A page and everything that went wrong on it."""

    page: Page
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.failed == [], self.failed
        assert self.dialogs == [], self.dialogs


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'monitor.db'}"
    with Monitor(db_url) as mon:
        now = fill(mon)
        # a second model: 1,000 labels over 30 days (coarse bins keep the fill quick)
        fill(mon, model=BIG, labels=[f"label_{i:04d}" for i in range(1000)], days=30,
             buckets_per_day=1, per_bucket=5, bins=20, baseline_rows=300, segments=False,
             monitors=False, now=now)
        token = mon.create_token("read", name="dashboard test")
    server = ServeProcess(db_url).start()
    try:
        yield Site(server.url, token, db_url, now)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


def watch(page: Page) -> Watched:
    w = Watched(page)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type in ("error", "warning") and "DevTools" not in msg.text:
            w.errors.append(f"{msg.type}: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: w.errors.append(f"pageerror: {exc}"))
    page.on("requestfailed", lambda r: w.failed.append(f"{r.url} {r.failure}"))
    page.on("response", lambda r: w.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    def on_dialog(dialog: Any) -> None:
        w.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return w


@pytest.fixture
def signed_in(browser: Browser, site: Site) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=site.url)
    page = context.new_page()
    w = watch(page)
    page.goto("/login?token=" + urllib.parse.quote(site.token))
    yield w
    context.close()


def page_url(name: str, model: str = MODEL, range: str = "7d", **extra: str) -> str:
    return f"/ui/{name}?" + urllib.parse.urlencode(
        {"model": model, "version": VERSION, "range": range, **extra}
    )


def loaded(w: Watched, url: str) -> Page:
    w.page.goto(url)
    w.page.wait_for_selector("body[data-ready='1']")
    w.page.wait_for_load_state("networkidle")
    return w.page


def test_sign_in_with_the_form_keeps_an_http_only_cookie(browser: Browser, site: Site) -> None:
    context = browser.new_context(base_url=site.url)
    page = context.new_page()
    w = watch(page)
    page.goto(page_url("labels"))
    assert page.url.startswith(site.url + "/login?next=")  # not signed in: the sign-in page
    page.fill("#token", "lw_not-a-token")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.text_content("#login-error") == "That token is not valid."
    w.failed.clear()  # the refused sign-in answered 401, as it should
    w.errors.clear()  # (which the console reports)
    page.fill("#token", site.token)
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.wait_for_selector("#label-table")
    assert "/ui/labels?" in page.url
    (cookie,) = context.cookies()
    assert cookie["value"] == site.token
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # out of reach of scripts
    # the API takes the cookie too (and still a bearer token)
    assert page.request.get("/api/v1/models").json()[0]["model_id"] == MODEL
    headers = {"Authorization": f"Bearer {site.token}"}
    assert httpx.get(site.url + "/api/v1/models", headers=headers).status_code == 200
    w.clean()
    context.close()


def test_every_page_loads_clean_and_draws_its_charts(signed_in: Watched) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = loaded(signed_in, "/")
    assert page.eval_on_selector_all("#models .name", "ns => ns.map(n => n.textContent)") == [
        MODEL, BIG]
    assert MODEL_NAME in page.text_content("#models")
    page.screenshot(path=str(SHOTS / "home.png"), full_page=True)
    for name in PAGES:
        extra = {"label": "drama"} if name == "label" else {}
        page = loaded(signed_in, page_url(name, **extra))
        if name == "overview":  # the estimate arrives apart
            page.wait_for_function("!document.getElementById('estimate-status')")
        if name in CHART_PAGES:
            canvases = page.query_selector_all("canvas")
            assert canvases, name
            drawn = [c.evaluate(DRAWN) for c in canvases]
            assert all(drawn), (name, drawn)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        signed_in.clean()
    # the overview: realized and estimated F1, the open incidents
    page = loaded(signed_in, page_url("overview"))
    page.wait_for_function("!document.getElementById('estimate-status')")
    assert page.locator(".uplot").count() == 3  # volume, realized F1, estimated F1
    assert page.locator("text=f1-floor").count() >= 1
    # the co-occurrence: the baseline's heatmap and the window's (from its pair cells)
    page = loaded(signed_in, page_url("cooccurrence"))
    assert page.locator(".heatmap canvas").count() == 2
    assert page.locator(".note.missing").count() == 0


def test_the_label_table_sorts_and_filters(signed_in: Watched) -> None:
    page = loaded(signed_in, page_url("labels"))
    rows = page.locator("#label-table tbody tr")
    assert rows.count() == len(LABELS)
    page.click("th[data-key=f1]")  # numbers sort high to low first
    f1 = [float(x) for x in page.eval_on_selector_all(
        "#label-table tbody tr td:nth-child(7)", "tds => tds.map(td => td.textContent)")]
    assert f1 == sorted(f1, reverse=True)
    page.click("th[data-key=f1]")
    again = [float(x) for x in page.eval_on_selector_all(
        "#label-table tbody tr td:nth-child(7)", "tds => tds.map(td => td.textContent)")]
    assert again == sorted(f1)
    page.fill("#label-filter", "doc")
    assert page.eval_on_selector_all(
        "#label-table tbody tr", "trs => trs.map(tr => tr.dataset.label)") == ["documentary"]
    page.fill("#label-filter", "")
    assert rows.count() == len(LABELS)
    signed_in.clean()


def api_sketch(site: Site) -> ScoreSketch:
    """The API's sketch of all the traffic (all of it is inside the pages' 7 days)."""
    response = httpx.get(
        f"{site.url}/api/v1/models/{urllib.parse.quote(MODEL)}/versions/{VERSION}/sketch",
        params={"field": FIELD}, headers={"Authorization": f"Bearer {site.token}"},
    )
    response.raise_for_status()
    return ScoreSketch.from_dict(response.json())


@pytest.mark.parametrize("label", ["drama", XSS])
def test_the_threshold_slider_shows_the_apis_numbers(
    signed_in: Watched, site: Site, label: str
) -> None:
    page = loaded(signed_in, page_url("label", label=label))
    sketch = api_sketch(site)
    i = sketch.labels.index(label)
    edges = list(sketch.edges)
    th = 0.4 if label == "drama" else 0.5
    # the slider starts at the label's threshold, showing the API's metrics there
    assert float(page.get_attribute("#th-threshold", "data-value") or "nan") == th
    for t in (th, 0.25, 0.7, 0.9):
        j = edges.index(t) if t in edges else int(np.argmin(np.abs(np.array(edges) - t)))
        t = edges[j]
        page.eval_on_selector(
            "#threshold", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", j
        )
        shown = {k: page.get_attribute(f"#th-{k}", "data-value") for k in
                 ("threshold", "precision", "recall", "f1")}
        assert float(shown["threshold"] or "nan") == t
        assert float(shown["precision"] or "nan") == sketch.precision(t)[i]
        assert float(shown["recall"] or "nan") == sketch.recall(t)[i]
        assert float(shown["f1"] or "nan") == sketch.f1(t)[i]
        assert page.text_content("#th-precision") == f"{sketch.precision(t)[i]:.4f}"
    signed_in.clean()


def test_html_in_names_shows_as_text_and_runs_nothing(signed_in: Watched) -> None:
    page = loaded(signed_in, page_url("labels"))
    links = page.eval_on_selector_all(
        "#label-table a.label-link", "as => as.map(a => a.textContent)")
    assert XSS in links
    assert page.locator("img").count() == 0  # the tag stayed text
    assert page.text_content("#crumb-version") == f"{MODEL} · {VERSION}"
    page = loaded(signed_in, page_url("label", label=XSS))
    assert page.text_content("#label-name") == XSS
    assert page.locator("img").count() == 0
    page = loaded(signed_in, page_url("incidents"))
    assert XSS in page.text_content("#incidents-table")
    assert page.locator("img").count() == 0
    # a segment value with markup, through the picker, is text too
    page = loaded(signed_in, page_url("labels", seg="country", seg_value="<i>JP</i>"))
    assert page.input_value("#pick-seg-value") == "<i>JP</i>"
    assert "<i>JP</i>" in page.text_content("#window")
    assert page.locator("main i").count() == 0
    assert page.locator("#label-table tbody tr").count() == len(LABELS)
    signed_in.clean()


def test_a_thousand_labels_over_thirty_days_load(signed_in: Watched) -> None:
    """Loads and stays usable; the time is printed (bench/dashboard.py measures it)."""
    for name in ("overview", "labels", "drift"):
        start = time.perf_counter()
        page = loaded(signed_in, page_url(name, model=BIG, range="30d"))
        print(f"{name} with 1,000 labels, 30 days: {time.perf_counter() - start:.2f} s")
        page.screenshot(path=str(SHOTS / f"{name}-1000-labels.png"))
        signed_in.clean()
        if name == "labels":
            # the first 200 rows are built, 200 more per click; sort and filter see all
            rows = page.locator("#label-table tbody tr")
            assert rows.count() == 200
            assert page.text_content("#label-count") == (
                "first 200 of 1000 matching labels (1000 in all)"
            )
            page.click("#label-more")
            assert rows.count() == 400
            data = page.evaluate(
                "JSON.parse(document.getElementById('page-data').textContent).labels.rows"
            )
            page.click("th[data-key=prevalence]")  # descending first
            prevalence = {r["label"]: r["prevalence"] for r in data}
            top = max(x for x in prevalence.values() if x is not None)
            assert prevalence[rows.first.get_attribute("data-label")] == top
            assert rows.count() == 400
            page.fill("#label-filter", "label_09")
            assert rows.count() == 100
            assert page.text_content("#label-count") == "100 of 1000 labels"
            assert page.locator("#label-more").is_hidden()
        if name == "overview":
            days = page.evaluate(
                "JSON.parse(document.getElementById('page-data').textContent)"
                ".overview.series.t.length"
            )
            # 30 days of traffic, a few hours a day: the window of the last 30 days holds
            # 29 to 31 UTC days of it, by the time of day the test runs at
            assert 29 <= days <= 31
