"""The compiled Parquet MAP reader (``_parquet_maps``) against pyarrow's reader of the
same files: the same offsets, valid rows, key dictionaries and indices and values, over
the writer's options (codecs, data page versions, page and row group sizes,
dictionary or plain values, float or double values); ``Unsupported`` (pyarrow reads the
row group) for what it does not decode; and the pass' use of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelwatch.sources._parquet_maps import (
    Buffers,
    DecodedMap,
    Unsupported,
    _hybrid,
    map_layout,
    read_map,
)
from labelwatch.sources._pass_kernels import HAVE_NUMBA

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")

KEY = "m.key_value.key"


def _maps(rng: np.random.Generator, n: int, n_keys: int, *, nulls: bool = True) -> list[Any]:
    """``n`` rows of maps: NULL maps, empty maps, NULL values, keys from a pool of
    ``n_keys`` (some not ASCII), values from few or many distinct doubles."""
    pool = [f"k{i}" if i % 7 else f"é{i}✓" for i in range(n_keys)]
    few = rng.random(5)
    rows: list[Any] = []
    for _ in range(n):
        u = rng.random()
        if nulls and u < 0.1:
            rows.append(None)
        elif u < 0.15:
            rows.append([])
        else:
            size = int(rng.integers(1, min(n_keys, 25) + 1))
            keys = rng.choice(len(pool), size=size, replace=False)
            entry = []
            for k in keys:
                v = rng.random()
                if v < 0.05 and nulls:
                    entry.append((pool[k], None))
                else:
                    entry.append((pool[k], float(few[int(v * 5)] if v < 0.5 else rng.random())))
            rows.append(entry)
    return rows


def _write(path: Path, rows: list[Any], value_type: Any = None, **kw: Any) -> None:
    typ = pa.map_(pa.string(), value_type or pa.float64())
    pq.write_table(
        pa.table({"id": pa.array(range(len(rows))), "m": pa.array(rows, typ)}), path, **kw
    )


def _pyarrow(path: Path, group: int) -> Any:
    with pq.ParquetFile(path, read_dictionary=[KEY]) as pf:
        chunks = pf.read_row_group(group, columns=["m"]).column("m").chunks
    return chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)


def _same(got: DecodedMap, want: Any) -> None:
    """``got`` holds what pyarrow read: offsets, validity, keys, values (NULL: NaN)."""
    assert np.array_equal(got.offsets, want.offsets.to_numpy())
    assert np.array_equal(got.valid, want.is_valid().to_numpy(zero_copy_only=False))
    assert got.dictionary.equals(want.keys.dictionary)
    assert np.array_equal(got.index, want.keys.indices.to_numpy())
    items = want.items.cast(pa.float64()).to_numpy(zero_copy_only=False)
    assert got.values.dtype == np.float64
    assert np.array_equal(got.values, items, equal_nan=True)
    # -0.0 and the exact bits of every value, not only equality
    live = ~np.isnan(items)
    assert np.array_equal(got.values[live].view(np.int64), items[live].view(np.int64))


def _read_all(path: Path) -> list[DecodedMap]:
    with pq.ParquetFile(path) as pf, open(path, "rb") as raw:
        layout = map_layout(pf.metadata, KEY)
        assert layout is not None
        return [read_map(raw, pf.metadata.row_group(g), layout) for g in range(pf.num_row_groups)]


def _check_file(path: Path) -> int:
    groups = _read_all(path)
    for g, got in enumerate(groups):
        _same(got, _pyarrow(path, g))
    return len(groups)


WRITER_OPTIONS = [
    {},
    {"compression": "none"},
    {"compression": "gzip"},
    {"compression": "zstd"},
    {"compression": "brotli"},
    {"compression": "lz4"},  # LZ4_RAW in Parquet
    {"data_page_version": "2.0"},
    {"data_page_version": "2.0", "compression": "zstd"},
    {"data_page_version": "2.0", "compression": "none"},
    {"data_page_size": 64, "write_batch_size": 7},  # many small pages
    {"use_dictionary": [KEY]},  # the values PLAIN
    {"use_dictionary": [KEY], "data_page_version": "2.0", "data_page_size": 100},
    {"row_group_size": 17},
]


@pytest.mark.parametrize("options", WRITER_OPTIONS, ids=lambda o: str(o) or "defaults")
def test_the_same_maps_as_pyarrow_whatever_the_writers_options(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    rows = _maps(np.random.default_rng(1), 500, 40)
    path = tmp_path / "m.parquet"
    _write(path, rows, **options)
    groups = _check_file(path)
    assert groups == (30 if options.get("row_group_size") == 17 else 1)


@pytest.mark.parametrize("n_keys", [1, 2, 3, 300, 70_000])
def test_every_key_bit_width(tmp_path: Path, n_keys: int) -> None:
    """Dictionary indices of width 0 (one key), 1, 2, 9 and 17 bits (across words)."""
    rng = np.random.default_rng(n_keys)
    pool = [f"label-{i}" for i in range(n_keys)]
    rows = [
        [(pool[int(k)], float(rng.random())) for k in rng.choice(n_keys, min(n_keys, 3), False)]
        for _ in range(3000)
    ]
    path = tmp_path / "m.parquet"
    _write(path, rows, data_page_size=4096)
    _check_file(path)


def test_float_values_and_required_maps_and_values(tmp_path: Path) -> None:
    """float32 values (widened exactly), a map column that cannot be NULL, values that
    cannot be NULL: other definition levels."""
    rows = _maps(np.random.default_rng(2), 400, 12, nulls=False)
    path = tmp_path / "f.parquet"
    _write(path, rows, pa.float32())
    _check_file(path)
    typ = pa.map_(pa.string(), pa.field("value", pa.float64(), nullable=False))
    schema = pa.schema([pa.field("m", typ, nullable=False)])
    req = tmp_path / "r.parquet"
    pq.write_table(pa.table({"m": pa.array(rows, typ)}, schema=schema), req, row_group_size=50)
    with pq.ParquetFile(req) as pf:
        layout = map_layout(pf.metadata, KEY)
        assert layout is not None
        assert (layout.key.max_def, layout.value.max_def) == (1, 1)
    _check_file(req)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 300),
    n_keys=st.integers(1, 60),
    page=st.sampled_from([32, 256, 1 << 20]),
    version=st.sampled_from(["1.0", "2.0"]),
    plain=st.booleans(),
)
def test_random_maps_read_as_pyarrow_reads_them(
    tmp_path: Path, seed: int, n: int, n_keys: int, page: int, version: str, plain: bool
) -> None:
    rows = _maps(np.random.default_rng(seed), n, n_keys)
    path = tmp_path / f"h{seed}.parquet"
    options: dict[str, Any] = {"data_page_size": page, "data_page_version": version}
    if plain:
        options["use_dictionary"] = [KEY]
    _write(path, rows, row_group_size=max(1, n // 3), **options)
    _check_file(path)


def test_what_it_does_not_decode_is_unsupported(tmp_path: Path) -> None:
    """Keys not dictionary-encoded, a dictionary given up mid-chunk (too many distinct
    keys), integer values, and a map in a list: ``Unsupported`` or no layout, so that
    pyarrow reads them."""
    rows = _maps(np.random.default_rng(3), 200, 30)
    plain = tmp_path / "plain.parquet"
    _write(plain, rows, use_dictionary=False)
    with pytest.raises(Unsupported):
        _read_all(plain)
    many = tmp_path / "many.parquet"
    _write(many, [[(f"key-{i}-{j}", 0.5) for j in range(3)] for i in range(3000)],
           dictionary_pagesize_limit=1024)  # fmt: skip
    with pytest.raises(Unsupported):
        _read_all(many)
    ints = tmp_path / "ints.parquet"
    _write(ints, [[("a", 1)], None], pa.int64())
    with pq.ParquetFile(ints) as pf:
        assert map_layout(pf.metadata, KEY) is None
    nested = tmp_path / "nested.parquet"
    typ = pa.list_(pa.map_(pa.string(), pa.float64()))
    pq.write_table(pa.table({"m": pa.array([[[("a", 0.5)]]], typ)}), nested)
    with pq.ParquetFile(nested) as pf:
        key = pf.metadata.schema.column(0).path
        assert map_layout(pf.metadata, key) is None


@pytest.mark.parametrize(
    "options",
    [
        {"compression": "none"},
        {"compression": "none", "data_page_version": "2.0", "data_page_size": 512},
        {"compression": "none", "use_dictionary": [KEY], "data_page_size": 512},
        {"compression": "snappy"},
    ],
)
def test_damaged_chunks_are_unsupported_never_a_crash(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    """Bytes overwritten inside the map's column chunks (headers, levels, indices,
    dictionaries, values): ``Unsupported``, or arrays that keep to their bounds (a
    damaged value or index can still be a valid one: pyarrow would read it too)."""
    rows = _maps(np.random.default_rng(4), 300, 20)
    path = tmp_path / "m.parquet"
    _write(path, rows, **options)
    data = path.read_bytes()
    with pq.ParquetFile(path) as pf:
        meta = pf.metadata.row_group(0)
        layout = map_layout(pf.metadata, KEY)
        assert layout is not None
    rng = np.random.default_rng(5)
    unsupported = 0
    for leaf in (layout.key, layout.value):
        chunk = meta.column(leaf.column)
        lo = chunk.dictionary_page_offset or chunk.data_page_offset
        hi = lo + chunk.total_compressed_size
        for spot in rng.integers(lo, hi, 40):
            damaged = bytearray(data)
            width = int(rng.integers(1, 9))
            damaged[spot : spot + width] = rng.integers(0, 256, width, dtype=np.uint8).tobytes()
            (tmp_path / "d.parquet").write_bytes(bytes(damaged))
            with open(tmp_path / "d.parquet", "rb") as raw:
                try:
                    got = read_map(raw, meta, layout)
                except Unsupported:
                    unsupported += 1
                    continue
            assert len(got.offsets) == meta.num_rows + 1
            assert got.offsets[0] == 0
            assert (np.diff(got.offsets) >= 0).all()
            assert got.offsets[-1] == len(got.index) == len(got.values)
            assert len(got.index) == 0 or 0 <= got.index.min() <= got.index.max() < len(
                got.dictionary
            )
    assert unsupported  # some damage is found


def test_a_run_header_past_42_bits_ends_the_runs() -> None:
    """A varint that never ends or grows past any page's size: -1, no overflow."""
    out = np.zeros(8, dtype=np.int32)
    words = np.zeros(8, dtype=np.uint64)
    endless = np.full(12, 0xFF, dtype=np.uint8)
    assert _hybrid(endless, 0, 12, 3, out, 8, words) == -1
    huge = np.array([0x81] * 6 + [0x01, 0, 0, 0], dtype=np.uint8)  # packed, 2**41 groups
    assert _hybrid(huge, 0, 10, 3, out, 8, words) == -1


def _oracle_hybrid(values: list[int], bw: int, runs: list[tuple[str, int]]) -> bytes:
    """Parquet's RLE / bit-packed hybrid written the slow obvious way: ``runs`` of
    ("rle" | "packed", length) over ``values``."""
    out = bytearray()
    i = 0
    for kind, length in runs:
        chunk = values[i : i + length]
        i += length
        if kind == "rle":
            out += _uvarint(len(chunk) << 1)
            out += chunk[0].to_bytes((bw + 7) // 8, "little")
        else:
            groups = (len(chunk) + 7) // 8
            out += _uvarint((groups << 1) | 1)
            acc = 0
            for k, v in enumerate(chunk + [0] * (groups * 8 - len(chunk))):
                acc |= v << (k * bw)
            out += acc.to_bytes(groups * bw, "little")
    return bytes(out)


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append((n & 0x7F) | 0x80)
        n >>= 7


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 32).flatmap(lambda bw: st.tuples(st.just(bw), st.data())))
def test_hybrid_decoding_against_an_obvious_encoder(args: Any) -> None:
    bw, data = args
    top = (1 << bw) - 1
    runs = data.draw(
        st.lists(st.tuples(st.sampled_from(["rle", "packed"]), st.integers(1, 200)), max_size=8)
    )
    # a bit-packed run holds a multiple of 8 values, but for the last (padded)
    runs = [(k, -(-n // 8) * 8 if k == "packed" and j < len(runs) - 1 else n)
            for j, (k, n) in enumerate(runs)]  # fmt: skip
    values: list[int] = []
    for kind, length in runs:
        if kind == "rle":
            values += [data.draw(st.integers(0, top))] * length
        else:
            values += data.draw(st.lists(st.integers(0, top), min_size=length, max_size=length))
    raw = np.frombuffer(_oracle_hybrid(values, bw, runs) + b"\x00" * 3, dtype=np.uint8)
    end = len(raw) - 3
    out = np.zeros(len(values) + 1, dtype=np.int32 if bw < 32 else np.int64)
    words = np.empty(len(raw) // 8 + 2, dtype=np.uint64)
    p = _hybrid(raw, 0, end, bw, out, len(values), words)
    assert out[: len(values)].tolist() == values
    assert p == end
    if values:  # asked for one more value than there is: the runs end first
        assert _hybrid(raw, 0, end, bw, out, len(values) + 1, words) == -1 or (
            runs[-1][0] == "packed" and runs[-1][1] % 8
        )


def test_buffers_are_filled_again_only_once_released(tmp_path: Path) -> None:
    """The pass' reading: row groups decoded into reused arrays; a group not given back
    keeps its values while the next ones are read."""
    import duckdb

    import labelwatch.sources._duckdb_pass as engine
    from labelwatch.sources._parquet_read import parquet_batches, release

    rows = _maps(np.random.default_rng(6), 400, 10)
    path = tmp_path / "m.parquet"
    _write(path, rows, row_group_size=50)
    con = duckdb.connect()
    reader = con.execute(
        f"SELECT file_row_number, hash(id) FROM read_parquet('{path}', file_row_number = true)"
    ).to_arrow_reader(64)
    seen: list[Any] = []
    kept = None
    for g, (_, maps) in enumerate(
        parquet_batches(reader, [str(path)], ["m"], [[KEY]], engine._head)
    ):
        (m,) = maps
        assert isinstance(m, DecodedMap)
        _same(m, _pyarrow(path, g))
        seen.append(m.values.__array_interface__["data"][0])
        if g == 1:
            kept = (m, _pyarrow(path, 1))
        else:
            release(m)
    assert len(seen) == 8
    assert len(set(seen)) == 2  # one set of arrays reused, one kept
    assert kept is not None
    _same(*kept)  # not overwritten by the six groups read after it
    assert isinstance(Buffers().get("x", 3, np.int32), np.ndarray)


@pytest.mark.parametrize("decoder", ["", "pyarrow"])
def test_the_pass_reads_through_it_and_through_pyarrow_where_it_cannot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decoder: str
) -> None:
    """Summaries equal to the SQL engine's with the maps decoded here, with one file's
    row groups (keys not dictionary-encoded) read by pyarrow, and with pyarrow asked
    for everywhere (``LABELWATCH_PARQUET_DECODER=pyarrow``)."""
    import labelwatch.sources._duckdb_pass as engine
    import labelwatch.sources._parquet_read as reading
    from tests.sources.test_parquet_read import _compare, _files, _mixed_rows

    monkeypatch.setenv("LABELWATCH_PARQUET_DECODER", decoder)
    monkeypatch.setattr(engine, "_CHUNK_ROWS", 50)
    decoded: list[bool] = []
    real = reading._decoded

    def spy(*args: Any) -> Any:
        out = real(*args)
        decoded.append(out is not None)
        return out

    monkeypatch.setattr(reading, "_decoded", spy)
    paths = _files(tmp_path, _mixed_rows(300), 3)
    table = pq.read_table(paths[1])
    pq.write_table(table, paths[1], row_group_size=23, use_dictionary=False)
    _compare(paths)
    groups = 2 * sum(pq.ParquetFile(p).num_row_groups for p in paths)  # discover, summarize
    assert len(decoded) == groups
    if decoder == "pyarrow":
        assert not any(decoded)
    else:
        file1 = 2 * pq.ParquetFile(paths[1]).num_row_groups
        assert decoded.count(False) == file1
