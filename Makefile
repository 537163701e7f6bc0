# deltatune: the two quick-start commands are `make demo` and `make test`.
# Both create .venv (CPU torch 2.13.0), install deltatune, fetch the sample data (idempotent) and run.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.deltatune-installed

.PHONY: setup data demo test lint clean services

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	touch $(STAMP)

data: setup
	$(BIN)/deltatune data fetch

demo: data
	$(BIN)/deltatune search --model hrnet --finish --plot deltatune-results/demo-front.png

# Real servers some tests start themselves: Debian's Chromium (renders the ablation report) and PostgreSQL
# (the multi-process search). Installed once, when root and apt-get exist; elsewhere those tests skip,
# except under CI=true where they fail.
services:
	@{ command -v chromium >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    chromium fonts-dejavu-core postgresql >/dev/null; } || \
	  echo "note: chromium/postgresql not installed; the browser and PostgreSQL tests will skip"

test: data services lint
	$(BIN)/python -m pytest -q

# ruff over everything; ruff format and mypy over the engine (tuner/delta), which ships py.typed. mypy
# cannot follow the editable install's folder mapping (tuner/ -> deltatune), so .lint/ holds links that do.
lint: setup
	$(BIN)/ruff check tuner models tests benchmarks
	$(BIN)/ruff format --check tuner/delta
	@mkdir -p .lint && ln -sfn ../tuner .lint/deltatune && ln -sfn ../models .lint/deltatune_models
	MYPYPATH=.lint $(BIN)/mypy -p deltatune.delta

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
