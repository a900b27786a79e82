"""The offline report: one self-contained HTML file with the dashboard's charts.

Everything is inline — the vendored uPlot, the dashboard's script and styles, and the
data as JSON in ``<script type="application/json">`` (escaped so that no label name can
close it) — so the file opens from disk with no server and fetches nothing (its
Content-Security-Policy forbids any request).

Two sources:

- a head's evaluation: a saved ``ScoreSketch`` (``ScoreSketch.to_dict()`` as JSON), with
  the label table, per-label distributions by outcome, ROC / PR curves and the threshold
  slider: :func:`sketch_report`;
- a model version's window in a monitor's database: the same plus volume and F1 over
  time, incidents, drift against the training baseline and co-occurrence:
  :func:`version_report`.

>>> from labelwatch import ScoreSketch
>>> sk = ScoreSketch.from_arrays(["a", "b"], [[0.9, 0.2], [0.4, 0.7]], [[1, 0], [0, 1]])
>>> html = render_report(sketch_report(sk, title="eval"))
>>> html.startswith("<!doctype html>")
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labelwatch.errors import InvalidInputError
from labelwatch.metrics import ScoreSketch
from labelwatch.monitor import Monitor
from labelwatch.server import _views as views
from labelwatch.server._dashboard import STATIC, render
from labelwatch.server._summary import summarize

__all__ = ["load_sketch", "render_report", "sketch_report", "version_report", "write_report"]

_ASSETS = {
    "css": ("vendor/uPlot.min.css", "dashboard.css"),
    "js": ("vendor/uPlot.iife.min.js", "dashboard.js"),
}


def _inline(kind: str) -> str:
    text = "\n".join((STATIC / name).read_text(encoding="utf-8") for name in _ASSETS[kind])
    closing = "</style" if kind == "css" else "</script"
    if closing in text.lower():  # would end the inline element early
        raise ValueError(f"an inline {kind} asset contains {closing!r}")
    return text


def _rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    keep = ("label", "count", "labeled", "prevalence", "threshold", "precision", "recall", "f1",
            "roc_auc", "average_precision", "predicted_positive_rate")
    return [
        {**{k: row.get(k) for k in keep}, "drift": None, "drift_flagged": False, "alerts": []}
        for row in summary["labels"]
    ]


def load_sketch(path: str | Path) -> ScoreSketch:
    """A ``ScoreSketch`` saved as JSON (``to_dict``) or bytes (``to_bytes``)."""
    data = Path(path).read_bytes()
    if data.startswith(b"LWSKETCH"):
        return ScoreSketch.from_bytes(data)
    try:
        parsed = json.loads(data)
    except ValueError:
        raise InvalidInputError(
            "sketch", "a ScoreSketch as JSON (to_dict) or bytes (to_bytes)", str(path)
        ) from None
    return ScoreSketch.from_dict(parsed)


def sketch_report(sketch: ScoreSketch, title: str = "Evaluation") -> dict[str, Any]:
    """The report's data of one sketch (a head's evaluation): metrics at the sketch's
    threshold (its single one, else 0.5 when it is an edge)."""
    summary = summarize(sketch, None)
    return {
        "page": "report",
        "title": title,
        "source": f"ScoreSketch of {len(sketch.labels)} labels, {sketch.bins} bins, "
        f"thresholds {list(sketch.thresholds)}",
        "labels": {"rows": _rows(summary), "averages": summary["average"], "drift_note": None},
        "sketch": views.sketch_json(sketch),
    }


def version_report(
    mon: Monitor,
    model_id: str,
    model_version: str,
    *,
    environment: str | None = None,
    field: str | None = None,
    start: str | None = None,
    end: str | None = None,
    segment: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The report's data of a version's window ``[start, end)`` (ISO 8601; default: all
    of its data): what the dashboard's overview, labels, label, drift and co-occurrence
    pages show."""
    q = views.Query.resolve(
        mon, model_id, model_version, environment=environment, field_name=field,
        range_="custom" if start or end else "all", start=start, end=end,
        seg_feature=segment[0] if segment else None, seg_value=segment[1] if segment else None,
    )
    overview = views.overview_view(mon, q)
    overview["estimated"] = views.estimated_f1_view(mon, q)
    data: dict[str, Any] = {
        "page": "report",
        "title": f"{model_id} · {model_version}",
        "source": f"{q.field} in {q.environment}"
        + (f", segment {q.segment[0]} = {q.segment[1]}" if q.segment else ""),
        "window": q.window(),
        "overview": overview,
        "labels": views.labels_view(mon, q),
        "cooccurrence": views.cooccurrence_view(mon, q),
        "drift": views.drift_view(mon, q, "psi", "training"),
        "sketch": views.sketch_json(q.sketch(mon)) if q.labels else None,
    }
    if data["sketch"] is None:
        raise InvalidInputError("model_version", "a version with data", "no label seen yet")
    base, _samples, kind = views.baseline_sketch(mon, q)
    if base is not None:
        data["baseline"], data["baseline_kind"] = views.sketch_json(base), kind
    return data


def render_report(data: dict[str, Any]) -> str:
    """The self-contained HTML of a report's data."""
    return render("report.html", data=data, css=_inline("css"), js=_inline("js"),
                  title=data.get("title", "report"))


def write_report(path: str | Path, data: dict[str, Any]) -> Path:
    """Write the report's HTML to ``path``; returns the path."""
    out = Path(path)
    out.write_text(render_report(data), encoding="utf-8")
    return out
