# Every target installs what it needs first, so each works on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SRC := src tests examples benchmarks

.PHONY: install system-deps test lint format bench demo docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,docs,bench]'
	touch $(STAMP)

install: $(STAMP)

# rsyslog and logrotate, used by the tests and the demo (Debian packages; needs root).
system-deps:
	bash scripts/system-deps.sh

test: install system-deps
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check $(SRC)
	$(PY) -m ruff format --check $(SRC)
	$(PY) -m mypy

format: install
	$(PY) -m ruff check --fix $(SRC)
	$(PY) -m ruff format $(SRC)

bench: install system-deps
	$(PY) benchmarks/run.py

demo: install system-deps
	$(PY) examples/demo.py

docs: install
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache
