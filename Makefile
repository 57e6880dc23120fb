# Two entry points for a fresh machine:
#   make run   - set up .venv and open the designer with the starter template (offline digits data)
#   make test  - set up .venv and run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEMPLATE ?= templates/mlp-digits.dnn.json

.PHONY: setup run test check lint system-deps screenshots bench

setup: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,export]"
	touch $(STAMP)

run: setup
	$(PY) -m designer $(TEMPLATE)

check: setup
	$(PY) -m designer check $(TEMPLATE)

# Xvfb and xdotool drive the one real drag-and-drop test; without them it skips.
system-deps:
	bash scripts/install-system-deps.sh

test: setup
	-@bash scripts/install-system-deps.sh --if-root-and-missing
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check designer tests

screenshots: setup
	QT_QPA_PLATFORM=offscreen $(PY) scripts/screenshots.py

bench: setup
	$(PY) benchmarks/bench_check.py
