"""Dashboard page loads with 1,000 labels and 30 days of data.

Fills a SQLite monitor through ``Monitor`` (``PER_DAY`` hour buckets a day, default
every hour, of 20 predictions each for 30 days, every prediction scoring all 1,000
labels, a training baseline with co-occurrence, monitors run), serves it with
``labelwatch serve`` and times each page: the server's answer (HTML with its data) over
HTTP, and the whole load in Chromium until the page has drawn its charts.
Usage: ``python bench/dashboard.py [LABELS] [DAYS] [PER_DAY]``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.server.helpers import ServeProcess  # noqa: E402
from tests.server.traffic import MODEL, VERSION, fill  # noqa: E402

from labelwatch.monitor import Monitor  # noqa: E402

N_LABELS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
DAYS = int(sys.argv[2]) if len(sys.argv) > 2 else 30
PER_DAY = int(sys.argv[3]) if len(sys.argv) > 3 else 24
PAGES = ["overview", "labels", "label", "cooccurrence", "drift", "incidents", "monitors"]
REPEAT = 3


def main() -> None:
    labels = [f"label_{i:04d}" for i in range(N_LABELS)]
    with tempfile.TemporaryDirectory() as tmp:
        # LABELWATCH_BENCH_DB=path: fill that file once and reuse it on later runs
        path = Path(os.environ.get("LABELWATCH_BENCH_DB") or Path(tmp) / "monitor.db")
        url = f"sqlite:///{path}"
        start = time.perf_counter()
        filled = path.exists()
        with Monitor(url) as mon:
            if not filled:
                fill(mon, labels=labels, days=DAYS, buckets_per_day=PER_DAY, per_bucket=20)
            token = mon.create_token("read")
        size = path.stat().st_size
        how = "reused" if filled else f"filled in {time.perf_counter() - start:.1f} s"
        print(f"{N_LABELS} labels, {DAYS} days of {PER_DAY} hours: {how} ({size / 1e6:.0f} MB)")
        # the scheduler off: its monitor runs would share the CPU with the pages timed
        server = ServeProcess(url, args=["--schedule-interval", "0"]).start()
        try:
            run(server.url, token, labels)
        finally:
            server.stop()


def run(base: str, token: str, labels: list[str]) -> None:
    from playwright.sync_api import sync_playwright

    def url(page: str) -> str:
        extra = {"label": labels[0]} if page == "label" else {}
        return f"/ui/{page}?" + urllib.parse.urlencode(
            {"model": MODEL, "version": VERSION, "range": "30d", **extra})

    headers = {"Authorization": f"Bearer {token}"}
    print(f"{'page':<14}{'server (ms)':>12}{'browser (ms)':>14}{'HTML (kB)':>11}")
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto("/login?token=" + urllib.parse.quote(token))
        for name in PAGES:
            server_ms, browser_ms = [], []
            size = 0
            for _ in range(REPEAT):
                t = time.perf_counter()
                response = client.get(url(name))
                server_ms.append((time.perf_counter() - t) * 1000)
                size = len(response.content)
                t = time.perf_counter()
                page.goto(url(name))
                page.wait_for_selector("body[data-ready='1']")
                browser_ms.append((time.perf_counter() - t) * 1000)
            print(f"{name:<14}{statistics.median(server_ms):>12.0f}"
                  f"{statistics.median(browser_ms):>14.0f}{size / 1000:>11.0f}")
        t = time.perf_counter()
        client.get(url("api/estimated-f1"))
        print(f"{'estimated F1':<14}{(time.perf_counter() - t) * 1000:>12.0f}"
              f"{'(fetched by the overview after it loads)':>52}")
        browser.close()


if __name__ == "__main__":
    main()
