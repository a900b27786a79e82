"""The demo pipeline end to end at a reduced scale (3,000 of the 9,066 MovieLens movies):
the real shift in the genre mix is flagged, the estimate comes before the actuals, and
the numbers are sane and consistent with scikit-learn."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from labelwatch.cli import app
from labelwatch.demo import GENRES, load_movies, run_demo
from labelwatch.monitor import Monitor

pytest.importorskip("torch", reason="the demo trains a PyTorch model: pip install '.[torch]'")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> object:
    out = io.StringIO()
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    res = run_demo(Console(file=out, width=200), db=db, epochs=20, max_movies=3000)
    res.text = out.getvalue()  # type: ignore[attr-defined]
    return res


def test_the_genre_shift_is_flagged(result: object) -> None:
    flagged = result.flagged["genre-mix-shift"]  # type: ignore[attr-defined]
    # documented shift of the later movies (DATASETS.md): IMAX, Documentary, Animation up
    assert {"IMAX", "Documentary", "Animation"} <= set(flagged)
    assert "Drama" not in flagged  # stable genre
    incidents = result.incidents  # type: ignore[attr-defined]
    opened = {i["monitor"] for i in incidents}
    assert "genre-mix-shift" in opened
    [shift] = [i for i in incidents if i["monitor"] == "genre-mix-shift"]
    ranked = [b["label"] for b in shift["breaches"]]
    assert set(ranked) == set(flagged)
    for b in shift["breaches"]:
        assert b["current"] != b["reference"]  # baseline -> current prevalence stated


def test_the_estimate_comes_before_the_actuals(result: object) -> None:
    before = result.estimate_before  # type: ignore[attr-defined]
    after = result.estimate_after  # type: ignore[attr-defined]
    assert before["realized_micro"]["f1"] is None  # the last year's actuals held back
    est = before["micro"]["f1"][0]
    assert est is not None and 0 < est < 1
    real = after["realized_micro"]["f1"]
    assert real is not None and 0 < real < 1
    assert before["f1"] == after["f1"]  # the estimate itself does not need actuals


def test_counts_follow_the_data_and_auc_is_above_chance(result: object) -> None:
    res = result
    assert res.production_auc > 0.6  # type: ignore[attr-defined]
    data = load_movies(3000)
    assert data.y.shape[1] == len(GENRES)
    assert res.n_train == data.n_train  # type: ignore[attr-defined]
    assert res.n_replayed == len(data.ids) - data.n_train  # type: ignore[attr-defined]
    assert res.n_actuals == int((~np.isnan(data.kth[data.n_train :])).sum())  # type: ignore[attr-defined]


def test_printed_story(result: object) -> None:
    text = result.text  # type: ignore[attr-defined]
    for needle in ("training the model", "auc", "genre-mix-shift", "estimated F1", "realized F1"):
        assert needle in text


def test_sketch_auc_matches_sklearn_on_the_replayed_movies(result: object) -> None:
    """The monitor's per-label AUC from hourly sketches equals scikit-learn's on the
    stored predictions and actuals (scores at the sketch's bin resolution)."""
    mon = Monitor(result.db_url)  # type: ignore[attr-defined]
    try:
        sketch = mon.sketch("movie-genres", "v1", "production", "genres")
        data = load_movies(3000)
        scores, truth = [], []
        for i in range(data.n_train, len(data.ids)):
            if np.isnan(data.kth[i]):
                continue
            row = mon.get_prediction("movie-genres", "v1", "production", f"movie-{data.ids[i]}")
            scores.append([row["predictions"]["genres"][g] for g in GENRES])
            truth.append([row["actuals"]["genres"][g] for g in GENRES])
    finally:
        mon.close()
    s, y = np.array(scores), np.array(truth)
    ok = (y.sum(axis=0) > 0) & (y.sum(axis=0) < len(y))
    # each score moved to its bin's upper edge: the sketch's AUC is exactly sklearn's
    binned = sketch.edges[np.searchsorted(sketch.edges, s, side="left")]
    exact = roc_auc_score(y[:, ok], binned[:, ok], average=None)
    assert np.allclose(np.asarray(sketch.roc_auc(None))[ok], exact, rtol=0, atol=1e-12)


def test_cli_demo_no_serve_writes_the_report(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["demo", "--no-serve", "--movies", "600", "--epochs", "3",
         "--db", str(tmp_path / "d.db"), "--report", str(tmp_path / "r.html")],
    )
    assert res.exit_code == 0, res.output
    assert "genre-mix-shift" in res.output
    html = (tmp_path / "r.html").read_text()
    assert html.startswith("<!DOCTYPE html>") or html.lower().startswith("<!doctype html>")
    assert "movie-genres" in html and "Documentary" in html
    help_text = runner.invoke(app, ["--help"]).output
    for command in ("demo", "serve", "tokens"):
        assert command in help_text
