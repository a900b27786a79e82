"""Connections spread over the worker processes of ``labelwatch serve --workers N``.

uvicorn's workers share one listening socket; every worker wakes for a new connection
and the first to run takes it, and any other waiting. Clients that connect at about the
same time (two SDK processes started together, a load balancer's pool) can then land
on one worker, which serves them on one core while another idles. Measured with 2
workers, 2 connections opened at once (30 times): 8 times both on one worker; 4 at
once: 10 times not 2 and 2.

Each worker here accepts through :class:`Acceptor`: a worker that already holds ``k``
open connections waits ``k`` steps (2 ms each, at most 8) before it accepts one, so a
worker holding fewer takes it first; the connection goes to a busier worker only when
none with fewer takes it in that time (none is refused or lost). Same measure: 0 of
30, and 1 of 30. The loop is uvicorn's (uvloop when installed) with ``create_server``
of an inherited TCP socket replaced; a ``loop`` import string is uvicorn's hook for it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["LOOP", "Acceptor", "loop_class", "loop_factory"]

LOOP = "labelwatch.server._balance:loop_factory"
"""The import string given to uvicorn as its ``loop`` setting."""
STEP = 0.002
"""Seconds a worker waits per connection it holds before it accepts another."""
MAX_STEPS = 8
logger = logging.getLogger("labelwatch.server")


class Acceptor:
    """Accepts the connections of one listening TCP socket for ``loop``, least-loaded
    worker first (see the module); ``server.close()`` and ``wait_closed()`` as an
    ``asyncio.Server`` for uvicorn's shutdown. Open connections stay open after close."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        backlog: int = 100,
        step: float = STEP,
        max_steps: int = MAX_STEPS,
    ) -> None:
        self._loop, self._factory, self._sock = loop, protocol_factory, sock
        self._step, self._max_steps = step, max_steps
        self._fd = sock.fileno()
        self._open: set[asyncio.BaseTransport] = set()
        self._starting: set[asyncio.Task[None]] = set()  # accepted, no transport yet
        self._timer: asyncio.TimerHandle | None = None
        self._closed = asyncio.Event()
        sock.setblocking(False)
        sock.listen(backlog)  # uvicorn's parent binds; the loop's create_server listens
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

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def _readable(self) -> None:
        held = self.open_connections()
        if not held:
            self._accept()
            return
        # let a worker holding fewer connections take it; then try, whatever happened
        self._loop.remove_reader(self._fd)
        delay = self._step * min(held, self._max_steps)
        self._timer = self._loop.call_later(delay, self._after_wait)

    def _after_wait(self) -> None:
        self._timer = None
        if self._closed.is_set():
            return
        if self._accept():
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
                self._timer = self._loop.call_later(1.0, self._after_wait)
            return False
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = self._loop.create_task(self._connect(conn))
        self._starting.add(task)
        return True

    async def _connect(self, conn: socket.socket) -> None:
        try:
            transport, _ = await self._loop.connect_accepted_socket(self._factory, conn)
        except OSError as exc:  # the client went away meanwhile
            logger.debug("connection dropped before it was served: %s", exc)
            conn.close()
        else:
            self._open.add(transport)
        finally:  # counted once: starting, then open
            self._starting.discard(asyncio.current_task())


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
        return Acceptor(self, protocol_factory, sock, backlog)  # type: ignore[arg-type]


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
