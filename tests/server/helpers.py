"""Shared by the server and client tests: databases on both backends, the app served
by uvicorn in a thread, and ``labelwatch serve`` as a real subprocess."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from labelwatch.monitor import Monitor
from labelwatch.server import create_app

BIN = Path(sys.executable).parent / "labelwatch"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ThreadServer:
    """``create_app(monitor)`` served by uvicorn on a free port in a daemon thread."""

    def __init__(self, monitor: Monitor, **app_options: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(monitor, **app_options)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port,
            log_level="warning", access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class ServeProcess:
    """``labelwatch serve --db URL --port P`` as a subprocess; the admin token it prints
    on an empty database is in ``admin_token``."""

    def __init__(self, db_url: str, port: int | None = None, args: Sequence[str] = ()) -> None:
        self.db_url = db_url
        self.args = list(args)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token: str | None = None
        self.output: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> ServeProcess:
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--db", self.db_url, "--port", str(self.port), *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("labelwatch serve exited:\n" + "".join(self.output))
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("labelwatch serve did not answer /healthz:\n" + "".join(self.output))

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.output.append(line)
            found = re.search(r"admin token: (\S+)", line)
            if found:
                self.admin_token = found.group(1)

    def kill(self) -> None:
        """``kill -9``: no shutdown, no flush."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def create_token(db_url: str, scope: str) -> str:
    """``labelwatch tokens create`` as a subprocess: the token is its last line."""
    out = subprocess.run(
        [str(BIN), "tokens", "create", "--db", db_url, "--scope", scope],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout
    return out.strip().splitlines()[-1]


def wait_for(check: Any, timeout: float = 60.0, what: str = "a condition") -> Any:
    """Poll ``check()`` until it returns something truthy (returned), or fail after
    ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
