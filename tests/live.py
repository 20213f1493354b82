"""Running the real processes for end-to-end tests: `make run`'s stack (gateway, booking service,
every registered worker) on the session's servers, each test package with its own PostgreSQL
database, Redis db, Kafka namespace, ports and run directory, so packages never see each other's
data and background workers never touch another package's rows."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.tokens import TokenKeys, issue_access_token
from stack.infra import Endpoints
from stack.probes import ensure_database, with_database
from stack.processes import free_port, free_port_block
from stack.specs import StackSettings
from stack.supervisor import Stack

ROOT = Path(__file__).resolve().parent.parent

# What every test stack gets unless the package overrides it.
BASE_ENV = {
    "KAFKA_SESSION_TIMEOUT_MS": "2000",
    "MOCK_PAYMENT_DELAY_S": "0.1",
    "RATE_LIMIT_PER_IP": "5000",
    "RATE_LIMIT_PER_USER": "5000",
    "LOG_LEVEL": "WARNING",
}


@dataclass
class LiveStack:
    gateway_urls: list[str]  # every gateway; the first is `gateway_url`
    gateway_url: str
    booking_url: str
    endpoints: Endpoints
    env: dict[str, str]
    stack: Stack
    keys: TokenKeys

    @asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        """An HTTP client of the gateway's API (base URL /api/v1)."""
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(
            base_url=self.gateway_url + "/api/v1", timeout=30, limits=limits
        ) as client:
            yield client

    @asynccontextmanager
    async def database(self) -> AsyncIterator[Any]:
        """A small pool on the stack's own PostgreSQL database."""
        from booking.db import create_pool

        pool = await create_pool(self.endpoints.database_url, min_size=1, max_size=4)
        try:
            yield pool
        finally:
            await pool.close()

    def token(self, user_id: str, role: str = "customer") -> str:
        return issue_access_token(
            self.keys, user_id=user_id, role=role, ttl_s=900, now=datetime.now(UTC)
        )


# One Redis db per live stack, so the workers running behind one never touch another's keys
# (db 0 is the session's own; the streams tool of tests/loadtests takes `streams`). A stack on
# the session's Redis Cluster (tests/on_cluster) has none: a cluster has only db 0.
REDIS_DBS = {
    "e2e": 1,
    "saga_e2e": 2,
    "feed_e2e": 3,
    "drop_smoke": 5,
    "contract": 6,
    "web": 7,
    "streams": 10,
}
assert len(set(REDIS_DBS.values())) == len(REDIS_DBS)
# The fixtures `live_stack_fixture` made: a test that uses one is marked e2e (tests/conftest.py).
LIVE_STACK_FIXTURES: set[str] = set()


def redis_db(url: str, db: int) -> str:
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{db}"


@dataclass(frozen=True)
class Shape:
    """How many of each process a live stack runs (`make run`'s GATEWAY_REPLICAS,
    BOOKING_REPLICAS, WORKER_COPIES)."""

    gateways: int = 1
    bookings: int = 2
    worker_copies: int = 1


@contextmanager
def run_live_stack(
    infra: Endpoints,
    service_env: Mapping[str, str],
    *,
    name: str,
    env: Mapping[str, str] | None = None,
    cluster_url: str | None = None,
    shape: Shape = Shape(),
) -> Iterator[LiveStack]:
    """Starts the stack (healthy on return) and stops all of it afterwards. With `cluster_url`
    its Redis is that cluster (db 0 is a cluster's only one: the caller empties it first)."""
    database = f"booking_rush_{name}"
    database_url = with_database(infra.database_url, database)
    ensure_database(database_url)
    endpoints = Endpoints(
        redis_url=cluster_url or redis_db(infra.redis_url, REDIS_DBS[name]),
        database_url=database_url,
        kafka_bootstrap=infra.kafka_bootstrap,
        redis_cluster=cluster_url is not None,
    )
    admin_email = f"admin@{name.replace('_', '-')}.local"
    full_env = {
        **service_env,
        **BASE_ENV,
        "KAFKA_NAMESPACE": f"{name.replace('_', '')}{uuid.uuid4().hex[:8]}",
        **(env or {}),
        "REDIS_URL": endpoints.redis_url,
        "REDIS_CLUSTER": "1" if endpoints.redis_cluster else "0",
        "DATABASE_URL": endpoints.database_url,
        "ADMIN_EMAIL": admin_email,
        "ADMIN_PASSWORD": f"{name}-admin-password",
    }
    # Each booking process on a port of its own drawn now: BOOKING_PORT + 1 may be taken by the
    # time the stack binds it on a busy machine.
    booking_ports = _distinct_free_ports(shape.bookings)
    settings = StackSettings(
        gateway_port=free_port(),
        booking_port=booking_ports[0],
        replica_ports=booking_ports,
        metrics_base_port=free_port_block(16),
        admin_email=admin_email,
        admin_password=full_env["ADMIN_PASSWORD"],
        database_name=database,
        gateway_replicas=shape.gateways,
        booking_replicas=shape.bookings,
        worker_copies=shape.worker_copies,
    )
    run_dir = ROOT / ".run" / "test" / name
    stack = Stack(run_dir, full_env, settings=settings, endpoints=endpoints, console=io.StringIO())
    stack.start()
    try:
        yield LiveStack(
            gateway_urls=[f"http://127.0.0.1:{port}" for port in stack.settings.gateway_ports],
            gateway_url=settings.gateway_url,
            booking_url=settings.booking_url,
            endpoints=endpoints,
            env=full_env,
            stack=stack,
            keys=TokenKeys.from_env(full_env, need_signing=True),
        )
    finally:
        stack.stop()


def _distinct_free_ports(count: int) -> tuple[int, ...]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return tuple(ports)


def live_stack_fixture(
    name: str,
    *,
    fixture: str,
    env: Mapping[str, str] | None = None,
    scope: str = "package",
    shape: Shape = Shape(),
) -> Any:
    """A fixture (named `fixture`) that runs one live stack for its scope: the one way a test
    package gets the real processes."""

    def stack(infra: Endpoints, service_env: dict[str, str]) -> Iterator[LiveStack]:
        with run_live_stack(infra, service_env, name=name, env=env, shape=shape) as live:
            yield live

    LIVE_STACK_FIXTURES.add(fixture)
    return pytest.fixture(scope=scope, name=fixture)(stack)  # type: ignore[call-overload]


async def insert_user(
    pool: Any, live: LiveStack, role: str = "customer"
) -> tuple[str, dict[str, str]]:
    """A user row (no slow password hash) and its auth headers, for tests with many buyers."""
    from booking.store.users import insert_user as insert_user_row

    row = await insert_user_row(
        pool,
        email=f"{uuid.uuid4().hex[:12]}@test.local",
        name="Test",
        role=role,
        password_hash="not-a-real-hash",
    )
    assert row is not None
    return row.user_id, {"Authorization": f"Bearer {live.token(row.user_id, role)}"}
