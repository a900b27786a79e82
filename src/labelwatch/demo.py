"""``labelwatch demo``: the best end-to-end run the project can do today.

Trains a small multi-label logistic regression (NumPy) on the real yeast data set,
streams the held-out predictions into a ``ScoreSketch`` and ``SampleStats`` batch by
batch (merging as a monitor would), and prints a per-label and averaged report, checked
against the exact sort-based metrics.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from labelwatch.datasets import load_yeast
from labelwatch.errors import UndefinedMetricWarning
from labelwatch.labels import LabelSpace
from labelwatch.metrics import (
    SampleStats,
    ScoreSketch,
    average_precision_score,
    coverage_error,
    label_ranking_average_precision_score,
    label_ranking_loss,
    roc_auc_score,
)

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    """What the demo computed, for scripts and tests."""

    sketch: ScoreSketch
    stats: SampleStats
    scores: npt.NDArray[np.float64]
    actuals: npt.NDArray[np.bool_]


def _train_logistic(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.bool_],
    epochs: int,
    progress: Progress,
    lr: float = 0.5,
    l2: float = 1e-3,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """One-vs-rest logistic regression by full-batch gradient descent (all labels at once)."""
    w = np.zeros((x.shape[1], y.shape[1]))
    b = np.zeros(y.shape[1])
    task = progress.add_task("training (logistic regression, 14 labels)", total=epochs)
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        grad = p - y
        w -= lr * (x.T @ grad / len(x) + l2 * w)
        b -= lr * grad.mean(axis=0)
        progress.advance(task)
    return w, b


def run_demo(
    console: Console | None = None, *, epochs: int = 300, batch_size: int = 100, seed: int = 0
) -> DemoResult:
    """Train on yeast, stream the test set into the sketches, print the report."""
    console = console or Console(width=max(Console().width, 110))
    data = load_yeast()
    space = LabelSpace(data.labels)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.X))
    train, test = order[:1500], order[1500:]
    mean, std = data.X[train].mean(axis=0), data.X[train].std(axis=0) + 1e-12
    x_train, x_test = (data.X[train] - mean) / std, (data.X[test] - mean) / std
    console.print(
        f"[bold]yeast[/bold] (MULAN, via river): {len(data.X)} examples x "
        f"{data.X.shape[1]} features x {len(space)} labels; train {len(train)}, test {len(test)}"
    )
    sketch = ScoreSketch.empty(space, thresholds=(0.5,))
    stats: SampleStats | None = None
    with Progress(console=console, transient=False) as progress:
        w, b = _train_logistic(x_train, data.Y[train], epochs, progress)
        scores = 1 / (1 + np.exp(-(x_test @ w + b)))
        actuals = data.Y[test]
        task = progress.add_task("logging test predictions in batches", total=len(test))
        for start in range(0, len(test), batch_size):
            s, y = scores[start : start + batch_size], actuals[start : start + batch_size]
            sketch = sketch + ScoreSketch.from_arrays(space, s, y, thresholds=(0.5,))
            part = SampleStats.from_arrays(space, s, y, thresholds=0.5)
            stats = part if stats is None else stats + part
            progress.advance(task, len(s))
    assert stats is not None
    _report(console, space, sketch, stats, scores, actuals)
    return DemoResult(sketch=sketch, stats=stats, scores=scores, actuals=actuals)


def _fmt(x: float) -> str:
    return "—" if np.isnan(x) else f"{x:.3f}"


def _report(
    console: Console,
    space: LabelSpace,
    sketch: ScoreSketch,
    stats: SampleStats,
    scores: npt.NDArray[np.float64],
    actuals: npt.NDArray[np.bool_],
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        table = Table(title="Per label at threshold 0.5 (from the merged ScoreSketch)")
        for col in (
            "label",
            "prevalence",
            "precision",
            "recall",
            "F1",
            "ROC AUC",
            "exact AUC",
            "AP",
        ):
            table.add_column(col, justify="left" if col == "label" else "right")
        per = {
            "prevalence": sketch.prevalence(),
            "precision": sketch.precision(0.5),
            "recall": sketch.recall(0.5),
            "f1": sketch.f1(0.5),
            "auc": sketch.roc_auc(average=None),
            "exact": roc_auc_score(actuals, scores, average=None),
            "ap": sketch.average_precision(average=None),
        }
        for j, name in enumerate(space.names):
            table.add_row(name, *(_fmt(float(np.asarray(v)[j])) for v in per.values()))
        for avg in ("micro", "macro", "weighted"):
            table.add_row(
                f"[bold]{avg}[/bold]",
                _fmt(float(sketch.prevalence(avg))),
                _fmt(float(sketch.precision(0.5, avg))),
                _fmt(float(sketch.recall(0.5, avg))),
                _fmt(float(sketch.f1(0.5, avg))),
                _fmt(float(sketch.roc_auc(avg))),
                _fmt(float(roc_auc_score(actuals, scores, average=avg))),
                _fmt(float(sketch.average_precision(avg))),
            )
        console.print(table)
        summary = Table(title="Per example (SampleStats) and ranking (exact)")
        summary.add_column("metric")
        summary.add_column("value", justify="right")
        rows = {
            "subset accuracy": stats.subset_accuracy(),
            "hamming loss": stats.hamming_loss(),
            "example-based F1": stats.f1(average="samples"),
            "example-based Jaccard": stats.jaccard(average="samples"),
            "label cardinality (actual)": stats.label_cardinality("actual"),
            "label cardinality (predicted)": stats.label_cardinality("predicted"),
            "expected calibration error": sketch.expected_calibration_error(),
            "exact average precision (macro)": average_precision_score(actuals, scores),
            "label ranking average precision": label_ranking_average_precision_score(
                actuals, scores
            ),
            "coverage error": coverage_error(actuals, scores),
            "ranking loss": label_ranking_loss(actuals, scores),
        }
        for name, value in rows.items():
            summary.add_row(name, _fmt(float(value)))
        console.print(summary)
    console.print(
        f"sketch: {sketch.counts.size:,} numbers ({len(sketch.to_bytes()):,} bytes), "
        f"merged from {int(sketch.count()[0])} predictions in batches"
    )
