# The two README commands: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
# The tests include the SavedModel backend, so they install the `tf` extra (tensorflow-cpu) too.
TEST_EXTRAS ?= dev,tf

.PHONY: demo test test-fast lint selfbench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

# The official TF Serving protos for the gRPC wire-contract tests. The package requires `tensorflow`,
# which would pull a second TensorFlow next to tensorflow-cpu: install it without dependencies, at
# the release matching the installed tensorflow-cpu (its own deps, grpcio and protobuf, are ours too).
$(DEVSTAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[$(TEST_EXTRAS)]'
	if $(PY) -c 'from importlib.metadata import version; version("tensorflow-cpu")' 2>/dev/null; then \
	  $(PY) -m pip install -q --no-deps "tensorflow-serving-api==$$($(PY) -c 'from importlib.metadata import version; print(".".join(version("tensorflow-cpu").split(".")[:2]))').*"; \
	fi
	touch $(STAMP) $@

demo: $(STAMP)
	$(VENV)/bin/tfsbench demo --out results/demo

# The full suite in two passes (docs/testing.md): everything not marked `serial` on $(TEST_WORKERS) xdist
# workers, then the timing-sensitive `serial` tests alone, so a neighbour's load never skews what they
# measure. Both passes always run; the target fails if either failed.
TEST_WORKERS ?= 4
test: $(DEVSTAMP)
	$(VENV)/bin/ruff check .
	status=0; \
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not serial" || status=$$?; \
	$(PY) -m pytest -q -m serial || status=$$?; \
	exit $$status

# The edit-test loop: no test marked slow (> ~1 s) or needing Chromium, in the same two passes; about
# 50 s on 2 idle cores.
test-fast: $(DEVSTAMP)
	status=0; \
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not slow and not browser and not serial" || status=$$?; \
	$(PY) -m pytest -q -m "serial and not slow and not browser" || status=$$?; \
	exit $$status

lint: $(DEVSTAMP)
	$(VENV)/bin/ruff check .

selfbench: $(STAMP)
	$(VENV)/bin/tfsbench selfbench --out results/selfbench.json

clean:
	rm -rf $(VENV) results
