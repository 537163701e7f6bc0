# deltatune: the two quick-start commands are `make demo` and `make test`.
# Both create .venv (CPU torch 2.13.0), install deltatune, fetch the sample data (idempotent) and run.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.deltatune-installed

.PHONY: setup data demo test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

data: setup
	$(BIN)/deltatune data fetch

demo: data
	$(BIN)/deltatune search --model hrnet

test: data
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check tuner models tests

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
