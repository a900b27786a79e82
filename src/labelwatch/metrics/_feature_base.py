"""What the feature summaries (``NumericSketch``, ``CategoricalCounts``) share: counting
rows per code and grouping them, validating weights and stored numbers, and framing their
dict and binary forms (magic bytes, a JSON header, then a body).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwatch.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# ------------------------------------------------------------ counting rows
def _tally(
    code: IntArray, size: int, *terms: IntArray
) -> tuple[IntArray, IntArray, list[IntArray]]:
    """The distinct values of ``code`` (in [0, size)) ascending, how often each occurs and,
    per ``terms`` array (``|t| <= 2**27``), its exact int64 sum over each code's rows."""
    if not code.size:
        return code[:0], code[:0], [t[:0] for t in terms]
    # A dense bincount (at most 32 bytes a code, or 512 KiB) is far cheaper than sorting;
    # its float sums of such terms are exact integers while there are at most 2**26.
    if size <= 4 * code.size + (1 << 16) and code.size <= 1 << 26:
        counts = np.bincount(code, minlength=size)
        at = np.flatnonzero(counts > 0)
        sums = [np.bincount(code, t, size)[at].astype(np.int64) for t in terms]
        return at, counts[at], sums
    order = np.argsort(code)
    c = code[order]
    starts = np.flatnonzero(np.concatenate(([True], c[1:] != c[:-1])))
    counts = np.diff(np.append(starts, c.size))
    return c[starts], counts, [np.add.reduceat(t[order], starts) for t in terms]


def _group_rows(groups: Sequence[Any], n: int) -> tuple[IntArray, IntArray]:
    """``(rows, group)``: the groups' row indices concatenated and each one's group index
    (non-decreasing). Each group: a 1-D integer array of rows in [0, n)."""
    parts = [np.asarray(g) for g in groups]
    for g in parts:
        if g.ndim != 1 or (g.size and g.dtype.kind not in "iu"):
            raise InvalidInputError("groups", "1-D arrays of row indices", g)
    rows = np.concatenate([np.zeros(0, np.int64), *parts], dtype=np.int64, casting="unsafe")
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        bad = int(rows[(rows < 0) | (rows >= n)][0])
        raise InvalidInputError("groups", f"row indices in [0, {n})", bad)
    group = np.repeat(np.arange(len(parts), dtype=np.int64), [g.size for g in parts])
    return rows, group


# ----------------------------------------------------------------- validation
def _check_weights(weights: Any, n: int) -> FloatArray | None:
    if weights is None:
        return None
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError("weights", f"{n} non-negative numbers", weights) from None
    if w.shape != (n,):
        raise InvalidInputError("weights", f"an array of shape ({n},), one per value", w.shape)
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInputError("weights", "a finite non-negative number", float(w[i]), row=i)
    return w


def _scalar(data: dict[str, Any], name: str, *, nullable: bool = False) -> float:
    value = data.get(name)
    if value is None and nullable:
        return math.nan
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or (not nullable and value < 0):  # type: ignore[arg-type, operator]
        what = "a finite number or null" if nullable else "a finite non-negative number"
        raise InvalidInputError(name, what, value)
    return float(value)  # type: ignore[arg-type]


# ------------------------------------------------------------ serialization
def _read_header(data: Any, magic: bytes, fmt: str) -> tuple[dict[str, Any], bytes]:
    if not isinstance(data, bytes | bytearray | memoryview) or bytes(data[:8]) != magic:
        got = bytes(data[:8]) if isinstance(data, bytes | bytearray | memoryview) else data
        raise InvalidInputError("data", f"bytes starting with {magic!r}", got)
    data = bytes(data)
    if len(data) < 12:
        raise InvalidInputError("data", "a length after the magic bytes", data)
    (size,) = struct.unpack("<I", data[8:12])
    try:
        header = json.loads(data[12 : 12 + size])
    except ValueError:
        raise InvalidInputError("data", "a JSON header", data[12 : 12 + size]) from None
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise InvalidInputError("format", repr(fmt), header)
    return header, data[12 + size :]


def _pack(magic: bytes, header: dict[str, Any], body: bytes) -> bytes:
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    return magic + struct.pack("<I", len(text)) + text + body


def _check_format(data: Any, fmt: str) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("format") != fmt:
        got = data.get("format") if isinstance(data, dict) else data
        raise InvalidInputError("format", repr(fmt), got)
    return data
