# booking-rush: `make run` brings up the whole system, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck install clean-run tools dashboards

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

## run: the whole system on embedded servers (Ctrl-C stops all of it)
run: $(STAMP)
	$(BIN)/python -m stack run

## test: unit, Lua, integration, API and end-to-end tests on real servers
test: $(STAMP) tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## tools: prometheus/promtool, wrk and docker-compose (Debian packages), installed when missing
tools:
	@sh observability/ensure-tools.sh

## dashboards: rewrite observability/grafana/dashboards/*.json from build_dashboards.py
dashboards: $(STAMP)
	$(BIN)/python observability/grafana/build_dashboards.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy booking gateway workers common stack lua

clean-run:
	rm -rf .run
