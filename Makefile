# Two-command quick start: `make demo` and `make test`. Every target creates .venv when it is missing
# and reinstalls only when pyproject.toml changed (the stamp file records the last install).
PY ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
BIN := $(VENV)/bin

.PHONY: demo test bench lint env clean viewer

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/deepsalt demo --config configs/demo.yaml

# two xdist workers: the tests that use or start Ray run one after another in one of them, the rest
# of the suite beside them in the other (tests/support/ray_group.py)
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# rebuild the viewer page (deepsalt/viewer/static) from web/ with the locked npm packages
viewer:
	cd web && npm ci --no-audit --no-fund && npm run build

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) demo_output .pytest_cache
