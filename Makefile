# deltatune: the two quick-start commands are `make demo` and `make test`.
# Both create .venv (CPU torch 2.13.0), install deltatune, fetch the sample data (idempotent) and run.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.deltatune-installed

.PHONY: setup data demo test lint clean browser

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

# Debian's Chromium renders the ablation report in the tests (installed once, when root and apt-get exist;
# elsewhere the browser test skips, except under CI=true where it fails).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  chromium fonts-dejavu-core >/dev/null; } || echo "note: chromium not installed; the report's browser test will skip"

test: data browser
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check tuner models tests

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
