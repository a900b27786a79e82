"""The TensorFlow oracle: every case of ``tf_cases`` through TF's own MultiLabelHead, in
one subprocess per session (``tools/tf_oracle/oracle.py`` with ``.venv-tf``)."""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.head import tf_cases

ROOT = Path(__file__).resolve().parents[2]
TF_PYTHON = ROOT / ".venv-tf" / "bin" / "python"
ORACLE = ROOT / "tools" / "tf_oracle" / "oracle.py"
MISSING = (
    f"TENSORFLOW ORACLE NOT RUN: {TF_PYTHON} does not exist. Create it with "
    "tools/tf_oracle/setup.sh (make test does); the TF-semantics tests are SKIPPED."
)


@pytest.fixture(scope="session")
def tf_results() -> dict[str, dict[str, Any]]:
    """TF's results by case id (loss, unreduced_loss, metrics, predictions, or error)."""
    if not TF_PYTHON.exists():
        if os.environ.get("LABELWATCH_REQUIRE_TF_ORACLE"):
            pytest.fail(MISSING + " (LABELWATCH_REQUIRE_TF_ORACLE is set)")
        warnings.warn(MISSING, stacklevel=1)
        pytest.skip(MISSING)
    proc = subprocess.run(
        [str(TF_PYTHON), str(ORACLE)],
        input=json.dumps(tf_cases.to_json(tf_cases.build_cases())),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"the TF oracle failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    results = json.loads(proc.stdout)["results"]
    return {r["id"]: r for r in results}
