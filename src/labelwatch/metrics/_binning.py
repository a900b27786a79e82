"""Bin edges and the one-pass histogram kernel behind ``ScoreSketch.from_arrays``.

Bin ``b`` of edges ``e[0] = 0 < e[1] < ... < e[m-1] = 1`` holds the scores ``s`` with
``e[b-1] < s <= e[b]``; bin 0 holds exactly the zeros. So ``s > e[j]`` holds exactly for
the bins ``b > j``: every edge is an exact decision threshold, 0 included.

Two engines fill the same ``(L, 3, m)`` array of weighted counts:

- ``numba`` (the ``fast`` extra): one parallel pass over the rows; the bin comes from a
  look-up on a fine uniform grid plus one branch-free comparison with the edge above, so
  thresholds off the grid cost nothing extra;
- ``numpy``: ``searchsorted`` + ``bincount`` over chunks, the reference and the fallback.

Scores are validated (in [0, 1], not NaN): by the numba kernel on each block of rows
just before it bins them (one memory pass instead of two), by two reductions otherwise.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ENGINES", "bin_counts", "check_scores", "default_engine", "make_edges"]

UNLABELED = 2
N_OUTCOMES = 3

try:  # the compiled path is optional: pip install 'labelwatch[fast]'
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised in environments without numba
    numba = None  # type: ignore[assignment]
    HAVE_NUMBA = False

ENGINES = ("numba", "numpy")
_Result = tuple[npt.NDArray[np.float64], None] | tuple[None, tuple[int, int]]


def default_engine() -> str:
    """``"numba"`` when installed, unless ``LABELWATCH_ENGINE=numpy`` is set."""
    wanted = os.environ.get("LABELWATCH_ENGINE", "").strip().lower()
    if wanted == "numpy" or not HAVE_NUMBA:
        return "numpy"
    return "numba"


def make_edges(bins: int, thresholds: npt.ArrayLike = ()) -> npt.NDArray[np.float64]:
    """The uniform grid of ``bins`` bins on [0, 1] united with ``thresholds``, sorted.

    >>> make_edges(4, [0.3]).tolist()
    [0.0, 0.25, 0.3, 0.5, 0.75, 1.0]
    """
    grid = np.arange(bins + 1, dtype=np.float64) / bins
    extra = np.asarray(thresholds, dtype=np.float64).ravel()
    return np.unique(np.concatenate([grid, extra]))


def _cell_lookup(
    edges: npt.NDArray[np.float64], bins: int
) -> tuple[int, npt.NDArray[np.int64], int]:
    """A uniform grid of ``cells`` cells over [0, 1], per cell the edges below it, and
    ``steps``, the most edges any cell holds.

    The cell of ``x`` is ``int(x * cells)``, monotone in ``x``: every edge of a lower cell
    is below a score of cell ``u`` and every edge of a higher cell above it, so the bin is
    ``lut[u]`` plus the edges of cell ``u`` below the score: ``steps`` branch-free
    comparisons. ``cells`` is the smallest power-of-two multiple of ``bins`` (up to 64x)
    with one edge per cell, else the one with the fewest; when even that leaves
    more than 8 (thresholds packed closer than 1/(64 bins)), ``cells`` is 0 and the kernel
    falls back to a binary search.
    """
    best: tuple[int, npt.NDArray[np.int64], int] = (0, np.zeros(1, dtype=np.int64), 0)
    for shift in range(7):
        cells = bins << shift
        per_cell = np.bincount((edges * cells).astype(np.int64), minlength=cells + 1)
        steps = int(per_cell.max())
        if best[0] == 0 or steps < best[2]:
            lut = np.concatenate([[0], np.cumsum(per_cell)[:-1]]).astype(np.int64)
            best = (cells, lut, steps)
        if steps <= 1:
            break
    if best[2] > 8:
        return 0, np.zeros(1, dtype=np.int64), 0
    return best


def check_scores(scores: npt.NDArray[np.floating[Any]]) -> tuple[int, int] | None:
    """(row, label) of the first score outside [0, 1] or NaN in ``scores`` (n, L), or None.

    Two NaN-propagating reductions (min and max), run on two threads (NumPy releases the
    GIL), and a search for the culprit only when they fail.
    """
    if scores.size == 0:
        return None
    flat = scores.reshape(-1)
    if flat.size >= 1 << 22:
        half = flat.size // 2
        parts = (flat[:half], flat[half:])
        lows, highs = zip(*_POOL.map(lambda a: (a.min(), a.max()), parts), strict=True)
        low, high = min(lows), max(highs)
        if np.isnan(lows).any() or np.isnan(highs).any():
            low = np.nan
    else:
        low, high = flat.min(), flat.max()
    if low >= 0 and high <= 1:
        return None
    bad = ~((scores >= 0) & (scores <= 1))
    row, label = np.unravel_index(int(np.argmax(bad)), bad.shape)
    return int(row), int(label)


def bin_counts(
    edges: npt.NDArray[np.float64],
    bins: int,
    scores: npt.NDArray[np.floating[Any]],
    outcomes: npt.NDArray[np.bool_] | None,
    weights: npt.NDArray[np.float64] | None,
    engine: str | None = None,
) -> _Result:
    """Weighted counts ``(L, 3, m)`` of C-contiguous ``scores`` (n, L), and None; or None
    and the (row, label) of the first score outside [0, 1] (NaN included).

    ``outcomes`` (n, L) bool: False negative, True positive; None: all unlabeled.
    ``weights`` (n,) or None (all 1).
    """
    engine = engine or default_engine()
    if engine not in ENGINES:
        raise ValueError(f"engine: expected one of {ENGINES}, got {engine!r}")
    if engine == "numba" and HAVE_NUMBA:
        return _bin_counts_numba(edges, bins, scores, outcomes, weights)
    return _bin_counts_numpy(edges, scores, outcomes, weights)


def _bin_counts_numpy(
    edges: npt.NDArray[np.float64],
    scores: npt.NDArray[np.floating[Any]],
    outcomes: npt.NDArray[np.bool_] | None,
    weights: npt.NDArray[np.float64] | None,
) -> _Result:
    bad = check_scores(scores)
    if bad is not None:
        return None, bad
    n, n_labels = scores.shape
    m = len(edges)
    size = n_labels * N_OUTCOMES * m
    counts = np.zeros(size)
    label_base = (np.arange(n_labels, dtype=np.int64) * (N_OUTCOMES * m))[None, :]
    rows_per_chunk = max(1, (1 << 20) // max(n_labels, 1))
    for start in range(0, n, rows_per_chunk):
        stop = start + rows_per_chunk
        s64 = scores[start:stop].astype(np.float64, copy=False)
        idx = np.searchsorted(edges, s64, side="left") + label_base
        if outcomes is None:
            idx += UNLABELED * m
        else:
            idx += outcomes[start:stop].astype(np.int64) * m
        w = None
        if weights is not None:
            w = np.broadcast_to(weights[start:stop, None], s64.shape).ravel()
        counts += np.bincount(idx.ravel(), weights=w, minlength=size)
    return counts.reshape(n_labels, N_OUTCOMES, m), None


def _make_kernel(steps: int, has_outcomes: bool, has_weights: bool) -> Any:
    """The counting kernel for cells holding at most ``steps`` edges (0: binary search).

    One compiled function per combination (compile-time constants: a run-time flag in the
    inner loop cost 50%), so the common case of one comparison carries no loop. Edges
    carry +inf sentinels past ``m - 1``:
    ``b += edges[b] < s`` needs no bound check, and being branch-free it costs no
    misprediction (a branch there doubled the time).
    """

    @numba.njit(parallel=True, nogil=True)
    def kernel(
        edges: Any,
        lut: Any,
        cells: int,
        scores: Any,
        bits: Any,
        one_bits: int,
        outcomes: Any,
        weights: Any,
        n_chunks: int,
    ) -> Any:  # pragma: no cover - compiled; compared with the NumPy engine in tests
        n, n_labels = scores.shape
        m = edges.shape[0] - max(steps, 1)
        stride = N_OUTCOMES * m
        counts = np.zeros((n_chunks, n_labels * stride))
        suspect = np.full(n_chunks, -1, dtype=np.int64)
        rows = (n + n_chunks - 1) // n_chunks
        for c in numba.prange(n_chunks):
            cnt = counts[c]
            end = min(n, c * rows + rows)
            for i0 in range(c * rows, end, _BLOCK_ROWS):
                i1 = min(end, i0 + _BLOCK_ROWS)
                # Validate the block before binning it (it then sits in L1): the bits of
                # a float in [+0, 1] are the integers [0, bits(1.0)]; NaN, inf and
                # negatives fall outside (as does -0.0, which the caller re-checks).
                lo = bits[i0, 0]
                hi = bits[i0, 0]
                for i in range(i0, i1):
                    for j in range(n_labels):
                        lo = min(lo, bits[i, j])
                        hi = max(hi, bits[i, j])
                if lo < 0 or hi > one_bits:
                    suspect[c] = i0
                    break
                for i in range(i0, i1):
                    w = weights[i] if has_weights else 1.0
                    for j in range(n_labels):
                        s = np.float64(scores[i, j])
                        o = np.int64(outcomes[i, j]) if has_outcomes else UNLABELED
                        if steps == 0:
                            b = np.int64(np.searchsorted(edges[:m], s))
                        else:
                            b = lut[int(s * cells)]
                            for _ in range(steps):
                                b += edges[b] < s
                        cnt[j * stride + o * m + b] += w
        return counts.sum(axis=0), suspect

    return kernel


_KERNELS: dict[tuple[int, bool, bool], Any] = {}


def _bin_counts_numba(
    edges: npt.NDArray[np.float64],
    bins: int,
    scores: npt.NDArray[np.floating[Any]],
    outcomes: npt.NDArray[np.bool_] | None,
    weights: npt.NDArray[np.float64] | None,
) -> _Result:
    n, n_labels = scores.shape
    cells, lut, steps = _cell_lookup(edges, bins)
    n_chunks = max(1, min(numba.get_num_threads(), n // 4096 + 1))
    key = (steps, outcomes is not None, weights is not None)
    if key not in _KERNELS:
        _KERNELS[key] = _make_kernel(*key)
    int_type = np.int32 if scores.dtype == np.float32 else np.int64
    counts, suspect = _KERNELS[key](
        np.concatenate([edges, np.full(max(steps, 1), np.inf)]),
        lut,
        cells,
        scores,
        scores.view(int_type),
        int(np.array(1.0, dtype=scores.dtype).view(int_type)),
        _DUMMY_OUTCOMES if outcomes is None else outcomes.view(np.uint8),
        _DUMMY_WEIGHTS if weights is None else weights,
        n_chunks,
    )
    if (suspect >= 0).any():
        bad = check_scores(scores)
        if bad is not None:
            return None, bad
        # only -0.0 looked suspect to the bit test: valid, count it the slow way
        return _bin_counts_numpy(edges, scores, outcomes, weights)
    return np.asarray(counts).reshape(n_labels, N_OUTCOMES, len(edges)), None


_BLOCK_ROWS = 64
_DUMMY_OUTCOMES = np.zeros((1, 1), dtype=np.uint8)
_DUMMY_WEIGHTS = np.ones(1)
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="labelwatch-check")
