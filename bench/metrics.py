"""Benchmark: ScoreSketch build + every threshold metric + per-label areas (issue 2).

N x L float32 scores with bool actuals; metrics at 200 decision thresholds: the sketch's
own grid ``k / 200`` (k = 0..199, the default ``bins=200``), and for comparison 200
thresholds off that grid (torchmetrics' ``linspace(0, 1, 200)``, made extra exact edges).
Compared with:

  (a) scikit-learn as a user writes it: a loop over the thresholds with
      ``precision_recall_fscore_support(average=None)`` (timed on ``--sk-thresholds`` of
      them and scaled to 200, said so in the output), plus ``roc_auc_score`` and
      ``average_precision_score`` with ``average=None``;
  (b) torchmetrics' binned ``MultilabelPrecisionRecallCurve`` + ``MultilabelAUROC`` with
      ``thresholds=200`` on the CPU;
  (c) one ``np.sum`` over the same score array: the memory-bound floor.

Run: ``.venv/bin/python bench/metrics.py`` (``make bench`` installs the peers first).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from labelwatch import LabelSpace, ScoreSketch
from labelwatch.metrics._binning import default_engine


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def ours(
    space: LabelSpace, scores: np.ndarray, y: np.ndarray, thresholds: np.ndarray, engine: str
) -> dict[str, Any]:
    sk = ScoreSketch.from_arrays(space, scores, y, thresholds=thresholds, engine=engine)
    edges, tp, fp, fn, tn = sk.confusion_at_edges()
    cols = np.searchsorted(edges, thresholds)
    tp, fp, fn, tn = tp[:, cols], fp[:, cols], fn[:, cols], tn[:, cols]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn)
        accuracy = (tp + tn) / (tp + fp + fn + tn)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": accuracy,
        "roc_auc": sk.roc_auc(average=None),
        "ap": sk.average_precision(average=None),
    }


def sklearn_peer(
    scores: np.ndarray, y: np.ndarray, thresholds: np.ndarray, k: int
) -> tuple[float, dict[str, Any]]:
    from sklearn import metrics as skm

    picked = thresholds[np.linspace(0, len(thresholds) - 1, k).astype(int)]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in picked:
            skm.precision_recall_fscore_support(y, scores > t, average=None, zero_division=np.nan)
    loop = (time.perf_counter() - start) * len(thresholds) / k
    start = time.perf_counter()
    auc = skm.roc_auc_score(y, scores, average=None)
    ap = skm.average_precision_score(y, scores, average=None)
    areas = time.perf_counter() - start
    return loop + areas, {"roc_auc": auc, "ap": ap, "loop": loop, "areas": areas}


def torchmetrics_peer(
    scores: np.ndarray, y: np.ndarray, batch: int
) -> tuple[float, dict[str, Any]]:
    """Binned curve + AUROC, updated batch by batch as in a training loop: one update
    over all 1M rows would allocate N x L x 200 int64 (160 GB) and fail."""
    import torch
    from torchmetrics.classification import MultilabelAUROC, MultilabelPrecisionRecallCurve

    torch.set_num_threads(os.cpu_count() or 1)
    preds, target = torch.from_numpy(scores), torch.from_numpy(y.astype(np.int64))
    n_labels = scores.shape[1]

    def run() -> Any:
        curve = MultilabelPrecisionRecallCurve(num_labels=n_labels, thresholds=200)
        auroc = MultilabelAUROC(num_labels=n_labels, thresholds=200, average="none")
        for start in range(0, len(preds), batch):
            curve.update(preds[start : start + batch], target[start : start + batch])
            auroc.update(preds[start : start + batch], target[start : start + batch])
        curve.compute()  # precision, recall, thresholds per label
        return auroc.compute().numpy()

    seconds, auc = best_of(run, 1)
    return seconds, {"roc_auc": auc}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sk-thresholds", type=int, default=2, help="thresholds timed for (a)")
    parser.add_argument("--tm-batch", type=int, default=2000, help="rows per torchmetrics update")
    parser.add_argument("--skip-peers", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n, n_labels = args.n, args.labels
    y = rng.random((n, n_labels)) < rng.uniform(0.02, 0.5, n_labels)
    scores = (1 / (1 + np.exp(-(rng.normal(size=(n, n_labels)) + 1.5 * y)))).astype(np.float32)
    grid = np.arange(200) / 200
    off_grid = np.linspace(0, 1, 200)
    space = LabelSpace.range(n_labels)
    print(
        f"N={n:,} L={n_labels} float32 scores, 200 thresholds; engine={default_engine()}; cpus={os.cpu_count()}"
    )

    for th in (grid, off_grid):
        ours(space, scores[:1000], y[:1000], th, default_engine())  # compile once
    t_sum, _ = best_of(lambda: np.sum(scores), args.repeat)
    t_ours, res = best_of(lambda: ours(space, scores, y, grid, default_engine()), args.repeat)
    t_off, _ = best_of(lambda: ours(space, scores, y, off_grid, default_engine()), args.repeat)
    t_np, _ = best_of(lambda: ours(space, scores, y, grid, "numpy"), 1)
    print(f"(c) np.sum floor            {t_sum * 1e3:9.1f} ms")
    print(
        f"labelwatch ({default_engine():5s})         {t_ours * 1e3:9.1f} ms   = {t_ours / t_sum:6.1f}x the np.sum floor (target <= 10x)"
    )
    print(
        f"labelwatch, 200 off-grid    {t_off * 1e3:9.1f} ms   = {t_off / t_sum:6.1f}x the np.sum floor"
    )
    print(
        f"labelwatch (numpy engine)   {t_np * 1e3:9.1f} ms   = {t_np / t_sum:6.1f}x the np.sum floor (fallback)"
    )
    if args.skip_peers:
        return
    t_tm, tm = torchmetrics_peer(scores, y, args.tm_batch)
    print(
        f"(b) torchmetrics binned     {t_tm * 1e3:9.1f} ms   -> labelwatch is {t_tm / t_ours:7.1f}x faster (target >= 3x)"
        f"\n    (MultilabelPrecisionRecallCurve + MultilabelAUROC, thresholds=200, updates of {args.tm_batch} rows)"
    )
    t_sk, sk = sklearn_peer(scores, y, grid, args.sk_thresholds)
    print(
        f"(a) scikit-learn            {t_sk * 1e3:9.1f} ms   -> labelwatch is {t_sk / t_ours:7.1f}x faster (target >= 500x)"
        f"\n    (threshold loop {sk['loop']:.1f} s, scaled from {args.sk_thresholds} of 200 thresholds; "
        f"roc_auc + average_precision {sk['areas']:.1f} s)"
    )
    print(
        "agreement with exact sklearn: max |ROC AUC diff| = "
        f"{np.nanmax(np.abs(res['roc_auc'] - sk['roc_auc'])):.2e}, max |AP diff| = "
        f"{np.nanmax(np.abs(res['ap'] - sk['ap'])):.2e}; torchmetrics' binned AUROC vs exact: "
        f"{np.nanmax(np.abs(tm['roc_auc'] - sk['roc_auc'])):.2e}"
    )


if __name__ == "__main__":
    main()
