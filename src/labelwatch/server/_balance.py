"""Connections spread over the worker processes of ``labelwatch serve --workers N``.

uvicorn's workers share one listening socket; every worker wakes for a new connection
and the first to run takes it, and any other waiting. Clients that connect at about the
same time (two SDK processes started together, a load balancer's pool) can then land
on one worker, which serves them on one core while another idles. Measured with 2
workers, 2 connections opened at once (30 times): 8 times both on one worker; 4 at
once: 10 times not 2 and 2.

The workers publish how many connections each holds on a :class:`Board`, a small
file shared through ``mmap`` that ``labelwatch serve`` creates before it starts them
(its path in ``LABELWATCH_BALANCE``). A worker accepts through :class:`Acceptor`: when
a live worker holds fewer connections than it does, it leaves the connection to that
one, looking again every millisecond, and takes it itself only if it is still waiting
after 50 ms (none is refused or lost); otherwise it accepts at once. Knowing the
others' counts, a worker waits only when one with fewer exists, and long enough for a
loaded machine to schedule it. The loop is uvicorn's (uvloop when installed) with
``create_server`` of an inherited TCP socket replaced; a ``loop`` import string is
uvicorn's hook for it. Without a board a worker accepts as the loop's own server does.

Same measure, 30 rounds 0.3 s apart, with two busy-looping processes beside: 2 at once
0 of 30 uneven, 4 at once 1 of 30 (with the earlier fixed wait of 2 ms per held
connection: 0 and 3). Under load the fixed wait was too short: with those two busy
loops the worker holding none was often not run within 2 ms, and ``test_balance.py``
failed 3 runs of 3; with the board it passed 10 of 10 beside four.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import mmap
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Callable
from typing import Any

__all__ = ["BOARD_ENV", "LOOP", "Acceptor", "Board", "loop_class", "loop_factory"]

LOOP = "labelwatch.server._balance:loop_factory"
"""The import string given to uvicorn as its ``loop`` setting."""
BOARD_ENV = "LABELWATCH_BALANCE"
"""The environment variable with the path of the workers' :class:`Board`."""
STEP = 0.001
"""Seconds between two looks at the board while a worker leaves a connection waiting."""
MAX_WAIT = 0.05
"""Seconds after which a worker takes a waiting connection whoever holds fewer."""
logger = logging.getLogger("labelwatch.server")


class Board:
    """The open-connection counts of the workers sharing a socket: a file of
    :attr:`SLOTS` slots (owner token, count, heartbeat on the system's monotonic clock),
    mapped by each worker. A worker claims a free slot (or one whose heartbeat is older
    than :attr:`STALE` seconds: its worker died) under an ``flock`` of the file, then
    writes only its own slot; reads take no lock (a count read mid-update only misplaces
    one connection)."""

    SLOTS = 64
    STALE = 5.0
    _FIELDS = 3
    SIZE = SLOTS * _FIELDS * 8

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR)
        try:
            self._map = mmap.mmap(self._fd, self.SIZE)
        except Exception:
            os.close(self._fd)
            raise
        self._cells = memoryview(self._map).cast("d")
        self._base: int | None = None
        self._token = float(secrets.randbits(52) | 1)

    @classmethod
    def create(cls, directory: str | None = None) -> str:
        """A new empty board file (in ``/dev/shm`` when there is one); its path."""
        if directory is None and os.path.isdir("/dev/shm"):
            directory = "/dev/shm"
        fd, path = tempfile.mkstemp(prefix="labelwatch-balance-", dir=directory)
        try:
            os.ftruncate(fd, cls.SIZE)
        finally:
            os.close(fd)
        return path

    @classmethod
    def from_env(cls) -> Board | None:
        """The board named by ``LABELWATCH_BALANCE``, or None (unset, or unreadable:
        logged, and the worker accepts without it)."""
        path = os.environ.get(BOARD_ENV)
        if not path:
            return None
        try:
            return cls(path)
        except (OSError, ValueError) as exc:
            logger.warning("%s=%s: no connection balancing (%s)", BOARD_ENV, path, exc)
            return None

    def join(self) -> None:
        """Claim a slot, holding no connection."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            now = time.monotonic()
            for slot in range(self.SLOTS):
                base = slot * self._FIELDS
                token, beat = self._cells[base], self._cells[base + 2]
                if token == 0.0 or now - beat > self.STALE:
                    self._cells[base] = self._token
                    self._cells[base + 1] = 0.0
                    self._cells[base + 2] = now
                    self._base = base
                    return
            raise OSError(f"all {self.SLOTS} slots of the balancing board {self.path} taken")
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def publish(self, held: int) -> None:
        """This worker's count, with a new heartbeat. A worker whose slot was taken (its
        loop stalled past :attr:`STALE`, and a new worker took the slot) claims another."""
        base = self._base
        if base is None:
            return
        if self._cells[base] != self._token:
            self.join()
            base = self._base
            assert base is not None
        self._cells[base + 1] = float(held)
        self._cells[base + 2] = time.monotonic()

    def counts(self) -> dict[int, int]:
        """The count of each live worker, by slot."""
        now, cells, out = time.monotonic(), self._cells, {}
        for slot in range(self.SLOTS):
            base = slot * self._FIELDS
            if cells[base] != 0.0 and now - cells[base + 2] <= self.STALE:
                out[slot] = int(cells[base + 1])
        return out

    def fewest_elsewhere(self) -> int | None:
        """The smallest count of the other live workers (None: there are none)."""
        own = None if self._base is None else self._base // self._FIELDS
        return min((n for slot, n in self.counts().items() if slot != own), default=None)

    def leave(self) -> None:
        """Free this worker's slot."""
        base, self._base = self._base, None
        if base is not None and self._cells[base] == self._token:
            self._cells[base] = 0.0

    def close(self) -> None:
        self.leave()
        self._cells.release()
        self._map.close()
        os.close(self._fd)


class Acceptor:
    """Accepts the connections of one listening TCP socket for ``loop``, leaving each to
    a worker holding fewer when the :class:`Board` shows one (see the module);
    ``close()`` and ``wait_closed()`` as an ``asyncio.Server`` for uvicorn's shutdown.
    Open connections stay open after close. The Acceptor owns ``board`` (joins, closes)."""

    HEARTBEAT = 1.0

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        backlog: int = 100,
        board: Board | None = None,
        step: float = STEP,
        max_wait: float = MAX_WAIT,
    ) -> None:
        self._loop, self._factory, self._sock = loop, protocol_factory, sock
        self._board, self._step, self._max_wait = board, step, max_wait
        self._fd = sock.fileno()
        self._open: set[asyncio.BaseTransport] = set()
        self._starting: set[asyncio.Task[None]] = set()  # accepted, no transport yet
        self._timer: asyncio.TimerHandle | None = None  # waiting: the reader is off
        self._waiting_since = 0.0
        self._closed = asyncio.Event()
        sock.setblocking(False)
        sock.listen(backlog)  # uvicorn's parent binds; the loop's create_server listens
        self._beat: asyncio.TimerHandle | None = None
        if board is not None:
            try:
                board.join()
            except OSError as exc:
                logger.warning("no connection balancing: %s", exc)
                board.close()
                self._board = None
            else:
                self._heartbeat()
        loop.add_reader(self._fd, self._readable)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self._sock,)

    def open_connections(self) -> int:
        """Connections accepted by this worker and not closed yet."""
        self._open = {t for t in self._open if not t.is_closing()}
        return len(self._open) + len(self._starting)

    def is_serving(self) -> bool:
        return not self._closed.is_set()

    def close(self) -> None:
        """Stop accepting (the socket stays open: uvicorn's parent owns it)."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        else:
            self._loop.remove_reader(self._fd)
        if self._beat is not None:
            self._beat.cancel()
        if self._board is not None:
            self._board.close()
            self._board = None

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def _heartbeat(self) -> None:
        self._publish()
        self._beat = self._loop.call_later(self.HEARTBEAT, self._heartbeat)

    def _publish(self) -> None:
        if self._board is not None:
            self._board.publish(self.open_connections())

    def _leave_it(self) -> bool:
        """Whether a live worker holds fewer connections than this one."""
        if self._board is None:
            return False
        fewest = self._board.fewest_elsewhere()
        return fewest is not None and fewest < self.open_connections()

    def _readable(self) -> None:
        if not self._leave_it():
            self._accept()
            return
        self._loop.remove_reader(self._fd)
        self._waiting_since = self._loop.time()
        self._timer = self._loop.call_later(self._step, self._look_again)

    def _look_again(self) -> None:
        self._timer = None
        if self._closed.is_set():
            return
        waited = self._loop.time() - self._waiting_since
        if waited < self._max_wait and self._leave_it():
            self._timer = self._loop.call_later(self._step, self._look_again)
            return
        if self._accept():  # nothing waiting any more is fine: another worker took it
            self._loop.add_reader(self._fd, self._readable)

    def _accept(self) -> bool:
        """Accept one connection if one waits; False: accepting failed, and the reader
        is off for a second (as asyncio does, e.g. out of file descriptors: the client
        waits in the backlog or another worker takes it)."""
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return True  # another worker took it, or the client left
        except OSError as exc:
            logger.warning("accept() failed, retrying in 1 s: %s", exc)
            if self._timer is None:
                self._loop.remove_reader(self._fd)
                self._waiting_since = self._loop.time() - self._max_wait  # then: accept
                self._timer = self._loop.call_later(1.0, self._look_again)
            return False
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = self._loop.create_task(self._connect(conn))
        self._starting.add(task)
        self._publish()
        return True

    def _protocol(self) -> asyncio.BaseProtocol:
        """The server's protocol, publishing this worker's count when it loses its
        connection."""
        protocol = self._factory()
        lost = protocol.connection_lost

        def connection_lost(exc: Exception | None) -> None:
            try:
                lost(exc)
            finally:
                self._publish()

        protocol.connection_lost = connection_lost  # type: ignore[method-assign]
        return protocol

    async def _connect(self, conn: socket.socket) -> None:
        try:
            transport, _ = await self._loop.connect_accepted_socket(self._protocol, conn)
        except OSError as exc:  # the client went away meanwhile
            logger.debug("connection dropped before it was served: %s", exc)
            conn.close()
        else:
            self._open.add(transport)
        finally:  # counted once: starting, then open
            self._starting.discard(asyncio.current_task())
            self._publish()


class _Balanced:
    """Mixin of an event loop class: ``create_server(sock=<TCP socket>)`` (how uvicorn's
    workers serve the socket their parent bound) returns an :class:`Acceptor`."""

    async def create_server(  # type: ignore[no-untyped-def]
        self, protocol_factory, host=None, port=None, *, sock=None, ssl=None, **kwargs
    ):
        if (
            sock is None
            or ssl is not None
            or host is not None
            or port is not None
            or sock.family not in (socket.AF_INET, socket.AF_INET6)
        ):
            return await super().create_server(  # type: ignore[misc]
                protocol_factory, host, port, sock=sock, ssl=ssl, **kwargs
            )
        backlog = kwargs.get("backlog", 100)
        board = Board.from_env()
        return Acceptor(self, protocol_factory, sock, backlog, board)  # type: ignore[arg-type]


def loop_class() -> type[asyncio.AbstractEventLoop]:
    """uvloop's loop class (else asyncio's) with :class:`_Balanced`'s ``create_server``."""
    global _LOOP_CLASS
    if _LOOP_CLASS is None:
        base: Any
        try:
            import uvloop

            base = uvloop.Loop
        except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
            base = asyncio.SelectorEventLoop
        _LOOP_CLASS = type(f"Balanced{base.__name__}", (_Balanced, base), {})
    return _LOOP_CLASS


_LOOP_CLASS: type[asyncio.AbstractEventLoop] | None = None


def loop_factory(use_subprocess: bool | None = None) -> Any:
    """uvicorn's loop hook: a new balancing loop (uvicorn calls a custom ``loop`` with no
    argument for a loop); called with ``use_subprocess`` as uvicorn's built-in factories
    are, the loop class itself."""
    if use_subprocess is None:
        return loop_class()()
    return loop_class()
