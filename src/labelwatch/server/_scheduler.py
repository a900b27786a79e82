"""The server's background scheduler: due monitors, then the webhook outbox, on a timer.

One daemon thread per app (started in its lifespan, stopped on shutdown): every
``interval`` seconds it runs the monitors that are due (each has its own ``every``) and
POSTs the deliveries whose retry time has come. An exception is logged and the next tick
comes as usual: neither the thread nor the server dies of a failing monitor or database.
"""

from __future__ import annotations

import logging
import threading

from labelwatch.monitor import Monitor

__all__ = ["Scheduler"]

logger = logging.getLogger("labelwatch.scheduler")


class Scheduler:
    """Calls ``run_monitors(due_only=True)`` then ``deliver_webhooks()`` every
    ``interval`` seconds (the first tick at start); ``ticks`` counts the finished ones."""

    def __init__(self, monitor: Monitor, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"interval: expected a number of seconds > 0, got {interval!r}")
        self.monitor = monitor
        self.interval = float(interval)
        self.ticks = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="labelwatch-scheduler", daemon=True)

    def start(self) -> Scheduler:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop and wait for the tick in progress (at most ``timeout``)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def tick(self) -> None:
        """One round; errors are logged, never raised."""
        steps = (
            ("running the due monitors", lambda: self.monitor.run_monitors(due_only=True)),
            ("delivering webhooks", self.monitor.deliver_webhooks),
        )
        for what, step in steps:
            if self._stop.is_set():
                return
            try:
                step()
            except Exception:
                self.errors += 1
                logger.exception("scheduler: %s failed", what)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self.ticks += 1
            self._stop.wait(self.interval)
