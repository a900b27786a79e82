"""The categorical feature summary: :class:`CategoricalCounts` (capped weighted counts
per category, the surplus summed under :data:`OTHER`) and its helpers.

Counts merge with ``+`` like ``ScoreSketch``: they are sums, so merges are associative and
commutative byte for byte while weights are integers (default 1) and totals stay below
2**53; fractional weights merge within rounding.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwatch.errors import IncompatibleMergeError, InvalidInputError
from labelwatch.metrics._feature_base import (
    _check_format,
    _check_weights,
    _group_rows,
    _pack,
    _read_header,
    _scalar,
    _tally,
)

__all__ = ["OTHER", "CategoricalCounts"]

#: The bucket a capped ``CategoricalCounts`` sums its surplus categories into.
OTHER = "__other__"
_CAT_MAGIC, _CAT_FORMAT = b"LWCATCNT", "labelwatch.CategoricalCounts/1"


def _is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _category_or_missing(x: Any) -> bool:
    return (isinstance(x, str) and x != OTHER) or _is_missing(x)


def _category_error(x: Any, row: int) -> InvalidInputError:
    """The error of a value that is neither a category name nor missing."""
    if isinstance(x, str):
        return InvalidInputError(
            "values", "a category name", x, row=row, hint=f"{OTHER!r} is reserved"
        )
    return InvalidInputError(
        "values", "a category name (str), or None / NaN for missing", x, row=row
    )


def _rank(name: str) -> tuple[int, str]:
    """A stable pseudo-random order of category names (blake2b, then the name)."""
    digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big"), name


def _check_cap(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidInputError("max_categories", "a positive integer", value)
    return int(value)


class CategoricalCounts:
    """Weighted counts per category (str), with the weight of missing values.

    At most ``max_categories`` categories are kept; beyond that the surplus is summed
    under :data:`OTHER` (``"__other__"``) and ``truncated`` is True. The categories kept
    are those first in a fixed hash order (not the most frequent): that choice is the one
    that merges exactly, as the kept set of a merge equals that of the whole data.
    ``counts`` maps each category (and ``"__other__"`` when truncated) to its weight.

    >>> c = CategoricalCounts.from_values(["a", "b", "a", None])
    >>> c = c + CategoricalCounts.from_values(["c"])
    >>> c.counts, c.missing, c.truncated
    ({'a': 2.0, 'b': 1.0, 'c': 1.0}, 1.0, False)
    """

    __slots__ = ("_kept", "max_categories", "missing", "other", "squared_weights", "truncated")

    def __init__(self, max_categories: int = 1000) -> None:
        """Empty counts (the identity of ``+``)."""
        self.max_categories = _check_cap(max_categories)
        self._kept: dict[str, float] = {}
        self.other = self.missing = self.squared_weights = 0.0
        self.truncated = False

    @classmethod
    def from_values(
        cls,
        values: Iterable[Any],
        weights: npt.ArrayLike | None = None,
        *,
        max_categories: int = 1000,
    ) -> CategoricalCounts:
        """Count one batch: ``values`` are category names (str), None or NaN for missing.
        ``weights`` (n,): non-negative, default 1."""
        out = cls(max_categories)
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise InvalidInputError("values", "a sequence of category names", values)
        items = list(values)
        w = _check_weights(weights, len(items))
        counts: dict[str, float] = {}
        for i, x in enumerate(items):
            if isinstance(x, str) and x != OTHER:
                wi = 1.0 if w is None else float(w[i])
                if wi > 0:
                    counts[x] = counts.get(x, 0.0) + wi
            elif _is_missing(x):
                out.missing += 1.0 if w is None else float(w[i])
            else:
                raise _category_error(x, i)
        if w is None:
            out.squared_weights = float(sum(counts.values()))
        else:
            present = np.array([isinstance(x, str) for x in items], dtype=bool)
            out.squared_weights = float(np.dot(w[present], w[present]))
        out._set(counts, 0.0, truncated=False)
        return out

    @classmethod
    def from_groups(
        cls, values: Iterable[Any], groups: Sequence[npt.ArrayLike], *, max_categories: int = 1000
    ) -> list[CategoricalCounts]:
        """One count per group of rows, equal byte for byte to
        ``[from_values(values[g]) for g in groups]`` (unit weights), with one pass of Python
        over the values (a dict look-up each) instead of one per group and row.

        ``values`` (n,) as in :meth:`from_values`, all of them validated (errors name the
        row of ``values``); ``groups``: 1-D integer arrays of rows in [0, n), possibly
        empty or overlapping.

        >>> cs = CategoricalCounts.from_groups(["a", None, "b", "a"], [[0, 1, 3], [2]])
        >>> [(c.counts, c.missing) for c in cs]
        [({'a': 2.0}, 1.0), ({'b': 1.0}, 0.0)]
        """
        cap = cls(max_categories).max_categories
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise InvalidInputError("values", "a sequence of category names", values)
        items = list(values)
        rows, group = _group_rows(groups, len(items))
        try:
            distinct = list(dict.fromkeys(items))
        except TypeError:  # an unhashable value, refused just below
            distinct = items
        if not all(map(_category_or_missing, distinct)):
            i = next(i for i, x in enumerate(items) if not _category_or_missing(x))
            raise _category_error(items[i], i)
        names = sorted(x for x in distinct if isinstance(x, str))
        k = len(names)  # the code of missing values; names get their rank
        rank = {name: j for j, name in enumerate(names)}
        index = {x: rank[x] if isinstance(x, str) else k for x in distinct}
        code = np.fromiter(map(index.__getitem__, items), np.int64, len(items))
        cells, counts, _ = _tally(group * (k + 1) + code[rows], len(groups) * (k + 1))
        bounds = np.searchsorted(cells // (k + 1), np.arange(len(groups) + 1)).tolist()
        cats, sizes = (cells % (k + 1)).tolist(), counts.tolist()
        out = []
        for g in range(len(groups)):
            c = cls(cap)
            kept: dict[str, float] = {}
            part = slice(bounds[g], bounds[g + 1])
            for j, size in zip(cats[part], sizes[part], strict=True):
                if j < k:
                    kept[names[j]] = float(size)
                else:
                    c.missing = float(size)
            c.squared_weights = float(sum(kept.values()))
            c._set(kept, 0.0, truncated=False)
            out.append(c)
        return out

    def _set(self, kept: dict[str, float], other: float, *, truncated: bool) -> None:
        """Keep the first ``max_categories`` in hash order, fold the rest into other."""
        if len(kept) > self.max_categories:
            order = sorted(kept, key=_rank)
            for name in order[self.max_categories :]:
                other += kept.pop(name)
            truncated = True
        self._kept = dict(sorted(kept.items()))
        self.other, self.truncated = other, truncated

    @property
    def counts(self) -> dict[str, float]:
        """Weight per category, sorted by name; ``"__other__"`` last when truncated."""
        return {**self._kept, OTHER: self.other} if self.truncated else dict(self._kept)

    @property
    def count(self) -> float:
        """Weight of the present (non-missing) values."""
        return float(sum(self._kept.values())) + self.other

    @property
    def effective_count(self) -> float:
        """Kish's effective sample size ``count² / Σ w²`` (= count for unit weights)."""
        return self.count**2 / self.squared_weights if self.squared_weights > 0 else 0.0

    def _cutoff(self) -> tuple[int, str] | None:
        """The last kept rank of truncated counts (None when nothing was folded)."""
        return max(map(_rank, self._kept)) if self.truncated else None

    def _folded(self, cutoff: tuple[int, str] | None) -> tuple[dict[str, float], float]:
        if cutoff is None:
            return dict(self._kept), self.other
        kept = {k: v for k, v in self._kept.items() if _rank(k) <= cutoff}
        dropped = sorted((k for k in self._kept if k not in kept), key=_rank)
        other = self.other
        for k in dropped:
            other += self._kept[k]
        return kept, other

    def __add__(self, other: object) -> CategoricalCounts:
        if not isinstance(other, CategoricalCounts):
            return NotImplemented
        if self.max_categories != other.max_categories:
            raise IncompatibleMergeError(
                "cannot merge CategoricalCounts of different max_categories: left "
                f"{self.max_categories}, right {other.max_categories}"
            )
        out = CategoricalCounts(self.max_categories)
        kept = dict(self._kept)
        for k, v in other._kept.items():
            kept[k] = kept.get(k, 0.0) + v
        out.missing = self.missing + other.missing
        out.squared_weights = self.squared_weights + other.squared_weights
        out._set(kept, self.other + other.other, truncated=self.truncated or other.truncated)
        return out

    def __radd__(self, other: object) -> CategoricalCounts:
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CategoricalCounts):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        more = f", {OTHER}={self.other:g}" if self.truncated else ""
        return (
            f"CategoricalCounts({len(self._kept)} categories, count={self.count:g}, "
            f"missing={self.missing:g}{more})"
        )

    # ------------------------------------------------------------ serialization
    def _header(self) -> dict[str, Any]:
        return {
            "format": _CAT_FORMAT,
            "max_categories": self.max_categories,
            "missing": self.missing,
            "squared_weights": self.squared_weights,
            "truncated": self.truncated,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; ``counts`` holds ``"__other__"`` when truncated."""
        return {**self._header(), "counts": self.counts}

    @classmethod
    def _from_parts(cls, header: dict[str, Any], counts: Any) -> CategoricalCounts:
        out = cls(header.get("max_categories"))  # type: ignore[arg-type]
        out.missing = _scalar(header, "missing")
        out.squared_weights = _scalar(header, "squared_weights")
        truncated = header.get("truncated")
        if not isinstance(truncated, bool):
            raise InvalidInputError("truncated", "true or false", truncated)
        if not isinstance(counts, dict) or not all(isinstance(k, str) for k in counts):
            raise InvalidInputError("counts", "a dict of category name -> weight", counts)
        kept = {k: _scalar(counts, k) for k in counts if k != OTHER}
        if any(v <= 0 for v in kept.values()):
            raise InvalidInputError("counts", "positive weights", kept)
        has_other = OTHER in counts
        full = len(kept) == out.max_categories
        if has_other != truncated or (truncated and not full) or len(kept) > out.max_categories:
            raise InvalidInputError(
                "counts",
                f"at most max_categories={out.max_categories} categories, and "
                f"{OTHER!r} with exactly that many when truncated",
                f"{len(kept)} categories, {OTHER!r} {'present' if has_other else 'absent'}, "
                f"truncated={truncated}",
            )
        out._set(kept, _scalar(counts, OTHER) if has_other else 0.0, truncated=truncated)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoricalCounts:
        """Inverse of :meth:`to_dict`."""
        return cls._from_parts(_check_format(data, _CAT_FORMAT), data.get("counts"))

    def to_bytes(self) -> bytes:
        """Compact binary form: a JSON header with the names, then their <f8 weights."""
        counts = self.counts
        header = {**self._header(), "names": list(counts)}
        return _pack(_CAT_MAGIC, header, np.array(list(counts.values()), "<f8").tobytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> CategoricalCounts:
        """Inverse of :meth:`to_bytes` (exact)."""
        header, body = _read_header(data, _CAT_MAGIC, _CAT_FORMAT)
        names = header.get("names")
        if not isinstance(names, list) or len(body) != 8 * len(names):
            raise InvalidInputError("data", "one float64 weight per name", len(body))
        values = np.frombuffer(body, "<f8").astype(np.float64).tolist()
        return cls._from_parts(header, dict(zip(names, values, strict=True)))
