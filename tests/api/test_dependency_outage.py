"""While Redis or PostgreSQL is unreachable every endpoint answers 503 service_unavailable with
Retry-After (never 500), readiness names the dependency, and the service recovers by itself
once it is back. The app reaches both servers through a TCP proxy the test cuts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from booking.app import create_app
from booking.settings import Settings
from tests.api.conftest import event_payload
from tests.integration.tcp_proxy import TcpProxy


@dataclass
class Outage:
    client: httpx.AsyncClient
    redis: TcpProxy
    postgres: TcpProxy


@pytest.fixture
async def outage(
    service_env: dict[str, str], clean_db: Any, migrated_database: str
) -> AsyncIterator[Outage]:
    redis_proxy, redis_url = await TcpProxy.to_url(service_env["REDIS_URL"])
    pg_proxy, database_url = await TcpProxy.to_url(migrated_database)
    settings = Settings.from_env(
        {
            **service_env,
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "HOLD_TTL_S": "600",
        }
    )
    application = create_app(settings)
    try:
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://booking") as http:
                try:
                    yield Outage(http, redis_proxy, pg_proxy)
                finally:
                    # Shut down with both back, as after an outage.
                    for proxy in (redis_proxy, pg_proxy):
                        if proxy._server is None:
                            await proxy.restore()
    finally:
        await redis_proxy.close()
        await pg_proxy.close()


async def _published_event(client: httpx.AsyncClient, make_user: Any) -> dict[str, Any]:
    _, organizer = await make_user("organizer")
    created = await client.post("/api/v1/events", json=event_payload(), headers=organizer)
    assert created.status_code == 201, created.text
    event_id = created.json()["event_id"]
    published = await client.post(f"/api/v1/events/{event_id}/publish", headers=organizer)
    assert published.status_code == 200, published.text
    return dict(published.json())


def _assert_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "service_unavailable"
    assert int(answer.headers["retry-after"]) >= 1


async def _reserve(client: httpx.AsyncClient, event: dict[str, Any], buyer: Any) -> httpx.Response:
    return await client.post(
        "/api/v1/bookings/reserve",
        json={
            "event_id": event["event_id"],
            "zone_id": event["zones"][0]["zone_id"],
            "quantity": 1,
        },
        headers={**buyer, "Idempotency-Key": uuid.uuid4().hex},
    )


async def _until_ok(call: Any, status: int, within_s: float = 10.0) -> httpx.Response:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        answer: httpx.Response = await call()
        if answer.status_code == status or asyncio.get_running_loop().time() > deadline:
            return answer
        await asyncio.sleep(0.2)


async def test_redis_down_answers_503_then_recovers(outage: Outage, make_user: Any) -> None:
    client = outage.client
    event = await _published_event(client, make_user)
    _, buyer = await make_user()
    assert (await _reserve(client, event, buyer)).status_code == 201

    await outage.redis.cut()
    _assert_unavailable(await _reserve(client, event, buyer))
    _assert_unavailable(await client.get(f"/api/v1/events/{event['event_id']}/availability"))
    ready = await client.get("/api/v1/ready")
    _assert_unavailable(ready)
    assert ready.json()["dependencies"] == {"redis": "down", "postgres": "up"}

    await outage.redis.restore()
    answer = await _until_ok(lambda: _reserve(client, event, buyer), 201)
    assert answer.status_code == 201, answer.text
    assert (await client.get("/api/v1/ready")).status_code == 200


async def test_postgres_down_answers_503_then_recovers(
    outage: Outage, make_user: Any, clean_db: Any
) -> None:
    client = outage.client
    event = await _published_event(client, make_user)
    _, buyer = await make_user()
    assert (await _reserve(client, event, buyer)).status_code == 201

    await outage.postgres.cut()
    started = asyncio.get_running_loop().time()
    _assert_unavailable(await _reserve(client, event, buyer))
    _assert_unavailable(await client.get(f"/api/v1/events/{event['event_id']}"))
    _assert_unavailable(await client.get("/api/v1/bookings", headers=buyer))
    ready = await client.get("/api/v1/ready")
    _assert_unavailable(ready)
    assert ready.json()["dependencies"] == {"redis": "up", "postgres": "down"}
    assert asyncio.get_running_loop().time() - started < 10  # fails fast, no hanging

    await outage.postgres.restore()
    answer = await _until_ok(lambda: _reserve(client, event, buyer), 201)
    assert answer.status_code == 201, answer.text
    assert (await client.get("/api/v1/ready")).status_code == 200
    # The refused reserve left no seat held: Redis and PostgreSQL agree on two held tickets.
    held = await clean_db.fetchval(
        "SELECT held FROM zones WHERE zone_id = $1", uuid.UUID(event["zones"][0]["zone_id"])
    )
    assert held == 2
    availability = await client.get(f"/api/v1/events/{event['event_id']}/availability")
    assert availability.status_code == 200, availability.text
