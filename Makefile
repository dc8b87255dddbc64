# One entry point for everything a developer does. `make up` and `make test` build
# .venv from scratch when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: up test lint fmt bench venv clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

up: $(STAMP)
	$(VENV)/bin/cnai up --quickstart

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint browser
	$(PY) -m pytest --durations=25 $(PYTEST_ARGS)

# The dashboard's tests (tests/e2e/test_ui.py) drive Debian's chromium through its
# chromedriver: installed here when missing (as root); nothing to do when present.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; \
	else \
		echo "NOTE: the dashboard's browser tests need chromium and chromedriver, and only root"; \
		echo "      can install them: sudo apt-get install -y chromium chromium-driver"; \
		echo "      (until then they skip; with CI=true they fail)"; \
	fi

fmt: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

bench: $(STAMP)
	@command -v wrk >/dev/null || (echo "benchmarks need wrk: apt-get install -y wrk" && exit 1)
	$(PY) benchmarks/api_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
