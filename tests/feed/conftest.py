"""Fixtures of the live feed tests: the in-process app of tests/api on a database of its own (other
suites truncate theirs while they run), and a `LiveFeed` on the real Redis (a real Hub, the
shipped Lua scripts) for room-level tests without HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from booking.db import create_pool, migrate
from booking.errors import NotFoundError
from booking.feed import LiveFeed
from booking.inventory.keys import LIVE_EVENTS, event_keys
from booking.inventory.scripts import Scripts
from booking.pubsub import Hub
from booking.settings import Settings
from stack.infra import Endpoints
from stack.probes import ensure_database, with_database
from tests.api import conftest as api_fixtures

FEED_DATABASE = "booking_rush_feed_test"

app = api_fixtures.app
client = api_fixtures.client
token_for = api_fixtures.token_for
make_user = api_fixtures.make_user
published_event = api_fixtures.published_event


@pytest.fixture(scope="session")
def feed_database_url(infra: Endpoints) -> str:
    url = with_database(infra.database_url, FEED_DATABASE)
    ensure_database(url)
    return url


@pytest.fixture(scope="session")
async def feed_pool(feed_database_url: str) -> AsyncIterator[Any]:
    await migrate(feed_database_url)
    pool = await create_pool(feed_database_url, min_size=1, max_size=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def clean_db(feed_pool: Any) -> Any:
    """Empties this suite's own database (but the migration ledger) before the test."""
    tables = await feed_pool.fetch(
        """SELECT tablename FROM pg_tables
           WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"""
    )
    names = ", ".join(f'"{row["tablename"]}"' for row in tables)
    await feed_pool.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    return feed_pool


@pytest.fixture(scope="session")
def settings(service_env: dict[str, str], feed_database_url: str, feed_pool: Any) -> Settings:
    return Settings.from_env(
        {**service_env, "DATABASE_URL": feed_database_url, "HOLD_TTL_S": "600"}
    )


@pytest.fixture(scope="session")
async def feed_scripts(redis: aioredis.Redis) -> AsyncIterator[Scripts]:
    loaded = Scripts(redis)
    await loaded.load()
    yield loaded
    await loaded.aclose()


@pytest.fixture
async def hub(redis_url: str) -> AsyncIterator[Hub]:
    started = Hub(redis_url)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


def redis_availability(scripts: Scripts) -> Any:
    """The availability body read from the live Redis counters (what Catalog.availability
    answers, minus PostgreSQL's zone order, which these tests do not need)."""

    async def read(event_id: str) -> dict[str, Any]:
        zones = await scripts.availability(event_id)
        if not zones:
            raise NotFoundError("no such event")
        return {
            "event_id": event_id,
            "zones": [
                {"zone_id": zone_id, "capacity": zone.capacity, "available": zone.available}
                for zone_id, zone in sorted(zones.items())
            ],
        }

    return read


@pytest.fixture
async def make_feed(hub: Hub, feed_scripts: Scripts) -> AsyncIterator[Any]:
    feeds: list[LiveFeed] = []

    def make(**options: Any) -> LiveFeed:
        feed = LiveFeed(hub, redis_availability(feed_scripts), **options)
        feeds.append(feed)
        return feed

    yield make
    for feed in feeds:
        await feed.stop()


@pytest.fixture
async def event_id(unique: str, redis: aioredis.Redis) -> AsyncIterator[str]:
    event_id = f"feed-{unique}"
    yield event_id
    await redis.delete(*event_keys(event_id).stored())
    await redis.zrem(LIVE_EVENTS, event_id)
