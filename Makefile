# Two entry points for a fresh machine:
#   make run   - set up .venv and open the designer with the starter template (offline digits data)
#   make test  - set up .venv and run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEMPLATE ?= designer/templates/mlp-digits.dnn.json

.PHONY: setup run test check lint system-deps system-libs screenshots bench

setup: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,export,hf]"
	touch $(STAMP)

# Qt's xcb plugin needs system libraries a fresh machine may lack (libxcb-cursor0 ...): installed
# here as root, otherwise the one sudo line is printed and make stops before Qt would abort.
run: setup system-libs
	$(PY) -m designer $(TEMPLATE)

system-libs:
	@bash scripts/install-system-deps.sh --runtime

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
	$(PY) scripts/screenshots.py
	$(PY) scripts/finetune_screenshots.py

bench: setup
	$(PY) benchmarks/bench_check.py
