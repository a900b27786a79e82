"""Opening a DuckDB source: files (paths, globs, directories of a Spark or Hive output)
by format, Parquet with row numbers per file, Arrow IPC files and a SQL query's rows
spooled to Parquet, all as the view ``lw_src`` with its row number ``ROW``."""

from __future__ import annotations

import glob
import os
from typing import Any

import duckdb

from labelwatch.errors import InvalidInputError
from labelwatch.sources._duckdb_sql import _lit

ROW = "__lw_row"
_FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}
_CHUNK_ROWS = 50_000


def _format_of(path: str) -> str | None:
    """The format a file's extension names (``.csv.gz``: csv), or None."""
    name = path.lower()
    if name.endswith(".gz"):
        return "csv" if name.endswith(".csv.gz") else None
    return _FORMATS.get(os.path.splitext(name)[1])


def _data_files(directory: str) -> list[str]:
    """The data files under a directory, at any depth (partition folders), skipping the
    hidden and bookkeeping ones (``.crc``, ``_SUCCESS``, ``_delta_log``...)."""
    out = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        for n in names:
            if not n.startswith((".", "_")) and _format_of(n) is not None:
                out.append(os.path.join(root, n))
    return sorted(out)


class _Opening:
    """``DuckDBSource``'s opening: ``lw_src`` over files or a query's rows."""

    _con: duckdb.DuckDBPyConnection
    _tmp: str
    _parquet_files: list[str] | None
    _shared: bool

    def _open_files(self, patterns: list[str], format: str | None) -> None:
        files: list[str] = []
        for pattern in patterns:
            if glob.has_magic(pattern):
                found = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
                if not found:
                    raise InvalidInputError(
                        "source",
                        "a glob matching files",
                        pattern,
                        hint=f"no file matches {pattern}",
                    )
                files += found
            elif os.path.isfile(pattern):
                files.append(pattern)
            elif os.path.isdir(pattern):  # e.g. a Spark or Hive output: its data files
                found = _data_files(pattern)
                if not found:
                    raise InvalidInputError(
                        "source",
                        f"a directory holding data files ({', '.join(sorted(_FORMATS))})",
                        pattern,
                    )
                files += found
            else:
                raise InvalidInputError(
                    "source",
                    "an existing file, directory or glob",
                    pattern,
                    hint=f"no such file: {pattern}",
                )
        files = sorted(dict.fromkeys(os.path.abspath(f) for f in files))
        if format is None:
            kinds = {_format_of(f) for f in files}
            if None in kinds or len(kinds) != 1:
                raise InvalidInputError(
                    "format",
                    f"files of one format among {sorted(set(_FORMATS.values()))}, by "
                    f"extension {sorted(_FORMATS)} (or pass format=...)",
                    files[0],
                )
            format = kinds.pop()
        if format == "parquet":
            self._parquet(files)
        elif format == "csv":
            listed = ", ".join(map(_lit, files))
            self._con.execute(
                f"CREATE VIEW lw_scan AS SELECT * FROM read_csv([{listed}], union_by_name = true)"
            )
            self._numbered("lw_scan")
        elif format == "arrow":
            self._arrow(files)
        else:
            raise InvalidInputError("format", "'parquet', 'csv' or 'arrow'", format)

    def _numbered(self, scan: str) -> None:
        """``lw_src``: the scan with its row number (an order-preserving window)."""
        self._con.execute(
            f"CREATE VIEW lw_src AS SELECT *, row_number() OVER () - 1 AS {ROW} FROM {scan}"
        )

    def _parquet(self, files: list[str]) -> None:
        """``lw_src`` over Parquet files: each file's row numbers offset by the rows of
        the files before it (parallel, unlike a window)."""
        self._parquet_files = files
        parts, offset = [], 0
        for f in files:
            parts.append(
                f"SELECT * EXCLUDE (file_row_number), file_row_number + {offset} AS {ROW} "
                f"FROM read_parquet({_lit(f)}, file_row_number = true)"
            )
            row = self._con.execute(
                f"SELECT sum(num_rows) FROM parquet_file_metadata({_lit(f)})"
            ).fetchone()
            offset += int(row[0] or 0) if row else 0
        self._con.execute("CREATE VIEW lw_src AS " + " UNION ALL BY NAME ".join(parts))

    def _arrow(self, files: list[str]) -> None:
        import pyarrow.dataset as ds
        import pyarrow.ipc as ipc
        import pyarrow.parquet as pq

        streams = []
        for f in files:
            with open(f, "rb") as fh:
                streams.append(fh.read(6) != b"ARROW1")
        if not any(streams):
            self._con.register("lw_dataset", ds.dataset(files, format="arrow"))
            self._shared = False
            self._numbered("lw_dataset")
            return
        out = []
        for k, f in enumerate(files):  # IPC streams: spooled to Parquet (a second pass)
            path = os.path.join(self._tmp, f"arrow-{k:05d}.parquet")
            with open(f, "rb") as fh:
                reader = ipc.open_stream(fh) if streams[k] else ipc.open_file(fh)
                writer = pq.ParquetWriter(path, reader.schema)
                try:
                    if streams[k]:
                        for batch in reader:
                            writer.write_batch(batch)
                    else:
                        for i in range(reader.num_record_batches):
                            writer.write_batch(reader.get_batch(i))
                finally:
                    writer.close()
            out.append(path)
        self._parquet(out)

    def _spool_query(self, url: str, query: str) -> list[str]:
        """The query's rows, streamed in chunks into Parquet files (a new file when a
        chunk's inferred types differ from the file's)."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        import sqlalchemy as sa

        files: list[str] = []
        writer: Any = None
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                result = conn.execution_options(yield_per=_CHUNK_ROWS).execute(sa.text(query))
                names = list(result.keys())
                for part in result.partitions():
                    columns = list(zip(*part, strict=True)) if part else [()] * len(names)
                    chunk = pa.table(
                        {n: pa.array(list(c)) for n, c in zip(names, columns, strict=True)}
                    )
                    if writer is not None and chunk.schema != writer.schema:
                        try:
                            chunk = chunk.cast(writer.schema)
                        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
                            writer.close()
                            writer = None
                    if writer is None:
                        files.append(os.path.join(self._tmp, f"query-{len(files):05d}.parquet"))
                        writer = pq.ParquetWriter(files[-1], chunk.schema)
                    writer.write_table(chunk)
                if writer is None:
                    files.append(os.path.join(self._tmp, "query-00000.parquet"))
                    empty = pa.table({n: pa.array([], pa.string()) for n in names})
                    pq.write_table(empty, files[-1])
        except sa.exc.SQLAlchemyError as exc:
            raise InvalidInputError("query", "a query the database runs", str(exc)) from None
        finally:
            if writer is not None:
                writer.close()
            engine.dispose()
        return files
