# The two README commands: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
# The tests include the SavedModel backend, so they install the `tf` extra (tensorflow-cpu) too.
TEST_EXTRAS ?= dev,tf

.PHONY: demo test lint selfbench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(DEVSTAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[$(TEST_EXTRAS)]'
	touch $(STAMP) $@

demo: $(STAMP)
	$(VENV)/bin/tfsbench demo --out results/demo

test: $(DEVSTAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: $(DEVSTAMP)
	$(VENV)/bin/ruff check .

selfbench: $(STAMP)
	$(VENV)/bin/tfsbench selfbench --out results/selfbench.json

clean:
	rm -rf $(VENV) results
