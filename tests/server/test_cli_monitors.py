"""``labelwatch monitors ...`` and ``labelwatch incidents ...``, embedded (``--db``) and
against a server (``--host --token``): tables for people, ``--json`` equal to the
monitor's answers, bad input a clean error (code 2)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labelwatch.cli import app
from labelwatch.monitor import Monitor
from labelwatch.server._errors import jsonable
from tests.server.helpers import BIN, ThreadServer
from tests.server.test_alert_api import MONITORS_YAML, T0, H, seed

runner = CliRunner()


@pytest.fixture(params=["embedded", "http"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Monitor, list[str]]]:
    """A seeded database and the CLI options that reach it (``--db`` or ``--host``)."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    mon = Monitor(url)
    seed(mon)
    if request.param == "embedded":
        yield mon, ["--db", url]
    else:
        token = mon.create_token("admin")
        with ThreadServer(mon) as server:
            yield mon, ["--host", server.url, "--token", token]
    mon.close()


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_apply_run_list_ack_resolve(where: tuple[Monitor, list[str]], tmp_path: Path) -> None:
    mon, opts = where
    path = tmp_path / "monitors.yaml"
    path.write_text(MONITORS_YAML)
    out = cli("monitors", "apply", str(path), *opts)
    assert "vol" in out and "psi" in out and "created" in out
    assert json.loads(cli("monitors", "apply", str(path), "--json", *opts)) == [
        {"name": "vol", "action": "unchanged"}, {"name": "psi", "action": "unchanged"}
    ]
    at = "2023-11-15T03:00:00+00:00"
    runs = json.loads(cli("monitors", "run", "--at", at, "--name", "vol", "--json", *opts))
    assert [(r["monitor"], r["status"], r["entries"][0]["value"]) for r in runs] == [
        ("vol", "breach", 240)
    ]
    out = cli("monitors", "run", "--at", str(T0 + 3 * H), *opts)  # seconds work too
    assert "breach" in out and "l2" in out  # psi's breaching label in the table
    listed = json.loads(cli("monitors", "list", "--json", *opts))
    assert listed == jsonable(mon.list_monitors())
    assert "volume" in cli("monitors", "list", *opts)

    incidents = json.loads(cli("incidents", "list", "--json", *opts))
    assert incidents == jsonable(mon.incidents())
    vol = next(i for i in incidents if i["monitor"] == "vol")
    out = cli("incidents", "ack", str(vol["id"]), "--by", "alice", *opts)
    assert f"incident {vol['id']} (vol): acknowledged by alice" in out
    acked = json.loads(cli("incidents", "list", "--status", "acknowledged", "--json", *opts))
    assert [i["id"] for i in acked] == [vol["id"]]
    resolved = json.loads(cli("incidents", "resolve", str(vol["id"]), "--json", *opts))
    assert resolved == jsonable(mon.get_incident(vol["id"]))
    assert resolved["status"] == "resolved"
    table = cli("incidents", "list", "--status", "open", *opts)
    assert "psi" in table and "vol" not in table
    assert "deleted monitor 'psi'" in cli("monitors", "delete", "psi", *opts)
    assert [m["name"] for m in mon.list_monitors()] == ["vol"]


def test_errors_exit_2_naming_the_field(where: tuple[Monitor, list[str]], tmp_path: Path) -> None:
    mon, opts = where
    bad = tmp_path / "bad.yaml"
    bad.write_text(MONITORS_YAML.replace("window: 3h", "window: 3w"))
    for args, needle in [
        (["monitors", "apply", str(bad)], "monitors[0].window"),
        (["monitors", "apply", str(tmp_path / "none.yaml")], "cannot read"),
        (["monitors", "run", "--at", "yesterday"], "now"),
        (["monitors", "run", "--name", "nope"], "nope"),
        (["incidents", "ack", "42"], "incident"),
    ]:
        result = runner.invoke(app, [*args, *opts])
        assert result.exit_code == 2, result.output
        assert needle in result.stderr and "Traceback" not in result.output
    assert mon.list_monitors() == []
    result = runner.invoke(app, ["monitors", "list", "--db", "sqlite://", "--host", "http://x"])
    assert result.exit_code == 2


def test_help_of_the_new_commands() -> None:
    for args in (["monitors"], ["monitors", "apply"], ["monitors", "run"], ["monitors", "list"],
                 ["incidents"], ["incidents", "list"], ["incidents", "ack"],
                 ["incidents", "resolve"]):
        out = subprocess.run([str(BIN), *args, "--help"], capture_output=True, text=True,
                             check=True).stdout
        assert "Usage" in out
    run_help = subprocess.run([str(BIN), "monitors", "run", "--help"], capture_output=True,
                              text=True, check=True).stdout
    for option in ("--at", "--name", "--db", "--host", "--token", "--json"):
        assert option in run_help
    serve_help = subprocess.run([str(BIN), "serve", "--help"], capture_output=True, text=True,
                                check=True).stdout
    assert "--schedule-interval" in serve_help


def test_the_readme_monitors_yaml_applies(tmp_path: Path) -> None:
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", readme, flags=re.DOTALL)
               if "monitors:" in b]
    (tmp_path / "monitors.yaml").write_text(block)
    url = f"sqlite:///{tmp_path / 'm.db'}"
    with Monitor(url) as mon:
        mon.create_model_version("movie-genres", "v1", predictions={"genres": "dict"})
    out = json.loads(cli("monitors", "apply", str(tmp_path / "monitors.yaml"), "--db", url, "--json"))
    assert [r["action"] for r in out] == ["created", "created"]
    runs = json.loads(cli("monitors", "run", "--db", url, "--json"))
    assert [r["status"] for r in runs] == ["too_few", "too_few"]  # no traffic yet
