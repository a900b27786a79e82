"""A reader of Parquet MAP columns for the DuckDB engine's pass, faster than pyarrow's
for the one shape the pass needs: a map of string keys to float or double values,
keys and values dictionary-encoded or plain, in data pages v1 or v2.

pyarrow decodes a row group's MAP column into Arrow arrays, growing its buffers as it
goes; here a column chunk's pages are decompressed by pyarrow's codecs and their levels
and indices decoded by compiled loops straight into the arrays the pass reads (entry
offsets, valid rows, the key's dictionary index and the value per entry). Anything else
(another encoding, a codec pyarrow lacks, a nesting deeper than one map, pages that do
not add up) is ``Unsupported``: the row group is then read by pyarrow, so the result
never depends on which reader read it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelwatch.sources._pass_kernels import _inline, _jit


class Unsupported(Exception):
    """A column chunk this reader does not decode: read the row group with pyarrow."""


class Buffers:
    """Arrays a reader fills again and again (fresh ones cost page faults: a 1M-row read
    of two maps took 0.79 s with new arrays per row group)."""

    def __init__(self) -> None:
        self.arrays: dict[str, Any] = {}
        self.home: Any = None  # where ``release`` gives them back

    def get(self, name: str, n: int, dtype: Any) -> Any:
        """``n`` values of the array ``name``, grown when short: by a quarter at least
        (row groups of one size still differ in levels: without it, 10 of 17
        allocations of 10M rows' values were regrowths of a few levels)."""
        a = self.arrays.get(name)
        if a is None or len(a) < n or a.dtype != dtype:
            size = max(n + n // 16, 1024) if a is None else max(n, len(a) + len(a) // 4)
            a = self.arrays[name] = np.empty(size, dtype=dtype)
        return a[:n]


@dataclass
class DecodedMap:
    """A row group's MAP column: ``offsets`` (rows + 1,) int64, ``valid`` (rows,) uint8
    (0: a NULL map), ``index`` (entries,) int32 into ``dictionary`` (a pyarrow string
    array), ``values`` (entries,) float64 (NULL: NaN)."""

    offsets: Any
    valid: Any
    index: Any
    dictionary: Any
    values: Any
    buffers: Buffers | None = None  # the arrays' owner, until ``release``d


# Parquet's enums (parquet.thrift)
_PLAIN, _PLAIN_DICTIONARY, _RLE, _RLE_DICTIONARY = 0, 2, 3, 8
_DATA_PAGE, _DICTIONARY_PAGE, _DATA_PAGE_V2 = 0, 2, 3
_CODECS = {
    "UNCOMPRESSED": None,
    "SNAPPY": "snappy",
    "GZIP": "gzip",
    "BROTLI": "brotli",
    "ZSTD": "zstd",
    "LZ4_RAW": "lz4_raw",
    "LZ4": "lz4_raw",  # pyarrow's name of LZ4_RAW (Parquet's old LZ4 is "LZ4_HADOOP")
}


def _varint(b: bytes, p: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        x = b[p]
        p += 1
        out |= (x & 0x7F) << shift
        if x < 0x80:
            return out, p
        shift += 7


def _thrift_value(b: bytes, p: int, t: int, item: bool = False) -> tuple[Any, int]:
    """One value of Thrift's compact protocol of type ``t`` at ``p``: (value, end);
    ``item``: in a list, set or map (a boolean then takes a byte)."""
    if t in (1, 2):  # a boolean field: its value is its type
        if item:
            return b[p] == 1, p + 1
        return t == 1, p
    if t == 3:
        return b[p], p + 1
    if t in (4, 5, 6):
        v, p = _varint(b, p)
        return (v >> 1) ^ -(v & 1), p
    if t == 7:
        return struct.unpack_from("<d", b, p)[0], p + 8
    if t == 8:
        n, p = _varint(b, p)
        if p + n > len(b):
            raise Unsupported("a page header")
        return bytes(b[p : p + n]), p + n
    if t in (9, 10):  # list, set
        head = b[p]
        p += 1
        n, et = head >> 4, head & 0x0F
        if n == 15:
            n, p = _varint(b, p)
        if n > len(b) - p:  # each item takes a byte at least
            raise Unsupported("a page header")
        items = []
        for _ in range(n):
            v, p = _thrift_value(b, p, et, True)
            items.append(v)
        return items, p
    if t == 11:  # map: only skipped (no field of a page header is one)
        n, p = _varint(b, p)
        if not n:
            return None, p
        if n > len(b) - p:
            raise Unsupported("a page header")
        kt, vt = b[p] >> 4, b[p] & 0x0F
        p += 1
        for _ in range(n):
            _, p = _thrift_value(b, p, kt, True)
            _, p = _thrift_value(b, p, vt, True)
        return None, p
    if t == 12:
        return _thrift_struct(b, p)
    raise Unsupported(f"Thrift type {t}")


def _thrift_struct(b: bytes, p: int) -> tuple[dict[int, Any], int]:
    """A struct of Thrift's compact protocol at ``p``: ({field id: value}, end)."""
    out: dict[int, Any] = {}
    fid = 0
    while True:
        head = b[p]
        p += 1
        if head == 0:
            return out, p
        delta, t = head >> 4, head & 0x0F
        if delta:
            fid += delta
        else:
            v, p = _varint(b, p)
            fid = (v >> 1) ^ -(v & 1)
        out[fid], p = _thrift_value(b, p, t)


@_inline
def _words_of(buf: Any, p: int, end: int, words: Any) -> None:
    """``buf[p:end]`` copied into ``words`` (uint64 scratch of at least
    ``(end - p) // 8 + 2``), the next 16 bytes zeroed: a hybrid run's bits then read a
    word at a time."""
    wbytes = words.view(np.uint8)
    m = end - p
    wbytes[:m] = buf[p:end]
    wbytes[m : min(m + 16, wbytes.shape[0])] = 0


@_inline
def _unpack(words: Any, bit0: int, bw: int, take: int, out: Any, at: int) -> None:
    """``out[at:at + take]``: ``take`` values of ``bw`` bits (at most 32) packed from bit
    ``bit0`` of ``words`` on (least significant bit first): 64 bits loaded at once
    (``_window``) hold 8, 4 or 2 values, taken apart by fixed shifts (the loop unrolled
    and vectorized). A value at a time, its word and shift computed: 14-bit values
    5.7 ns each; a stream of bits (a word loaded when the bits held ran short): 0.95 ns;
    this: 0.46 ns (1M-value microbench)."""
    if bw <= 8:
        _unpack_by(words, bit0, bw, take, out, at, 8)
    elif bw <= 16:
        _unpack_by(words, bit0, bw, take, out, at, 4)
    else:
        _unpack_by(words, bit0, bw, take, out, at, 2)


@_inline
def _unpack_by(words: Any, bit0: int, bw: int, take: int, out: Any, at: int, per: int) -> None:
    """``_unpack``, ``per`` values a window (a constant once inlined)."""
    ubw = np.uint64(bw)
    umask = np.uint64((1 << bw) - 1)
    step = np.uint64(bw * per)
    bit = np.uint64(bit0)
    full = take // per
    for g in range(full):
        x = _window(words, bit)
        for k in range(per):
            out[at + g * per + k] = (x >> (np.uint64(k) * ubw)) & umask
        bit += step
    rest = take - full * per
    if rest:
        x = _window(words, bit)
        for k in range(rest):
            out[at + full * per + k] = (x >> (np.uint64(k) * ubw)) & umask


@_inline
def _window(words: Any, bit: Any) -> Any:
    """The 64 bits of ``words`` from bit ``bit`` (unsigned) on; two aligned loads, no
    shift by 64."""
    w = bit >> np.uint64(6)
    sh = bit & np.uint64(63)
    return (words[w] >> sh) | ((words[w + np.uint64(1)] << np.uint64(1)) << (np.uint64(63) - sh))


@_inline
def _run_header(buf: Any, p: int, end: int) -> tuple[int, int]:
    """A hybrid run's header at ``p``: (header, position after it); (-1, p) past
    ``end`` or past 42 bits (no page holds such a run: sizes computed from it stay far
    from overflowing)."""
    h = 0
    shift = 0
    while True:
        if p >= end or shift > 35:
            return -1, p
        x = int(buf[p])
        p += 1
        h |= (x & 0x7F) << shift
        if x < 0x80:
            return h, p
        shift += 7


@_inline
def _run_value(buf: Any, p: int, width: int) -> int:
    """The value of an RLE run: ``width`` bytes from ``p``, little-endian."""
    v = 0
    for k in range(width):
        v |= int(buf[p + k]) << (8 * k)
    return v


@_jit
def _all_equal(buf: Any, p: int, end: int, bw: int, n: int, level: int) -> bool:
    """Whether the first ``n`` hybrid values of ``buf[p:end]`` are runs of ``level``
    (False at the first bit-packed run: decode them instead)."""
    i = 0
    width = (bw + 7) // 8
    while i < n:
        h, p = _run_header(buf, p, end)
        if h < 0 or h & 1 or p + width > end:
            return False
        if _run_value(buf, p, width) != level:
            return False
        p += width
        i += h >> 1
    return True


@_jit
def _count_at_least(
    buf: Any, p: int, end: int, bw: int, n: int, level: int, tmp: Any, words: Any
) -> int:
    """How many of the first ``n`` hybrid values of ``buf[p:end]`` are at least
    ``level`` (a run of equal values counted at once; ``tmp``: scratch of ``n``
    values); -1 when the runs end first."""
    i = 0
    total = 0
    width = (bw + 7) // 8
    base = p
    _words_of(buf, p, end, words)
    while i < n:
        h, p = _run_header(buf, p, end)
        if h < 0:
            return -1
        if h & 1:
            take = min((h >> 1) * 8, n - i)
            if p + (take * bw + 7) // 8 > end:
                return -1
            _unpack(words, (p - base) * 8, bw, take, tmp, 0)
            for j in range(take):
                if tmp[j] >= level:
                    total += 1
            p += (h >> 1) * bw
        else:
            if p + width > end:
                return -1
            v = _run_value(buf, p, width)
            p += width
            take = min(h >> 1, n - i)
            if v >= level:
                total += take
        i += take
    return total


_LOW8 = np.array([0] + [(k & -k).bit_length() - 1 for k in range(1, 256)], dtype=np.int64)


@_jit
def _dense_rows(buf: Any, p: int, end: int, n: int, state: Any, offsets: Any, valid: Any) -> bool:
    """The rows of a page whose ``n`` entries all hold a value, from its repetition
    levels (1 bit, a row starting at each 0) in ``buf[p:end]``: ``state`` [rows,
    entries, values] advanced, ``offsets``, ``valid`` of the new rows written. False
    when the runs end first or the rows pass the arrays' room."""
    r = state[0]
    e = state[1]
    rows = valid.shape[0]
    i = 0
    while i < n:
        h, p = _run_header(buf, p, end)
        if h < 0:
            return False
        if h & 1:
            take = min((h >> 1) * 8, n - i)
            nb = (take + 7) // 8
            if p + nb > end:
                return False
            for q in range(nb):
                z = ~int(buf[p + q]) & 0xFF
                if q == nb - 1 and take & 7:
                    z &= (1 << (take & 7)) - 1
                while z:
                    if r >= rows:
                        return False
                    offsets[r] = e + i + q * 8 + _LOW8[z]
                    valid[r] = 1
                    r += 1
                    z &= z - 1
            p += h >> 1
        else:
            if p + 1 > end:
                return False
            v = int(buf[p])
            p += 1
            take = min(h >> 1, n - i)
            if v == 0:
                if r + take > rows:
                    return False
                for j in range(take):
                    offsets[r] = e + i + j
                    valid[r] = 1
                    r += 1
        i += take
    state[0] = r
    state[1] = e + n
    state[2] += n
    return True


@_jit
def _gather(idx: Any, n: int, dvals: Any, out: Any, at: int) -> bool:
    """``out[at:at + n]``: the dictionary values of ``idx[:n]``; False on an index out
    of range."""
    nd = dvals.shape[0]
    for j in range(n):
        d = idx[j]
        if d < 0 or d >= nd:
            return False
        out[at + j] = dvals[d]
    return True


@_jit
def _hybrid(buf: Any, p: int, end: int, bw: int, out: Any, n: int, words: Any) -> int:
    """Decode ``n`` values of Parquet's RLE / bit-packed hybrid of width ``bw`` from
    ``buf[p:end]`` into ``out[:n]``: the position after them, -1 when the runs end
    first. ``words``: uint64 scratch of at least ``(end - p) // 8 + 2``; the runs are
    copied there once and the bit-packed ones read a word at a time (``_unpack``)."""
    i = 0
    width = (bw + 7) // 8
    base = p
    _words_of(buf, p, end, words)
    while i < n:
        h, p = _run_header(buf, p, end)
        if h < 0:
            return -1
        if h & 1:  # bit-packed: (h >> 1) groups of 8 values
            nbytes = (h >> 1) * bw
            take = min((h >> 1) * 8, n - i)
            nb = (take * bw + 7) // 8
            if p + nb > end:
                return -1
            _unpack(words, (p - base) * 8, bw, take, out, i)
            i += take
            p += nbytes
        else:  # a run of (h >> 1) equal values
            if p + width > end:
                return -1
            v = _run_value(buf, p, width)
            p += width
            take = min(h >> 1, n - i)
            for j in range(take):
                out[i + j] = v
            i += take
    return p


@_jit
def _levels_to_rows(
    rep: Any,
    dfn: Any,
    n: int,
    entry_def: int,
    value_def: int,
    valid_def: int,
    state: Any,
    offsets: Any,
    valid: Any,
    present: Any,
) -> bool:
    """Rows and entries of a page's ``n`` levels: ``state`` [rows, entries, values]
    so far; a row starts at each repetition level 0 (``offsets``, ``valid``: its
    definition level at least ``valid_def``), an entry at each definition level at
    least ``entry_def`` (``present``: 1 when it holds a value, level ``value_def``).
    False when a row or entry would pass the arrays' room."""
    r = state[0]
    e = state[1]
    v = state[2]
    rows = valid.shape[0]
    entries = present.shape[0]
    for i in range(n):
        d = dfn[i]
        if rep[i] == 0:
            if r >= rows:
                return False
            offsets[r] = e
            valid[r] = 1 if d >= valid_def else 0
            r += 1
        if d >= entry_def:
            if e >= entries:
                return False
            if d >= value_def:
                present[e] = 1
                v += 1
            else:
                present[e] = 0
            e += 1
    state[0] = r
    state[1] = e
    state[2] = v
    return True


@_jit
def _fill_values(present: Any, lo: int, hi: int, idx: Any, dvals: Any, out: Any) -> bool:
    """``out[lo:hi]``: per entry the dictionary value of its next index from ``idx``,
    NaN where ``present`` is 0. False on an index out of range."""
    k = 0
    nd = dvals.shape[0]
    for e in range(lo, hi):
        if present[e]:
            j = idx[k]
            if j < 0 or j >= nd:
                return False
            out[e] = dvals[j]
            k += 1
        else:
            out[e] = np.nan
    return True


@_jit
def _fill_plain(present: Any, lo: int, hi: int, vals: Any, out: Any) -> None:
    k = 0
    for e in range(lo, hi):
        if present[e]:
            out[e] = vals[k]
            k += 1
        else:
            out[e] = np.nan


@dataclass
class _Leaf:
    column: int  # the leaf's index in the file's schema
    max_def: int
    max_rep: int
    physical: str


@dataclass
class MapLayout:
    """Where a MAP column's key and value leaves are in a file, and their levels."""

    key: _Leaf
    value: _Leaf


def map_layout(metadata: Any, key_path: str) -> MapLayout | None:
    """The layout of the MAP column whose key leaf is ``key_path``, when this reader
    decodes it (one level of repetition, string keys, float or double values)."""
    schema = metadata.schema
    value_path = key_path[: -len("key")] + "value"
    found: dict[str, _Leaf] = {}
    for i in range(metadata.num_columns):
        c = schema.column(i)
        if c.path in (key_path, value_path):
            found[c.path] = _Leaf(
                i, c.max_definition_level, c.max_repetition_level, c.physical_type
            )
    key, value = found.get(key_path), found.get(value_path)
    if key is None or value is None or key.max_rep != 1 or value.max_rep != 1:
        return None
    if key.physical != "BYTE_ARRAY" or value.physical not in ("DOUBLE", "FLOAT"):
        return None
    if value.max_def not in (key.max_def, key.max_def + 1) or key.max_def < 1:
        return None
    return MapLayout(key, value)


class _Chunk:
    """A column chunk's pages: (header, decompressed levels and values) one by one."""

    def __init__(self, raw: Any, meta: Any) -> None:
        codec = meta.compression
        if codec not in _CODECS:
            raise Unsupported(f"codec {codec}")
        self.codec = _CODECS[codec]
        start = meta.data_page_offset
        if meta.has_dictionary_page and meta.dictionary_page_offset:
            start = min(start, meta.dictionary_page_offset)
        raw.seek(start)
        self.buf = raw.read(meta.total_compressed_size)
        if len(self.buf) != meta.total_compressed_size:
            raise Unsupported("a short column chunk")
        self.p = 0
        self.left = meta.num_values  # levels still to read
        self.usize = meta.total_uncompressed_size  # no page inflates past it

    def _inflate(self, data: Any, size: int) -> Any:
        import pyarrow as pa

        if self.codec is None:
            return np.frombuffer(data, dtype=np.uint8)
        try:
            out = pa.decompress(data, decompressed_size=size, codec=self.codec)
        except (pa.ArrowException, OSError, ValueError) as exc:  # corrupt: OSError
            raise Unsupported(str(exc)) from exc
        return np.frombuffer(out, dtype=np.uint8)

    def pages(self) -> Any:
        """(kind, header fields, bytes, levels (v2: rep, def byte lengths) or None); a
        data page's number of levels checked against what the chunk has left."""
        buf = self.buf
        while self.left > 0:
            if self.p >= len(buf):
                raise Unsupported("the pages end before the chunk's values")
            try:
                head, p = _thrift_struct(buf, self.p)
            except (IndexError, struct.error, RecursionError) as exc:
                raise Unsupported("a page header") from exc
            kind, usize, csize = head.get(1), head.get(2), head.get(3)
            if not (_count(csize, len(buf)) and _count(usize, self.usize)):
                raise Unsupported("a page header")
            assert isinstance(usize, int) and isinstance(csize, int)  # for mypy
            body = buf[p : p + csize]
            if len(body) != csize:
                raise Unsupported("a short page")
            self.p = p + csize
            if kind == _DICTIONARY_PAGE:
                h = _fields(head.get(7), 1, 2)
                yield kind, h, self._inflate(body, usize), None
            elif kind == _DATA_PAGE:
                h = _fields(head.get(5), 1, 2)
                if h[1] > self.left:
                    raise Unsupported("pages with more values than the chunk")
                self.left -= h[1]
                yield kind, h, self._inflate(body, usize), None
            elif kind == _DATA_PAGE_V2:
                h = _fields(head.get(8), 1, 4, 5, 6)
                rl, dl = h[6], h[5]
                if h[1] > self.left or rl + dl > min(csize, usize):
                    raise Unsupported("a page header")
                self.left -= h[1]
                levels = np.frombuffer(body[: rl + dl], dtype=np.uint8)
                rest = body[rl + dl :]
                if h.get(7, True) and self.codec is not None:
                    vals = self._inflate(rest, usize - rl - dl)
                else:
                    vals = np.frombuffer(rest, dtype=np.uint8)
                yield kind, h, np.concatenate([levels, vals]), (rl, dl)
            # index pages and unknown kinds are skipped


def _count(v: Any, top: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= top


def _fields(h: Any, *need: int) -> dict[int, Any]:
    """A page header's struct with the integer fields ``need`` (counts, sizes,
    encodings: none negative, none past 2**31)."""
    if not isinstance(h, dict) or not all(_count(h.get(k), 1 << 31) for k in need):
        raise Unsupported("a page header")
    return h


def _spans(data: Any, leaf: _Leaf, v2: tuple[int, int] | None) -> tuple[int, int, int, int]:
    """Where a data page's levels are: (repetition start, end, definition start, end);
    its values follow."""
    out = []
    p = 0
    for k, top in ((0, leaf.max_rep), (1, leaf.max_def)):
        size = 0
        if top:  # no section for a level that is always 0
            if v2 is None:
                if len(data) < p + 4:
                    raise Unsupported("a short page")
                size = int.from_bytes(bytes(data[p : p + 4]), "little")
                p += 4
            else:
                size = v2[k]
        out += [p, p + size]
        p += size
        if p > len(data):
            raise Unsupported("a short page")
    return out[0], out[1], out[2], out[3]


def _page_levels(
    data: Any, n: int, leaf: _Leaf, spans: tuple[int, int, int, int], rep: Any, dfn: Any, words: Any
) -> None:
    """Decode a data page's repetition and definition levels into ``rep``, ``dfn``."""
    rs, re, ds, de = spans
    for top, lo, hi, out in ((leaf.max_rep, rs, re, rep), (leaf.max_def, ds, de, dfn)):
        if not top:
            out[:n] = 0
        elif _hybrid(data, lo, hi, int(top).bit_length(), out, n, words) < 0:
            raise Unsupported("levels")


def _plain_strings(data: Any, n: int) -> Any:
    """A dictionary page of ``n`` PLAIN byte arrays as a pyarrow string array."""
    import pyarrow as pa

    raw = bytes(data)
    if n > len(raw) // 4:  # 4 bytes of length at least per string
        raise Unsupported("a dictionary page")
    offsets = np.empty(n + 1, dtype=np.int32)
    chunks = []
    p = 0
    offsets[0] = 0
    for i in range(n):
        if p + 4 > len(raw):
            raise Unsupported("a dictionary page")
        size = int.from_bytes(raw[p : p + 4], "little")
        if p + 4 + size > len(raw):
            raise Unsupported("a dictionary page")
        chunks.append(raw[p + 4 : p + 4 + size])
        p += 4 + size
        offsets[i + 1] = offsets[i] + size
    arr = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(b"".join(chunks)))
    try:
        arr.validate(full=True)  # UTF-8, as pyarrow's reader checks it
    except pa.ArrowInvalid as exc:
        raise Unsupported("keys that are not UTF-8") from exc
    return arr


def _values_dtype(leaf: _Leaf) -> Any:
    return np.dtype("<f8") if leaf.physical == "DOUBLE" else np.dtype("<f4")


def read_map(
    raw: Any, group: Any, layout: MapLayout, out: Buffers | None = None, tmp: Buffers | None = None
) -> DecodedMap:
    """The MAP column of row group ``group`` (its metadata) from the open file ``raw``,
    in arrays of ``out`` (the result's ``buffers``) with scratch arrays of ``tmp``."""
    out = Buffers() if out is None else out
    tmp = Buffers() if tmp is None else tmp
    rows = group.num_rows
    kmeta, vmeta = group.column(layout.key.column), group.column(layout.value.column)
    n_levels = vmeta.num_values
    if kmeta.num_values != n_levels:
        raise Unsupported("key and value levels differ")
    offsets = out.get("offsets", rows + 1, np.int64)
    valid = out.get("valid", rows, np.uint8)
    present = tmp.get("present", n_levels, np.uint8)
    values = out.get("values", n_levels, np.float64)
    state = np.zeros(3, dtype=np.int64)
    key, value = layout.key, layout.value
    entry_def = key.max_def
    # the values: rows, entries and their values
    dvals: Any = None
    dtype = _values_dtype(value)
    def_bits = int(value.max_def).bit_length()
    for kind, h, data, v2 in _Chunk(raw, vmeta).pages():
        if kind == _DICTIONARY_PAGE:
            if h[2] not in (_PLAIN, _PLAIN_DICTIONARY) or len(data) < h[1] * dtype.itemsize:
                raise Unsupported("a dictionary page")
            dvals = np.frombuffer(data, dtype=dtype, count=h[1]).astype(np.float64)
            continue
        n = h[1]
        words = tmp.get("words", len(data) // 8 + 2, np.uint64)
        spans = _spans(data, value, v2)
        p = spans[3]
        lo = int(state[1])
        before = int(state[2])
        enc = h[4] if v2 is not None else h[2]
        dictionary_encoded = enc in (_RLE_DICTIONARY, _PLAIN_DICTIONARY)
        if dictionary_encoded and (dvals is None or len(data) <= p or data[p] > 32):
            raise Unsupported("dictionary indices")
        if dictionary_encoded and _all_equal(data, spans[2], spans[3], def_bits, n, value.max_def):
            # every entry holds a value (no NULL or empty map, no NULL value): the rows
            # from the repetition levels' zeros, the values straight from the indices
            if not _dense_rows(data, spans[0], spans[1], n, state, offsets, valid):
                raise Unsupported("levels")
            idx = tmp.get("idx", n, np.int32)
            if _hybrid(data, p + 1, len(data), int(data[p]), idx, n, words) < 0:
                raise Unsupported("dictionary indices")
            if not _gather(idx, n, dvals, values, lo):
                raise Unsupported("a dictionary index out of range")
            continue
        rep, dfn = tmp.get("rep", n, np.int32), tmp.get("dfn", n, np.int32)
        _page_levels(data, n, value, spans, rep, dfn, words)
        if not _levels_to_rows(
            rep, dfn, n, entry_def, value.max_def, entry_def - 1, state, offsets, valid, present
        ):
            raise Unsupported("more rows than the row group")
        hi, count = int(state[1]), int(state[2]) - before
        if not count:  # no value in the page (NULLs, empty maps): none to decode
            values[lo:hi] = np.nan
        elif dictionary_encoded:
            idx = tmp.get("idx", count, np.int32)
            if _hybrid(data, p + 1, len(data), int(data[p]), idx, count, words) < 0:
                raise Unsupported("dictionary indices")
            if not _fill_values(present, lo, hi, idx, dvals, values):
                raise Unsupported("a dictionary index out of range")
        elif enc == _PLAIN:
            if len(data) < p + count * dtype.itemsize:
                raise Unsupported("a short page")
            plain = np.frombuffer(data, dtype=dtype, count=count, offset=p).astype(np.float64)
            _fill_plain(present, lo, hi, plain, values)
        else:
            raise Unsupported(f"value encoding {enc}")
    if state[0] != rows:
        raise Unsupported("rows differ from the row group's")
    entries = int(state[1])
    offsets[rows] = entries

    # the keys: one dictionary index per entry (the rows are the values' own)
    index = out.get("index", entries, np.int32)
    dictionary: Any = None
    got = 0
    def_bits = int(key.max_def).bit_length()
    for kind, h, data, v2 in _Chunk(raw, kmeta).pages():
        if kind == _DICTIONARY_PAGE:
            if h[2] not in (_PLAIN, _PLAIN_DICTIONARY):
                raise Unsupported("a dictionary page")
            dictionary = _plain_strings(data, h[1])
            continue
        n = h[1]
        words = tmp.get("words", len(data) // 8 + 2, np.uint64)
        spans = _spans(data, key, v2)
        count = _count_at_least(
            data, spans[2], spans[3], def_bits, n, entry_def, tmp.get("dfn", n, np.int32), words
        )
        enc = h[4] if v2 is not None else h[2]
        if count < 0 or enc not in (_RLE_DICTIONARY, _PLAIN_DICTIONARY) or dictionary is None:
            raise Unsupported(f"key encoding {enc}")
        if not count:
            continue
        p = spans[3]
        if got + count > entries or len(data) <= p or data[p] > 32:
            raise Unsupported("keys and values differ")
        if _hybrid(data, p + 1, len(data), int(data[p]), index[got:], count, words) < 0:
            raise Unsupported("dictionary indices")
        got += count
    if dictionary is None and not entries:  # no dictionary page: no key at all
        dictionary = _plain_strings(b"", 0)
    if got != entries or dictionary is None:
        raise Unsupported("keys and values differ")
    if entries and index.view(np.uint32).max() >= len(dictionary):  # negatives too
        raise Unsupported("a dictionary index out of range")
    return DecodedMap(offsets, valid, index, dictionary, values[:entries], out)
