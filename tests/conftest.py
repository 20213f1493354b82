"""Session fixtures: real Redis, PostgreSQL and Kafka-protocol broker from the project's launcher.

Tests isolate themselves with fresh keys (unique event ids), truncated tables and unique
topic/group names; nothing here mocks a server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from stack.infra import Endpoints, start_infra
from stack.probes import ensure_database, with_database
from tests.cluster import ClusterUnderTest, local_cluster

ROOT = Path(__file__).resolve().parent.parent
TEST_RUN_DIR = ROOT / ".run" / "test"
# BOOKING_RUSH_TEST_DB lets parallel test sessions on one machine keep to their own database.
TEST_DATABASE = os.environ.get("BOOKING_RUSH_TEST_DB") or "booking_rush_test"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses a live stack drives the real processes: it is `e2e`, so
    `-m "not e2e"` is the fast loop."""
    from tests.live import LIVE_STACK_FIXTURES

    for item in items:
        if LIVE_STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def infra() -> Iterator[Endpoints]:
    """Servers for the whole session: the configured ones when they answer, else local ones."""
    handle = start_infra(TEST_RUN_DIR, dict(os.environ), database_name=TEST_DATABASE)
    # Whatever database DATABASE_URL names, tests only ever touch their own (they truncate it).
    database_url = with_database(handle.endpoints.database_url, TEST_DATABASE)
    ensure_database(database_url)
    try:
        yield Endpoints(
            handle.endpoints.redis_url,
            database_url,
            handle.endpoints.kafka_bootstrap,
            handle.endpoints.redis_cluster,
        )
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterUnderTest]:
    """A real Redis Cluster for the session: 3 masters with 1 replica each on free loopback
    ports. A test that kills a node must restart it and `wait_ok()` before it ends."""
    path = Path(tempfile.mkdtemp(prefix="booking-rush-cluster-"))
    try:
        with local_cluster(path, masters=3, replicas=1) as cluster:
            yield cluster
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(infra: Endpoints) -> str:
    return infra.redis_url


@pytest.fixture(scope="session")
def database_url(infra: Endpoints) -> str:
    return infra.database_url


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: Endpoints) -> str:
    return infra.kafka_bootstrap


@pytest.fixture(scope="session")
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def unique() -> str:
    """A fresh id for keys, topics and groups of one test."""
    return uuid.uuid4().hex[:12]


TEST_JWT_SECRET = "test-secret-" + "x" * 40


@pytest.fixture(scope="session")
def service_env(infra: Endpoints) -> dict[str, str]:
    """The environment a booking-rush process gets in tests (no Kafka idempotence: Tansu)."""
    return {
        "REDIS_URL": infra.redis_url,
        "DATABASE_URL": infra.database_url,
        "KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "JWT_SECRET": TEST_JWT_SECRET,
        "INTERNAL_SECRET": "internal-" + "y" * 40,
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture(scope="session")
async def migrated_database(database_url: str) -> str:
    from booking.db import migrate

    await migrate(database_url)
    return database_url


@pytest.fixture(scope="session")
async def pg_pool(migrated_database: str) -> AsyncIterator[Any]:
    from booking.db import create_pool

    pool = await create_pool(migrated_database, min_size=1, max_size=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def clean_db(pg_pool: Any) -> Any:
    """Empties every table (but the migration ledger) before the test."""
    tables = await pg_pool.fetch(
        """SELECT tablename FROM pg_tables
           WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"""
    )
    if tables:
        names = ", ".join(f'"{row["tablename"]}"' for row in tables)
        await pg_pool.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    return pg_pool


@pytest.fixture
async def booking_parts(redis_url: str, clean_db: Any) -> AsyncIterator[Any]:
    """The booking service's use-cases wired to the real servers, without HTTP."""
    from types import SimpleNamespace

    from booking.bookings import Bookings, mark_durable_after_commit
    from booking.catalog import Catalog
    from booking.hold_writer import HoldWriter
    from booking.inventory.scripts import Scripts

    client = aioredis.Redis.from_url(redis_url)
    scripts = Scripts(client)
    await scripts.load()
    writer = HoldWriter(clean_db, on_committed=mark_durable_after_commit(scripts))
    writer.start()

    def bookings(hold_ttl_s: int = 600) -> Bookings:
        return Bookings(
            pool=clean_db,
            scripts=scripts,
            writer=writer,
            hold_ttl_s=hold_ttl_s,
            pass_secret="internal-" + "y" * 40,
        )

    try:
        yield SimpleNamespace(
            pool=clean_db,
            redis=client,
            scripts=scripts,
            catalog=Catalog(pool=clean_db, scripts=scripts),
            bookings=bookings,
        )
    finally:
        await writer.stop()
        await scripts.aclose()
        await client.aclose()
