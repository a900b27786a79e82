"""Connections spread over the workers (``server/_balance.py``): a worker holding fewer
connections takes the next one; none is lost when only a busier worker is there, or
when the one holding fewer does not take it."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from labelwatch.server._balance import BOARD_ENV, Acceptor, Board, loop_class, loop_factory
from tests.server.helpers import wait_for
from tests.server.test_workers import pids, serve_workers


class _Named(asyncio.Protocol):
    """Answers each message with its worker's name; stays open until the client closes."""

    def __init__(self, name: str) -> None:
        self.name = name

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(self.name.encode())  # type: ignore[attr-defined]


class _Worker:
    """A balancing loop in a thread serving a shared listening socket, as one worker
    process does (each has its own descriptor of the socket and its own epoll)."""

    def __init__(self, name: str, listener: socket.socket, board: str | None) -> None:
        self.name = name
        self.loop = loop_class()()
        self.acceptor: Acceptor | None = None
        ready = threading.Event()

        async def start() -> None:
            sock = listener.dup()
            server = Acceptor(
                self.loop, lambda: _Named(name), sock, board=board and Board(board)
            )
            self.acceptor = server
            ready.set()

        self.thread = threading.Thread(
            target=lambda: (self.loop.run_until_complete(start()), self.loop.run_forever()),
            daemon=True,
        )
        self.thread.start()
        assert ready.wait(10)

    def held(self) -> int:
        assert self.acceptor is not None
        return self.loop_call(self.acceptor.open_connections)

    def close(self) -> None:
        assert self.acceptor is not None
        self.loop_call(self.acceptor.close)

    def loop_call(self, fn):  # type: ignore[no-untyped-def]
        done: list[object] = []
        self.loop.call_soon_threadsafe(lambda: done.append(fn()))
        wait_for(lambda: done, timeout=10, what=f"{fn} on {self.name}")
        return done[0]

    def stop(self) -> None:
        if self.acceptor is not None and self.acceptor.is_serving():
            self.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@contextmanager
def workers(*names: str, board: bool = True) -> Iterator[tuple[int, list[_Worker]]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # bound, not listening: as uvicorn's parent leaves it
    path = Board.create() if board else None
    started = [_Worker(name, listener, path) for name in names]
    try:
        yield listener.getsockname()[1], started
    finally:
        for w in started:
            w.stop()
        listener.close()
        if path:
            os.unlink(path)


def ask(port: int) -> tuple[socket.socket, str]:
    """A new connection and the name of the worker answering on it."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"?")
    return s, s.recv(100).decode()


def ask_together(port: int, k: int) -> tuple[list[socket.socket], list[str]]:
    """``k`` connections opened at the same moment (threads behind a barrier)."""
    barrier = threading.Barrier(k)
    out: list[tuple[socket.socket, str] | None] = [None] * k

    def one(i: int) -> None:
        barrier.wait()
        out[i] = ask(port)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    done = [x for x in out if x is not None]
    assert len(done) == k
    return [s for s, _ in done], [n for _, n in done]


def test_connections_opened_together_go_to_different_workers() -> None:
    with workers("a", "b") as (port, ws):
        for _ in range(20):
            socks, names = ask_together(port, 2)
            assert sorted(names) == ["a", "b"]
            assert [w.held() for w in ws] == [1, 1]
            for s in socks:
                s.close()
            wait_for(lambda: [w.held() for w in ws] == [0, 0], what="closed connections")


def test_each_new_connection_goes_to_the_worker_holding_fewer() -> None:
    with workers("a", "b", "c") as (port, ws):
        socks, names = [], []
        for _ in range(6):  # one after another, each kept open
            s, name = ask(port)
            socks.append(s)
            names.append(name)
        assert sorted(names) == ["a", "a", "b", "b", "c", "c"]
        assert [w.held() for w in ws] == [2, 2, 2]
        for s in socks:
            s.close()


def test_a_lone_busy_worker_still_takes_every_connection() -> None:
    """With no worker holding fewer, the busy one takes each connection after its wait
    (at most 8 steps of 2 ms): nothing is refused or left waiting."""
    with workers("a") as (port, ws):
        socks = [ask(port)[0] for _ in range(12)]
        assert ws[0].held() == 12
        for s in socks:
            s.close()
        wait_for(lambda: ws[0].held() == 0, what="closed connections")


def test_a_worker_holding_fewer_that_does_not_take_it_leaves_none_waiting() -> None:
    """A live worker on the board holding fewer connections that never accepts (stuck):
    the busier one takes each connection after waiting for it (``MAX_WAIT``)."""
    with workers("a") as (port, ws):
        assert ws[0].acceptor is not None
        stuck = Board(ws[0].acceptor._board.path)  # type: ignore[union-attr]
        stuck.join()
        stuck.publish(0)
        try:
            first, name = ask(port)  # a holds none: no one holds fewer
            assert name == "a"
            assert ws[0].loop_call(ws[0].acceptor._leave_it)  # a holds 1, the stuck one 0
            second, name = ask(port)  # left to the stuck one, then taken
            assert name == "a" and ws[0].held() == 2
        finally:
            stuck.close()
        first.close()
        second.close()


def test_without_a_board_each_worker_accepts_at_once() -> None:
    with workers("a", "b", board=False) as (port, ws):
        socks = [ask(port)[0] for _ in range(6)]
        assert sum(w.held() for w in ws) == 6
        for s in socks:
            s.close()


def test_board_slots_counts_and_stale_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    path = Board.create()
    boards = [Board(path) for _ in range(3)]
    try:
        for b in boards:
            b.join()
        assert boards[0].fewest_elsewhere() == 0
        assert sorted(boards[0].counts().values()) == [0, 0, 0]
        boards[0].publish(5)
        boards[1].publish(3)
        boards[2].publish(4)
        assert [b.fewest_elsewhere() for b in boards] == [3, 4, 3]
        boards[1].leave()  # its slot is free again
        assert [boards[0].fewest_elsewhere(), boards[2].fewest_elsewhere()] == [4, 5]
        late = Board(path)
        late.join()  # takes the freed slot
        late.publish(1)
        assert boards[0].fewest_elsewhere() == 1
        late.close()
        with monkeypatch.context() as m:
            m.setattr(Board, "STALE", -1.0)  # every heartbeat is now too old
            assert boards[0].fewest_elsewhere() is None
            again = Board(path)
            again.join()  # a dead (or stalled) worker's slot is taken: the first
        again.publish(7)
        assert sorted(boards[2].counts().values()) == [4, 7]  # boards[0] lost its slot
        boards[0].publish(5)  # it claims another
        assert sorted(boards[2].counts().values()) == [4, 5, 7]
        assert boards[0].fewest_elsewhere() == 4 and again.fewest_elsewhere() == 4
        again.close()
    finally:
        for b in boards:
            b.close()
        os.unlink(path)


def test_a_full_board_is_an_error_and_the_worker_accepts_without_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = Board.create()
    boards = [Board(path) for _ in range(Board.SLOTS)]
    try:
        for b in boards:
            b.join()
        extra = Board(path)
        with pytest.raises(OSError, match=f"all {Board.SLOTS} slots .*{path}"):
            extra.join()
        extra.close()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        loop = loop_class()()
        try:
            acceptor = Acceptor(loop, asyncio.Protocol, listener, board=Board(path))
            assert acceptor._board is None and "no connection balancing" in caplog.text
            acceptor.close()
        finally:
            loop.close()
            listener.close()
    finally:
        for b in boards:
            b.close()
        os.unlink(path)


def test_board_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(BOARD_ENV, raising=False)
    assert Board.from_env() is None
    monkeypatch.setenv(BOARD_ENV, str(tmp_path / "missing"))
    assert Board.from_env() is None
    assert f"{BOARD_ENV}={tmp_path / 'missing'}: no connection balancing" in caplog.text
    path = Board.create(str(tmp_path))
    monkeypatch.setenv(BOARD_ENV, path)
    board = Board.from_env()
    assert board is not None and board.path == path
    board.close()


def test_a_closed_acceptor_takes_no_more_connections() -> None:
    with workers("a", "b") as (port, ws):
        ws[0].close()
        assert ws[0].acceptor is not None and not ws[0].acceptor.is_serving()
        socks, names = ask_together(port, 3)
        assert names == ["b"] * 3
        for s in socks:
            s.close()


def test_other_servers_are_the_loops_own() -> None:
    """Only an inherited TCP socket is balanced; host and port, Unix sockets, TLS: the
    loop's own ``create_server``."""
    loop = loop_factory()
    assert isinstance(loop, loop_class())
    assert loop_factory(use_subprocess=False) is loop_class()

    async def main() -> None:
        server = await loop.create_server(asyncio.Protocol, host="127.0.0.1", port=0)
        assert not isinstance(server, Acceptor)
        server.close()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


# ------------------------------------------------------------- labelwatch serve
def test_serve_workers_share_connections_opened_together(tmp_path: Path) -> None:
    """``labelwatch serve --workers 2``: two clients connecting at the same moment are
    served by the two workers, round after round (the access log names the worker
    process and the client's port of each request). The workers' board is removed when
    the server stops."""
    boards_before = set(Path("/dev/shm").glob("labelwatch-balance-*"))
    server = serve_workers(f"sqlite:///{tmp_path / 'm.db'}", 2)
    try:
        (path,) = set(Path("/dev/shm").glob("labelwatch-balance-*")) - boards_before
        board = Board(str(path))  # read only: the workers' counts
        # a worker logs its app's startup just before it listens: wait until both answer
        wait_for(
            lambda: (
                httpx.get(server.url + "/healthz", timeout=10).status_code == 200
                and len(pids(server.output, '"GET /healthz')) == 2
            ),
            what="both workers answering",
        )
        for round_ in range(10):
            # each worker has seen its connections closed (the last /healthz too)
            wait_for(lambda: sorted(board.counts().values()) == [0, 0], what="counts 0")
            socks, _ = ask_together_http(server.port)
            ports = {s.getsockname()[1] for s in socks}

            def served_by(ports: set[int] = ports) -> dict[int, int]:
                found = {}
                for line in list(server.output):
                    m = re.search(r"\[(\d+)\] 127\.0\.0\.1:(\d+) - \"GET /healthz", line)
                    if m and int(m.group(2)) in ports:
                        found[int(m.group(2))] = int(m.group(1))
                return found

            found = wait_for(lambda: len(served_by()) == 2 and served_by(), what="access log")
            assert len(set(found.values())) == 2, f"round {round_}: one worker took both"
            assert sorted(board.counts().values()) == [1, 1]
            for s in socks:
                s.close()
        board.close()
    finally:
        server.stop()
    assert "Traceback" not in "".join(server.output)
    assert set(Path("/dev/shm").glob("labelwatch-balance-*")) <= boards_before


def ask_together_http(port: int) -> tuple[list[socket.socket], list[bytes]]:
    barrier = threading.Barrier(2)
    out: list[tuple[socket.socket, bytes] | None] = [None, None]

    def one(i: int) -> None:
        barrier.wait()
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        out[i] = (s, s.recv(1000))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    done = [x for x in out if x is not None]
    assert len(done) == 2 and all(b" 200 " in r for _, r in done)
    return [s for s, _ in done], [r for _, r in done]


@pytest.fixture(autouse=True)
def _no_thread_leak() -> Iterator[None]:
    before = threading.active_count()
    yield
    wait_for(lambda: threading.active_count() <= before, timeout=10, what="threads ended")
