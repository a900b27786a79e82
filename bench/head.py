"""Benchmark: MultiLabelHead's training loss (PyTorch) and evaluation metrics (NumPy).

1. Forward + backward of ``head.loss`` on torch float32 logits (``--batch`` x
   ``--classes``, default 4096 x 1000) against a bare
   ``F.binary_cross_entropy_with_logits(x, y, reduction="none").mean(dim=-1).mean()``;
   labels float 0/1 (the default, validated), the same with ``validate=False``, bool
   labels, and example weights (against the same bare call times the weights).
2. ``head.metrics(logits, labels)`` (TF 2's eval dict: sigmoid, per-example loss, the
   ScoreSketch on TF's grid and the metrics) on ``--rows`` x ``--labels`` float32 logits
   (default 1M x 100) against building the ScoreSketch itself from the probabilities
   (``ScoreSketch.from_arrays(space, p, y, thresholds=head thresholds, bins=199)``).

Variants run interleaved, ``--repeat`` times each; the figure is the median (the
minimum in brackets), so load from other processes hits every variant alike.

Run: ``.venv/bin/python bench/head.py`` (``--quick`` for a small smoke run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from labelwatch import LabelSpace, ScoreSketch
from labelwatch.head import MultiLabelHead
from labelwatch.head._kernels import probabilities_and_loss


def interleaved(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():  # warm up (JIT, allocator, caches)
        fn()
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def report(times: dict[str, list[float]], baseline: str) -> None:
    base = statistics.median(times[baseline])
    for name, ts in times.items():
        med = statistics.median(ts)
        ratio = "" if name == baseline else f"   {med / base:5.2f}x baseline"
        print(f"  {name:48s} {med * 1e3:9.1f} ms [{min(ts) * 1e3:8.1f}]{ratio}")


def bench_torch(batch: int, classes: int, repeat: int) -> None:
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(batch, classes, generator=g)
    y = (torch.rand(batch, classes, generator=g) < 0.1).float()
    y_bool = y.bool()
    w = torch.rand(batch, generator=g)
    head = MultiLabelHead(classes)
    weighted = MultiLabelHead(classes, weight_column="w")
    x = x0.clone().requires_grad_(True)

    def step(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            x.grad = None
            fn(x).backward()

        return run

    fns = {
        "bare BCE .mean(-1).mean()": step(
            lambda v: F.binary_cross_entropy_with_logits(v, y, reduction="none").mean(dim=-1).mean()
        ),
        "head.loss, float labels (validated)": step(lambda v: head.loss(v, y)),
        "head.loss, float labels, validate=False": step(lambda v: head.loss(v, y, validate=False)),
        "head.loss, bool labels": step(lambda v: head.loss(v, y_bool)),
        "bare BCE, weighted": step(
            lambda v: (
                F.binary_cross_entropy_with_logits(v, y, reduction="none").mean(dim=-1) * w
            ).mean()
        ),
        "head.loss, weighted": step(lambda v: weighted.loss(v, y, {"w": w})),
    }
    print(
        f"\n1. forward + backward, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"logits {batch} x {classes} float32, median of {repeat}:"
    )
    times = interleaved(fns, repeat)
    report({k: v for k, v in times.items() if "weighted" not in k}, "bare BCE .mean(-1).mean()")
    report({k: v for k, v in times.items() if "weighted" in k}, "bare BCE, weighted")
    # same numbers
    want = F.binary_cross_entropy_with_logits(x0, y, reduction="none").mean(dim=-1).mean()
    assert torch.allclose(head.loss(x0, y), want, rtol=1e-5)


def bench_metrics(rows: int, labels: int, repeat: int) -> None:
    rng = np.random.default_rng(0)
    y = rng.random((rows, labels)) < 0.2
    x = (rng.normal(size=(rows, labels)) * 2 + 1.5 * y).astype(np.float32)
    head = MultiLabelHead(labels, thresholds=[0.5])
    space = LabelSpace.range(labels)
    p, losses = probabilities_and_loss(x, y)
    p_out, loss_out = np.empty_like(p), np.empty_like(losses)
    fns = {
        "ScoreSketch.from_arrays(p, y) (TF grid + 0.5)": lambda: ScoreSketch.from_arrays(
            space, p, y, thresholds=[0.5], bins=199
        ),
        "sigmoid + loss kernel alone (into buffers)": lambda: probabilities_and_loss(
            x, y, p_out, loss_out
        ),
        "head.metrics(logits, labels)": lambda: head.metrics(x, y),
    }
    print(
        f"\n2. evaluation, {rows} x {labels} float32 logits, bool labels, median of {repeat} "
        f"(engine: numba threads={os.environ.get('NUMBA_NUM_THREADS', 'default')}):"
    )
    report(interleaved(fns, repeat), "ScoreSketch.from_arrays(p, y) (TF grid + 0.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--torch-threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 repeats")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.classes, args.rows, args.repeat = 512, 100, 20_000, 3
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    print(f"cpus: {os.cpu_count()}, load average: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    bench_torch(args.batch, args.classes, args.repeat)
    bench_metrics(args.rows, args.labels, max(3, args.repeat // 3))


if __name__ == "__main__":
    main()
