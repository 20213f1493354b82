"""A stack of its own for the drop smoke test: the real processes (`make run`'s gateway, booking
service and every worker) on their own PostgreSQL database, Redis db and Kafka topics, with short
hold and saga timeouts so a drop settles within the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.infra import Endpoints
from tests.live import LiveStack, run_live_stack

REDIS_DB = 5
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="package")
def drop_stack(infra: Endpoints, service_env: dict[str, str]) -> Iterator[LiveStack]:
    with run_live_stack(
        infra,
        service_env,
        name="drop_smoke",
        redis_db_index=REDIS_DB,
        env={"HOLD_TTL_S": "10", "SAGA_TIMEOUT_S": "12", "RATE_LIMIT_AUTH_PER_IP": "50"},
    ) as live:
        yield live
