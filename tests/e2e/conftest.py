"""End-to-end: the real processes (gateway, booking, workers) over loopback, as `make run` starts
them, against the session's servers. They use their own PostgreSQL database and Redis db so the
workers running in the background never touch other tests' data."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from booking.db import create_pool
from common.tokens import TokenKeys, issue_access_token
from stack.infra import Endpoints
from stack.probes import ensure_database, with_database
from stack.processes import free_port, free_port_block
from stack.specs import StackSettings
from stack.supervisor import Stack

E2E_DATABASE = "booking_rush_e2e"
E2E_HOLD_TTL_S = 5
ADMIN_EMAIL = "admin@e2e.local"
ADMIN_PASSWORD = "e2e-admin-password"


@dataclass
class LiveStack:
    gateway_url: str
    booking_url: str
    endpoints: Endpoints
    env: dict[str, str]
    stack: Stack
    keys: TokenKeys

    def token(self, user_id: str, role: str = "customer") -> str:
        return issue_access_token(
            self.keys, user_id=user_id, role=role, ttl_s=900, now=datetime.now(UTC)
        )


def _redis_db(url: str, db: int) -> str:
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{db}"


@pytest.fixture(scope="package")
def live_stack(infra: Endpoints, service_env: dict[str, str]) -> Iterator[LiveStack]:
    database_url = with_database(infra.database_url, E2E_DATABASE)
    ensure_database(database_url)
    endpoints = Endpoints(
        redis_url=_redis_db(infra.redis_url, 1),
        database_url=database_url,
        kafka_bootstrap=infra.kafka_bootstrap,
    )
    env = {
        **service_env,
        "REDIS_URL": endpoints.redis_url,
        "DATABASE_URL": endpoints.database_url,
        "HOLD_TTL_S": str(E2E_HOLD_TTL_S),
        "RATE_LIMIT_PER_IP": "5000",
        "RATE_LIMIT_PER_USER": "5000",
        "RATE_LIMIT_AUTH_PER_IP": "5",
        "ADMIN_EMAIL": ADMIN_EMAIL,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "LOG_LEVEL": "WARNING",
    }
    settings = StackSettings(
        gateway_port=free_port(),
        booking_port=free_port(),
        metrics_base_port=free_port_block(16),
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        database_name=E2E_DATABASE,
    )
    run_dir = Path(__file__).resolve().parents[2] / ".run" / "test" / "e2e"
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
async def gateway(live_stack: LiveStack) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(
        base_url=live_stack.gateway_url + "/api/v1", timeout=30, limits=limits
    ) as client:
        yield client


@pytest.fixture
async def e2e_pool(live_stack: LiveStack) -> AsyncIterator[Any]:
    pool = await create_pool(live_stack.endpoints.database_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def e2e_redis(live_stack: LiveStack) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(live_stack.endpoints.redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def e2e_user(live_stack: LiveStack, e2e_pool: Any) -> Any:
    """A user row (no slow hash) and its auth headers, for tests that need many buyers."""
    from booking.store.users import insert_user

    async def make(role: str = "customer") -> tuple[str, dict[str, str]]:
        user = await insert_user(
            e2e_pool,
            email=f"{uuid.uuid4().hex[:12]}@e2e.local",
            name="E2E",
            role=role,
            password_hash="not-a-real-hash",
        )
        assert user is not None
        return user.user_id, {"Authorization": f"Bearer {live_stack.token(user.user_id, role)}"}

    return make
