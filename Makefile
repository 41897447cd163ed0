# Two commands on a fresh clone: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# torch is pinned to the tested CPU build; see constraints.txt.
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: install demo test quick lint typecheck unit bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/emotrace demo -o demo-out

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src

# axe-core for the accessibility test (tests/a11y, pinned); without npm that test skips, saying so.
AXE := tests/a11y/node_modules/axe-core/axe.min.js
$(AXE): tests/a11y/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/a11y --silent --no-audit --no-fund; \
	else echo "npm not found: tests/test_accessibility.py will skip (Debian: apt-get install npm)"; fi

# Both run on two workers (pytest-xdist): each module whole on one worker, the longest modules
# first (tests/conftest.py). Many tests wait on servers, browsers and subprocesses, so two
# workers pay even on two cores. `pytest` alone (one process) runs the same tests.
XDIST := -n 2 --dist loadfile --no-loadscope-reorder

# The complete suite; the 25 slowest tests are listed at the end.
unit: $(STAMP) $(AXE)
	$(BIN)/python -m pytest $(XDIST) --durations=25

# The fast tier (README, Development): no slow, Chromium, qemu, Ray, torchrun or full-data tests.
QUICK_MARKERS := not (slow or browser or qemu or ray or torchrun or full_data)
quick: $(STAMP)
	$(BIN)/python -m pytest $(XDIST) -m "$(QUICK_MARKERS)"

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_data.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache demo-out
