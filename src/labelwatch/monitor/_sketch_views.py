"""Views of score sketches for evaluation: a sketch restricted to some labels
(:func:`_subset` at the :func:`_positions` of the labels) and two sketches folded onto
their common edges (:func:`align_edges`) so that they compare.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labelwatch.errors import IncompatibleMergeError
from labelwatch.labels import LabelSpace
from labelwatch.metrics import ScoreSketch

__all__ = ["align_edges"]


def align_edges(a: ScoreSketch, b: ScoreSketch) -> tuple[ScoreSketch, ScoreSketch]:
    """Both sketches on their common edges: each folded onto the thresholds both have
    (a baseline built by a head may lack an edge the version's sketches carry, such as
    the default 0.5). Every fine bin lies inside one common bin, so folding is exact;
    metrics at a common threshold are unchanged."""
    if a.bins == b.bins and a.thresholds == b.thresholds:
        return a, b
    if a.bins != b.bins:
        raise IncompatibleMergeError(
            f"cannot compare sketches of {a.bins} and {b.bins} bins: log the baseline with "
            "the version's bins"
        )
    common = tuple(sorted(set(a.thresholds) & set(b.thresholds)))
    if not common:  # the grid's midpoint is an edge of both (any even number of bins)
        common = (0.5,)
    return _fold(a, common), _fold(b, common)


def _fold(sk: ScoreSketch, thresholds: tuple[float, ...]) -> ScoreSketch:
    if sk.thresholds == thresholds:
        return sk
    target = ScoreSketch.empty(sk.labels, thresholds=thresholds, bins=sk.bins)
    where = np.searchsorted(target.edges, sk.edges, side="left")
    counts = np.zeros_like(target.counts)
    for j, k in enumerate(where.tolist()):  # at most a few hundred bins
        counts[:, :, k] += sk.counts[:, :, j]
    return ScoreSketch(sk.labels, counts, bins=sk.bins, thresholds=thresholds)


def _positions(sk: ScoreSketch, labels: Sequence[str]) -> list[int]:
    """Each label's position in the sketch (-1: not in it)."""
    pos = {x: j for j, x in enumerate(sk.labels.names)}
    return [pos.get(x, -1) for x in labels]


def _subset(sk: ScoreSketch, idx: Sequence[int]) -> ScoreSketch:
    """The sketch of the labels at ``idx`` (-1: a label without data, counted zero)."""
    names = sk.labels.names
    if len(idx) == len(names) and all(j == k for k, j in enumerate(idx)):
        return sk
    counts = np.zeros((len(idx), *sk.counts.shape[1:]))
    picked = [j for j in idx]
    ok = np.array([j >= 0 for j in picked], dtype=bool)
    if ok.any():
        counts[ok] = sk.counts[np.array([j for j in picked if j >= 0], dtype=np.intp)]
    labels = [names[j] if j >= 0 else f"?{k}" for k, j in enumerate(picked)]
    return ScoreSketch(LabelSpace(labels), counts, bins=sk.bins, thresholds=sk.thresholds)
