"""Fixtures of the observability tests: the real processes (the e2e `live_stack`, started again
for this package) and a real Prometheus scraping all of them every second."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from stack.specs import ProcessSpec
from tests.e2e.conftest import (  # noqa: F401  (fixtures shared with the e2e tests)
    LiveStack,
    e2e_pool,
    e2e_user,
    gateway,
    live_stack,
)
from tests.observability.prometheus_server import Prometheus, prometheus_binary, scrape_config

RUN_DIR = Path(__file__).resolve().parents[2] / ".run" / "test" / "prometheus"


def scrape_jobs(specs: list[ProcessSpec]) -> dict[str, list[tuple[str, str]]]:
    """Every started process's metrics address, grouped like observability/prometheus.yml."""
    jobs: dict[str, list[tuple[str, str]]] = {"gateway": [], "booking": [], "workers": []}
    for spec in specs:
        if spec.name == "gateway":
            jobs["gateway"].append((f"127.0.0.1:{spec.env['GATEWAY_PORT']}", "gateway"))
        elif spec.name == "booking" or spec.name.startswith("booking-"):  # every replica
            jobs["booking"].append((f"127.0.0.1:{spec.env['BOOKING_PORT']}", "booking"))
        elif "WORKER_METRICS_PORT" in spec.env:
            jobs["workers"].append((f"127.0.0.1:{spec.env['WORKER_METRICS_PORT']}", spec.name))
    return jobs


@pytest.fixture(scope="package")
def prometheus(live_stack: LiveStack) -> Iterator[Prometheus]:  # noqa: F811
    if prometheus_binary() is None:
        pytest.fail("no `prometheus` on PATH: run `make tools` (observability/ensure-tools.sh)")
    server = Prometheus(RUN_DIR, scrape_config(scrape_jobs(live_stack.stack.specs)))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def prom(prometheus: Prometheus) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=prometheus.url, timeout=10) as client:
        yield client
