"""``labelwatch serve`` and ``labelwatch tokens create``: help, first admin token, scopes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.server.helpers import BIN, ServeProcess, create_token


def test_help_of_each_command() -> None:
    for args in (["serve"], ["tokens"], ["tokens", "create"]):
        out = subprocess.run([str(BIN), *args, "--help"], capture_output=True, text=True,
                             check=True).stdout
        assert "Usage" in out
    serve_help = subprocess.run([str(BIN), "serve", "--help"], capture_output=True, text=True,
                                check=True).stdout
    for option in ("--db", "--host", "--port"):
        assert option in serve_help


def test_first_serve_prints_an_admin_token_once_and_cli_tokens_have_scopes(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    server = ServeProcess(url).start()
    try:
        assert server.admin_token
        ingest = create_token(url, "ingest")
        h = {"Authorization": f"Bearer {ingest}"}
        assert httpx.get(server.url + "/api/v1/models", headers=h).status_code == 200
        r = httpx.post(server.url + "/api/v1/models", json={"model_id": "x"}, headers=h)
        assert r.status_code == 403
    finally:
        server.stop()
    again = ServeProcess(url).start()  # the database has tokens now: none printed
    try:
        assert again.admin_token is None
    finally:
        again.stop()


def test_a_bad_database_url_is_a_clean_error() -> None:
    r = subprocess.run([str(BIN), "tokens", "create", "--db", "nonsense"], capture_output=True,
                       text=True)
    assert r.returncode == 2
    assert "url" in r.stderr and "Traceback" not in r.stderr
