"""End-to-end: the real processes (gateway, booking, workers) over loopback, as `make run` starts
them, against the session's servers. They use their own PostgreSQL database and Redis db so the
workers running in the background never touch other tests' data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.live import LiveStack, insert_user, live_stack_fixture

__all__ = ["LiveStack"]  # the e2e suites import it from here

E2E_HOLD_TTL_S = 10  # long enough that a loaded machine drains, checks and cancels first


live_stack = live_stack_fixture(
    "e2e",
    fixture="live_stack",
    env={"HOLD_TTL_S": str(E2E_HOLD_TTL_S), "RATE_LIMIT_AUTH_PER_IP": "5"},
)


@pytest.fixture
async def gateway(live_stack: LiveStack) -> AsyncIterator[httpx.AsyncClient]:
    async with live_stack.client() as client:
        yield client


@pytest.fixture
async def e2e_pool(live_stack: LiveStack) -> AsyncIterator[Any]:
    async with live_stack.database() as pool:
        yield pool


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

    async def make(role: str = "customer") -> tuple[str, dict[str, str]]:
        return await insert_user(e2e_pool, live_stack, role)

    return make
