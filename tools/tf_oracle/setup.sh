#!/usr/bin/env bash
# Create .venv-tf with the real TensorFlow (the oracle for tests/head). Idempotent:
# a second run with the same pins does nothing. TF 2.15 pins numpy<2, hence its own venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
# TF 2.15 has wheels for Python 3.9-3.11: prefer python3.11 when it exists
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV=.venv-tf
PINS=(tensorflow-cpu==2.15.1 tensorflow-estimator==2.15.0 "numpy<2")
STAMP="$VENV/.oracle-installed"
WANT="${PINS[*]}"

FOUND="import importlib.util as u, sys; sys.exit(u.find_spec('tensorflow_estimator') is None)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] && "$VENV/bin/python" -c "$FOUND" 2>/dev/null; then
    exit 0
fi
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "${PINS[@]}"
"$VENV/bin/python" -c "import tensorflow as tf; tf.estimator.MultiLabelHead; print('tf oracle ready:', tf.__version__)"
echo "$WANT" > "$STAMP"
