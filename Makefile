# The two commands: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_ARGS ?=

.PHONY: demo test lint bench clean tf-oracle aporia-sdk

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Re-install only when pyproject.toml changes (a second run reuses the environment).
$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,torch]'
	touch $@

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[demo,torch]'
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/labelwatch demo $(DEMO_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench examples tools
	$(BIN)/mypy

# The real TensorFlow (2.15, numpy<2) in its own venv: the oracle of tests/head.
tf-oracle:
	bash tools/tf_oracle/setup.sh

# The real Aporia v1 SDK (numpy<2, pandas<2) in its own venv: the client of the
# drop-in server's end-to-end test (tests/server/test_aporia.py).
aporia-sdk:
	bash tools/aporia_sdk/setup.sh

# The TF oracle and Aporia SDK tests must run here, not skip.
test: lint tf-oracle aporia-sdk
	LABELWATCH_REQUIRE_TF_ORACLE=1 LABELWATCH_REQUIRE_APORIA_SDK=1 $(BIN)/pytest

bench: $(VENV)/.dev-installed
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -u bench/metrics.py
	$(BIN)/python -u bench/head.py
	cd bench && ../$(BIN)/python -u ingest.py && ../$(BIN)/python -u query.py

clean:
	rm -rf $(VENV) .venv-tf .venv-aporia build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
