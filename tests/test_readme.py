"""Every Python code block of the README runs as written."""

from __future__ import annotations

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_opens_with_the_two_commands() -> None:
    head = README.read_text().split("\n\n", 2)[1]
    assert "make demo" in head and "make test" in head


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_block_runs(
    code: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import labelwatch

    monkeypatch.chdir(tmp_path)  # blocks that write files (monitor.db) write them here
    try:
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    finally:
        labelwatch.shutdown()
