#!/usr/bin/env bash
# Create .venv-aporia with the real Aporia v1 SDK, the client of tests/server/test_aporia.py's
# end-to-end test. Idempotent: a second run with the same pins does nothing. The SDK pins
# numpy<2, pandas<2 and an old certifi, hence its own venv; it is a test-only tool (it
# declares no licence: installed from PyPI, never vendored).
set -euo pipefail
cd "$(dirname "$0")/../.."
# pandas 1.5.3 (the training extra) has wheels up to Python 3.11: prefer python3.11
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV=.venv-aporia
PINS=("aporia[training]==1.0.96")
STAMP="$VENV/.aporia-installed"
WANT="${PINS[*]}"

FOUND="import aporia, pandas"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] && "$VENV/bin/python" -c "$FOUND" 2>/dev/null; then
    exit 0
fi
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "${PINS[@]}"
"$VENV/bin/python" -c "import aporia, pandas
from importlib.metadata import version
print('aporia sdk ready:', version('aporia'))"
echo "$WANT" > "$STAMP"
