"""The DuckDB engine's pass (``_duckdb_pass``) and its threads: batches read one ahead,
and NumPy's huge pages off while the pass and its tables allocate array after array."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def _prefetched(reader: Any) -> Iterator[Any]:
    """The reader's batches, read one ahead on a thread (DuckDB produces the next batch
    while the compiled loops, which release the GIL, count this one)."""
    import queue
    import threading

    box: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def run() -> None:
        try:
            for batch in reader:
                while not stop.is_set():
                    try:
                        box.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(None)
        except BaseException as exc:  # handed to the consumer
            box.put(exc)

    thread = threading.Thread(target=run, daemon=True, name="labelwatch-duckdb-read")
    thread.start()
    try:
        while True:
            item = box.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def _small_pages() -> Iterator[None]:
    """NumPy's transparent huge pages off while the pass runs (as
    ``NUMPY_MADVISE_HUGEPAGE=0`` would, numpy's own setting restored after): its arrays
    of a few MB, allocated batch after batch, each had 2 MB pages zeroed at their first
    touch. 10M rows, three runs each: 11.65 s -> 11.28 s, 1 CPU-s of page clearing
    less. Also over the tables built after the pass (``DuckDBSource.discover`` and
    ``summarize``): a huge page new to the process cost more than its small pages (a
    first touch measured here at 0.7 GB/s in huge pages, 3 GB/s in small ones), and the
    numeric tables of 10M rows took 0.3-0.45 s in huge pages, 0.2 s in small ones (the
    whole summary 4.8-5.3 -> 4.3-4.7 s)."""
    from numpy._core import multiarray

    toggle = getattr(multiarray, "_set_madvise_hugepage", None)
    if toggle is None:  # another numpy: left as it is
        yield
        return
    before = toggle(False)
    try:
        yield
    finally:
        toggle(before)
