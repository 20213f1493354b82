"""Fixtures of the Lua tests: the shipped scripts on a real single Redis AND on a real Redis
Cluster (every Lua test runs on both: `[single]` / `[cluster]` in its id), one fresh event per
test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from booking.inventory.keys import LIVE_EVENTS, event_keys
from booking.inventory.scripts import Scripts
from common.redis_client import RedisClient, connect


@pytest.fixture(scope="session", params=["single", "cluster"])
def lua_target(request: pytest.FixtureRequest) -> tuple[str, bool]:
    """(url, cluster?) of the Redis the Lua tests run on."""
    if request.param == "cluster":
        return request.getfixturevalue("redis_cluster").url, True
    return request.getfixturevalue("redis_url"), False


@pytest.fixture(scope="session")
async def redis(lua_target: tuple[str, bool]) -> AsyncIterator[RedisClient]:
    url, cluster = lua_target
    client = await connect(url, cluster=cluster, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
async def scripts(redis: RedisClient) -> AsyncIterator[Scripts]:
    loaded = Scripts(redis)
    await loaded.load()
    yield loaded
    await loaded.aclose()


@pytest.fixture(scope="session")
async def pooled_redis(lua_target: tuple[str, bool]) -> AsyncIterator[RedisClient]:
    """A client over a real pool wide enough for the concurrency tests (waits, never refuses;
    a cluster client's pools grow per node as needed)."""
    url, cluster = lua_target
    if cluster:
        clustered = await connect(url, cluster=True, decode_responses=True)
        try:
            yield clustered
        finally:
            await clustered.aclose()
        return
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=30, decode_responses=True
    )
    client = aioredis.Redis(connection_pool=pool)
    try:
        yield client
    finally:
        await client.aclose()
        await pool.aclose()


@pytest.fixture(scope="session")
async def pooled_scripts(pooled_redis: RedisClient) -> AsyncIterator[Scripts]:
    loaded = Scripts(pooled_redis)
    await loaded.load()
    yield loaded
    await loaded.aclose()


@pytest.fixture
async def event_id(unique: str, redis: RedisClient) -> AsyncIterator[str]:
    """A fresh event id; its keys and its live-events entry are removed afterwards."""
    event_id = f"test-{unique}"
    yield event_id
    await redis.delete(*event_keys(event_id).stored())
    await redis.zrem(LIVE_EVENTS, event_id)
