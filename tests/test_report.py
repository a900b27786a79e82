"""``labelwatch report``: one self-contained HTML file that opens from disk with its charts.

The CLI runs as a subprocess; the file is opened from a ``file://`` URL in Debian's
Chromium (Playwright), where nothing may fail, nothing may be fetched, and the threshold
slider must show ScoreSketch's own numbers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labelwatch.metrics import ScoreSketch
from labelwatch.monitor import Monitor
from labelwatch.report import render_report, sketch_report
from tests.server.traffic import MODEL, VERSION, XSS, fill

BIN = Path(sys.executable).parent / "labelwatch"
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
NEEDS_BROWSER = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("LABELWATCH_REQUIRE_BROWSER"),
    reason="no /usr/bin/chromium (apt-get install chromium); LABELWATCH_REQUIRE_BROWSER=1 fails instead",
)
DRAWN = """canvas => {
  const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 0; i < px.length; i += 4) {
    if (px[i + 3] > 0 && (px[i] < 250 || px[i + 1] < 250 || px[i + 2] < 250)) return true;
  }
  return false;
}"""
LABELS = ["spam", XSS, "</script><script>alert(3)</script>", "news"]


def evaluation() -> ScoreSketch:
    rng = np.random.default_rng(1)
    y = rng.random((800, len(LABELS))) < [0.2, 0.3, 0.4, 0.1]
    scores = np.round(1 / (1 + np.exp(-(rng.normal(size=y.shape) + 2.0 * y - 1.0))), 4)
    return ScoreSketch.from_arrays(LABELS, scores, y, engine="numpy")


def run_report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), "report", *args], capture_output=True, text=True, timeout=120
    )


def embedded(html: str) -> Any:
    found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S)
    assert found is not None
    return json.loads(found.group(1))


def test_data_is_embedded_escaped_and_round_trips() -> None:
    html = render_report(sketch_report(evaluation(), title="<b>eval</b>"))
    # no name can close the JSON block or open a tag: only the page's own tags remain
    assert "<script><script>" not in html and "<img" not in html
    assert html.count("</script>") == 2  # the JSON block and the inline script
    assert "<h1 id=\"report-heading\">&lt;b&gt;eval&lt;/b&gt;</h1>" in html
    data = embedded(html)
    assert data["sketch"]["labels"] == LABELS
    assert data["title"] == "<b>eval</b>"
    # nothing is fetched: no src or href to anywhere
    assert not re.search(r"""(src|href)=["']?(https?:|//|/)""", html)


def test_the_cli_needs_one_source(tmp_path: Path) -> None:
    neither = run_report("-o", str(tmp_path / "r.html"))
    assert neither.returncode == 2
    assert "give either --sketch FILE or --model M --version V" in neither.stderr
    missing = run_report("--sketch", str(tmp_path / "nope.json"), "-o", str(tmp_path / "r.html"))
    assert missing.returncode == 2
    assert "nope.json" in missing.stderr


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


def open_report(browser: Any, path: Path, shot: str) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("request", lambda r: problems.append("request " + r.url) if not r.url.startswith("file:") else None)
    page.on("requestfailed", lambda r: problems.append(f"failed {r.url}"))

    def on_dialog(dialog: Any) -> None:
        problems.append("dialog " + dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(path.resolve().as_uri())
    page.wait_for_selector("body[data-ready='1']")
    canvases = page.query_selector_all("canvas")
    assert len(canvases) >= 5
    assert all(c.evaluate(DRAWN) for c in canvases)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / shot), full_page=True)
    return page, problems


@NEEDS_BROWSER
def test_a_sketch_report_opens_from_disk(browser: Any, tmp_path: Path) -> None:
    sketch = evaluation()
    saved = tmp_path / "eval.json"
    saved.write_text(json.dumps(sketch.to_dict()))
    out = tmp_path / "report.html"
    done = run_report("--sketch", str(saved), "-o", str(out))
    assert done.returncode == 0, done.stderr
    page, problems = open_report(browser, out, "report-sketch.png")
    links = page.eval_on_selector_all("#label-table a.label-link", "as => as.map(a => a.textContent)")
    assert sorted(links) == sorted(LABELS)
    assert page.locator("img").count() == 0
    # pick the label named like a tag: its detail, slider at ScoreSketch's numbers
    page.click(f"#label-table tr[data-label='{XSS}'] a")
    assert page.text_content("#label-name") == XSS
    i = sketch.labels.index(XSS)
    edges = list(sketch.edges)
    for t in (0.5, 0.3, 0.8):
        j = edges.index(t) if t in edges else int(np.argmin(np.abs(np.array(edges) - t)))
        page.eval_on_selector(
            "#threshold", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", j
        )
        t = edges[j]
        for metric in ("precision", "recall", "f1"):
            shown = float(page.get_attribute(f"#th-{metric}", "data-value") or "nan")
            assert shown == getattr(sketch, metric)(t)[i], (metric, t)
    assert problems == []
    page.close()


@NEEDS_BROWSER
def test_a_version_report_opens_from_disk(browser: Any, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'monitor.db'}"
    with Monitor(db_url) as mon:
        fill(mon, days=2, buckets_per_day=4, per_bucket=60)
    out = tmp_path / "version.html"
    done = run_report("--db", db_url, "--model", MODEL, "--version", VERSION, "-o", str(out))
    assert done.returncode == 0, done.stderr
    page, problems = open_report(browser, out, "report-version.png")
    assert page.text_content("#report-heading") == f"{MODEL} · {VERSION}"
    # the co-occurrence of the baseline and of the window
    assert page.locator(".heatmap canvas").count() == 2
    assert page.locator(".note.missing").count() == 0
    assert page.locator("#drift-table tbody tr").count() == 6
    assert "f1-floor" in page.text_content("#app")  # the open incidents
    assert page.locator("img").count() == 0
    assert problems == []
    page.close()
