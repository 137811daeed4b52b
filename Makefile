# The two README commands: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
# The tests include the SavedModel backend, so they install the `tf` extra (tensorflow-cpu) too.
TEST_EXTRAS ?= dev,tf
# Python may write bytecode caches (gitignored __pycache__/) even where the environment says not to: with
# PYTHONDONTWRITEBYTECODE set, pytest rewrites every test module's asserts again in each of its five
# collections (7.7 s of CPU each on a 2-core VM, 2.9 s with the cache) and every subprocess compiles again.
unexport PYTHONDONTWRITEBYTECODE

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

# The suite in two passes at once (docs/testing.md): everything not marked `serial` on $(TEST_WORKERS) xdist
# workers at the lowest CPU priority (nice 19), and beside it the timing-sensitive `serial` tests one at a
# time at normal priority: the scheduler hands them a core the moment they want one, so a neighbour's load
# does not skew what they measure, and the idle time of their waits is not lost. (The tests start servers
# in process groups, not sessions: Linux's autogroup would give each session an equal share whatever its
# nice value.) The serial pass's output follows the parallel pass's; the target fails if either failed.
# $(1): more tests to leave out of both passes.
TEST_WORKERS ?= 4
define two_passes
@mkdir -p test-artifacts
status=0; \
nice -n 19 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not serial$(1)" & parallel=$$!; \
trap 'kill $$parallel 2>/dev/null' INT TERM; \
$(PY) -m pytest -q -m "serial$(1)" > test-artifacts/serial-pass.log 2>&1 || status=$$?; \
wait $$parallel || status=$$?; \
echo "== the serial pass (test-artifacts/serial-pass.log):"; cat test-artifacts/serial-pass.log; \
exit $$status
endef

test: $(DEVSTAMP)
	$(VENV)/bin/ruff check .
	$(call two_passes,)

# The edit-test loop: no test marked slow (> ~1 s) or needing Chromium, in the same two passes.
test-fast: $(DEVSTAMP)
	$(call two_passes, and not slow and not browser)

lint: $(DEVSTAMP)
	$(VENV)/bin/ruff check .

selfbench: $(STAMP)
	$(VENV)/bin/tfsbench selfbench --out results/selfbench.json

clean:
	rm -rf $(VENV) results
