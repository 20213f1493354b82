"""Fixtures of the Lua tests: the shipped scripts on the real Redis, one fresh event per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from booking.inventory.keys import LIVE_EVENTS, event_keys
from booking.inventory.scripts import Scripts


@pytest.fixture(scope="session")
async def scripts(redis: aioredis.Redis) -> Scripts:
    loaded = Scripts(redis)
    await loaded.load()
    return loaded


@pytest.fixture(scope="session")
async def pooled_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client over a real pool wide enough for the concurrency tests (waits, never refuses)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        redis_url, max_connections=64, timeout=30, decode_responses=True
    )
    client = aioredis.Redis(connection_pool=pool)
    try:
        yield client
    finally:
        await client.aclose()
        await pool.aclose()


@pytest.fixture(scope="session")
async def pooled_scripts(pooled_redis: aioredis.Redis) -> Scripts:
    loaded = Scripts(pooled_redis)
    await loaded.load()
    return loaded


@pytest.fixture
async def event_id(unique: str, redis: aioredis.Redis) -> AsyncIterator[str]:
    """A fresh event id; its keys and its live-events entry are removed afterwards."""
    event_id = f"test-{unique}"
    yield event_id
    await redis.delete(*event_keys(event_id).stored())
    await redis.zrem(LIVE_EVENTS, event_id)
