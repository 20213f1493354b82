"""A stack of its own for the drop smoke test: the real processes (`make run`'s gateway, booking
service and every worker) on their own PostgreSQL database, Redis db and Kafka topics, with short
hold and saga timeouts so a drop settles within the test."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.tokens import TokenKeys
from stack.infra import Endpoints
from stack.probes import ensure_database, with_database
from stack.processes import free_port, free_port_block
from stack.specs import StackSettings
from stack.supervisor import Stack
from tests.e2e.conftest import LiveStack, _redis_db

DATABASE = "booking_rush_drop_smoke"
REDIS_DB = 5
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="package")
def drop_stack(infra: Endpoints, service_env: dict[str, str]) -> Iterator[LiveStack]:
    database_url = with_database(infra.database_url, DATABASE)
    ensure_database(database_url)
    endpoints = Endpoints(
        redis_url=_redis_db(infra.redis_url, REDIS_DB),
        database_url=database_url,
        kafka_bootstrap=infra.kafka_bootstrap,
    )
    env = {
        **service_env,
        "REDIS_URL": endpoints.redis_url,
        "DATABASE_URL": endpoints.database_url,
        "HOLD_TTL_S": "10",
        "SAGA_TIMEOUT_S": "12",
        "KAFKA_NAMESPACE": f"drop{uuid.uuid4().hex[:8]}",
        "KAFKA_SESSION_TIMEOUT_MS": "2000",
        "MOCK_PAYMENT_DELAY_S": "0.1",
        "RATE_LIMIT_PER_IP": "5000",
        "RATE_LIMIT_PER_USER": "5000",
        "RATE_LIMIT_AUTH_PER_IP": "50",
        "LOG_LEVEL": "WARNING",
    }
    settings = StackSettings(
        gateway_port=free_port(),
        booking_port=free_port(),
        metrics_base_port=free_port_block(16),
        admin_email="admin@drop.local",
        admin_password="drop-admin-password",
        database_name=DATABASE,
    )
    run_dir = ROOT / ".run" / "test" / "drop-smoke"
    stack = Stack(run_dir, env, settings=settings, endpoints=endpoints, console=io.StringIO())
    stack.start()
    try:
        yield LiveStack(
            gateway_url=settings.gateway_url,
            booking_url=settings.booking_url,
            endpoints=endpoints,
            env=env,
            stack=stack,
            keys=TokenKeys.from_env(env, need_signing=True),
        )
    finally:
        stack.stop()
