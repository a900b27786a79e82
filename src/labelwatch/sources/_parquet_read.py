"""The MAP columns of Parquet files read by pyarrow for the DuckDB engine's pass.

DuckDB hands a MAP column over as two lists per row (``map_keys``, ``map_values``),
building a string per entry: on 2M rows x 20 labels that took 2.6-3.2 s against 0.7 s
for pyarrow, which reads the label keys as dictionaries (``bench/sources.py``). When
every dict side of a pass is a MAP column of the files themselves, pyarrow reads them,
row group by row group, and DuckDB only the row numbers and cell hashes, in the same
order (checked per row group: any difference falls back to DuckDB's reading).

A row group's maps are decoded by ``_parquet_maps`` when it can (1.5x faster than
pyarrow's reader on ``bench/sources.py``, its arrays reused), else by pyarrow
(``LABELWATCH_PARQUET_DECODER=pyarrow``: always by pyarrow).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from labelwatch.sources._parquet_maps import Buffers, DecodedMap, Unsupported, map_layout, read_map

ParquetPlan = tuple[list[str], list[str], list[list[str]]]  # files, MAP columns, key paths


class OutOfStep(Exception):
    """pyarrow's rows and DuckDB's differ (order or count): read with DuckDB instead."""


def map_key_paths(files: list[str], columns: list[str]) -> list[list[str]] | None:
    """Per file the Parquet paths of the columns' map keys, when every file holds every
    column as a MAP of string keys to float, integer or boolean values; else None."""
    import pyarrow.parquet as pq
    import pyarrow.types as pt

    out = []
    for f in files:
        pf = pq.ParquetFile(f)
        try:
            schema = pf.schema_arrow
            leaves = [pf.metadata.schema.column(i).path for i in range(pf.metadata.num_columns)]
        finally:
            pf.close()
        keys = []
        for c in columns:
            if schema.get_field_index(c) < 0:
                return None
            t = schema.field(c).type
            if not pt.is_map(t) or not (pt.is_string(t.key_type) or pt.is_large_string(t.key_type)):
                return None
            v = t.item_type
            numeric = (pt.is_floating(v) and not pt.is_float16(v)) or pt.is_integer(v)
            if not (numeric or pt.is_boolean(v)):
                return None
            depth = c.count(".") + 2
            found = [
                p for p in leaves
                if p.startswith(c + ".") and p.endswith(".key") and p.count(".") == depth
            ]  # fmt: skip
            if len(found) != 1:
                return None
            keys.append(found[0])
        out.append(keys)
    return out


def pyarrow_plan(
    files: list[str], fields: dict[str, Any], known: dict[tuple[str, ...], Any]
) -> ParquetPlan | None:
    """(files, MAP columns, their key paths) when pyarrow reads the pass' dict sides
    (the fields' accumulators): every side a MAP column of every file; else None.
    ``known``: the files' key paths found before, per columns (read once a source)."""
    columns = []
    for acc in fields.values():
        for side in (acc.pred, acc.act):
            if side is not None:
                if side.plain is None:
                    return None
                columns.append(side.plain)
    if tuple(columns) not in known:
        known[tuple(columns)] = map_key_paths(files, columns)
    keys = known[tuple(columns)]
    return None if keys is None else (files, columns, keys)


# pyarrow's pool (mimalloc) gives its free memory back every this many rows read (never:
# 2.07 GB peak on 2M rows x 20 labels, an earlier pass). After every row group of 250k
# rows, the pages faulted in again cost 10M rows 0.6 s (12.9 s against 12.3 s, three
# runs each), for 150 MB less peak RSS (1.53 GB against 1.69 GB).
_RELEASE_ROWS = 1 << 20


def parquet_batches(
    reader: Any,
    files: list[str],
    columns: list[str],
    key_paths: list[list[str]],
    head: Callable[[Any], tuple[Any, ...]],
) -> Iterator[tuple[tuple[Any, ...], list[Any]]]:
    """(``head`` of DuckDB's rows, the columns' MapArrays) per row group: the maps read
    by pyarrow, DuckDB's ``reader`` (columns: row number, hash, more) read in step with
    them; ``head``: a DuckDB batch as arrays whose last axis is the rows', the row
    numbers first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pool = pa.default_memory_pool()
    own = os.environ.get("LABELWATCH_PARQUET_DECODER") != "pyarrow"
    # per column, the arrays given back by ``release`` (a column's own: of its size)
    free = [_Free() for _ in columns]
    scratch = Buffers()
    have: list[tuple[Any, ...]] = []
    held = 0
    expected = 0
    since = 0  # rows read since the pool last gave back its free memory

    def take(m: int) -> tuple[Any, ...]:
        nonlocal held
        while held < m:
            batch = reader.read_next_batch()  # StopIteration: fewer rows than pyarrow's
            if batch.num_rows:
                have.append(head(batch))
                held += batch.num_rows
        if len(have) > 1:  # the last axis is the rows'
            cols = tuple(np.concatenate(x, axis=-1) for x in zip(*have, strict=True))
        else:
            cols = have[0]
        have.clear()
        if len(cols[0]) > m:
            have.append(tuple(c[..., m:] for c in cols))
        held -= m
        return tuple(c[..., :m] for c in cols)

    try:
        for f, keys in zip(files, key_paths, strict=True):
            with pq.ParquetFile(f, read_dictionary=keys) as pf, open(f, "rb") as raw:
                layouts = [map_layout(pf.metadata, k) for k in keys] if own else []
                for group in range(pf.num_row_groups):
                    maps = _decoded(raw, pf.metadata.row_group(group), layouts, free, scratch)
                    if maps is None:
                        table = pf.read_row_group(group, columns=columns, use_threads=False)
                        maps = []
                        for c in columns:
                            chunks = table.column(c).chunks
                            maps.append(chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks))
                        n = table.num_rows
                        del table
                        since += n
                    else:
                        n = len(maps[0].valid)
                    if not n:
                        continue
                    got = take(n)
                    if not np.array_equal(got[0], np.arange(expected, expected + n)):
                        raise OutOfStep
                    expected += n
                    yield got, maps
                    del maps
                    if since >= _RELEASE_ROWS:  # mimalloc keeps what was freed
                        pool.release_unused()
                        since = 0
        if held or any(b.num_rows for b in reader):
            raise OutOfStep
    except (StopIteration, pa.ArrowException) as exc:
        raise OutOfStep from exc
    finally:  # arrays given back later are dropped, not kept
        for home in free:
            home.close()


class _Free:
    """A column's decoded arrays given back (``release``), to be filled again; none kept
    once closed (``Buffers.home`` points here: a cycle the garbage collector would
    otherwise have to find, with hundreds of MB in it)."""

    def __init__(self) -> None:
        self.items: list[Buffers] = []
        self.closed = False
        self.lock = threading.Lock()

    def get(self) -> Buffers:
        with self.lock:
            bufs = self.items.pop() if self.items else Buffers()
        bufs.home = self
        return bufs

    def put(self, bufs: Buffers) -> None:
        with self.lock:
            bufs.home = None
            if not self.closed:
                self.items.append(bufs)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.items.clear()


def _decoded(
    raw: Any,
    group: Any,
    layouts: list[Any],
    free: list[_Free],
    scratch: Buffers,
) -> list[DecodedMap] | None:
    """The row group's maps decoded by ``_parquet_maps``; None when it cannot (pyarrow
    reads them). Each map's arrays live in a ``Buffers`` from its column's ``free``
    (new when none was given back), given back by ``release``."""
    if not layouts or any(lay is None for lay in layouts):
        return None
    out: list[DecodedMap] = []
    try:
        for lay, home in zip(layouts, free, strict=True):
            bufs = home.get()
            out.append(read_map(raw, group, lay, bufs, scratch))
    except Unsupported:
        for m in out:
            release(m)
        return None
    return out


def release(arr: Any) -> None:
    """Give a decoded map's arrays back to its reader, to be filled again (call it once
    nothing reads them any more); nothing for a pyarrow array."""
    if isinstance(arr, DecodedMap) and arr.buffers is not None:
        bufs, arr.buffers = arr.buffers, None
        if bufs.home is not None:
            bufs.home.put(bufs)


def map_side(labels: Any, arr: Any) -> tuple[Any, ...]:
    """A map column's row group (a pyarrow MapArray whose keys were read as a
    dictionary, or a ``DecodedMap``) as the pass' map side (``_encode``'s kind 3): (3,
    offsets, code per dictionary entry, values, valid rows, dictionary index per
    entry, -, -, zeros: the entries per dictionary entry, for ``_encode`` to count)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, DecodedMap):
        return _side(labels, arr.offsets, arr.valid, arr.values, arr.index, arr.dictionary)
    off = arr.offsets.to_numpy().astype(np.int64)
    has = arr.is_valid().to_numpy(zero_copy_only=False).view(np.uint8)
    if arr.null_count and np.diff(off)[has == 0].any():  # entries under a NULL map
        raise OutOfStep
    keys, items = arr.keys, arr.items
    if items.type != pa.float64():  # as DuckDB's CAST(... AS DOUBLE): rounded, not refused
        items = pc.cast(items, pa.float64(), safe=False)
    vals = np.ascontiguousarray(items.to_numpy(zero_copy_only=False), np.float64)
    if not pa.types.is_dictionary(keys.type):  # read_dictionary asked for them
        raise OutOfStep
    index = keys.indices.to_numpy(zero_copy_only=False)
    return _side(labels, off, has, vals, index, keys.dictionary)


def _side(
    labels: Any, off: Any, has: Any, vals: Any, index: Any, dictionary: Any
) -> tuple[Any, ...]:
    code_of = labels.known(dictionary)  # per dictionary entry
    if code_of is None:  # a key not met before (rare): interned if the rows hold it
        used = np.bincount(index, minlength=len(dictionary)) > 0
        code_of = np.full(len(dictionary), -1, dtype=np.int32)
        code_of[used] = labels.intern(dictionary, np.flatnonzero(used))  # no pa.array: pandas
    counts = np.zeros(len(dictionary), dtype=np.int64)
    none = np.zeros(0, dtype=np.int32)
    return (3, off, code_of, vals, has, index, none.view(np.uint8), none, counts)
