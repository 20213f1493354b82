"""The real processes (`make run`'s stack: gateway, booking, every registered worker) on their own
database, Redis db and Kafka namespace, with a 5 s hold so an expiry happens within a test."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from booking.db import create_pool
from common.tokens import TokenKeys
from stack.infra import Endpoints
from stack.probes import ensure_database, with_database
from stack.processes import free_port, free_port_block
from stack.specs import StackSettings
from stack.supervisor import Stack
from tests.e2e.conftest import LiveStack, _redis_db

DATABASE = "booking_rush_feed_e2e"
REDIS_DB = 3
HOLD_TTL_S = 5


@pytest.fixture(scope="package")
def feed_stack(infra: Endpoints, service_env: dict[str, str]) -> Iterator[LiveStack]:
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
        "HOLD_TTL_S": str(HOLD_TTL_S),
        "KAFKA_NAMESPACE": f"feed{uuid.uuid4().hex[:8]}",
        "KAFKA_SESSION_TIMEOUT_MS": "2000",
        "MOCK_PAYMENT_DELAY_S": "0.1",
        "RATE_LIMIT_PER_IP": "5000",
        "RATE_LIMIT_PER_USER": "5000",
        "LOG_LEVEL": "WARNING",
    }
    settings = StackSettings(
        gateway_port=free_port(),
        booking_port=free_port(),
        metrics_base_port=free_port_block(16),
        admin_email="admin@feed.local",
        admin_password="feed-admin-password",
        database_name=DATABASE,
    )
    run_dir = Path(__file__).resolve().parents[3] / ".run" / "test" / "feed-e2e"
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


@pytest.fixture
async def gw(feed_stack: LiveStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=feed_stack.gateway_url + "/api/v1", timeout=30) as client:
        yield client


@pytest.fixture
async def db(feed_stack: LiveStack) -> AsyncIterator[Any]:
    pool = await create_pool(feed_stack.endpoints.database_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def user(feed_stack: LiveStack, db: Any) -> Any:
    """A user row (no slow hash) and its auth headers."""
    from booking.store.users import insert_user

    async def make(role: str = "customer") -> tuple[str, dict[str, str]]:
        row = await insert_user(
            db,
            email=f"{uuid.uuid4().hex[:12]}@feed.local",
            name="Watcher",
            role=role,
            password_hash="not-a-real-hash",
        )
        assert row is not None
        return row.user_id, {"Authorization": f"Bearer {feed_stack.token(row.user_id, role)}"}

    return make
