"""Fixtures of the waitlist tests: the in-process app of tests/api on the real servers, the
waitlist's worker step (`WaitlistTicker`, as seat-release runs it) with a steerable clock, and a
sold-out event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from booking.inventory.scripts import Scripts
from booking.waitlist.ticker import WaitlistTicker
from tests.api import conftest as api_fixtures
from tests.api.conftest import event_payload
from tests.queue.conftest import Clock

settings = api_fixtures.settings
app = api_fixtures.app
client = api_fixtures.client
token_for = api_fixtures.token_for
make_user = api_fixtures.make_user

OFFER_TTL_S = 30


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def ticker(app: Any, clean_db: Any, clock: Clock) -> AsyncIterator[WaitlistTicker]:
    """The worker's step on the app's Redis and the test database, its time steerable."""
    services = app.state.services
    scripts = Scripts(services.redis, clock=clock)
    await scripts.load()
    try:
        yield WaitlistTicker(clean_db, services.redis, scripts)
    finally:
        await scripts.aclose()


@pytest.fixture
def sold_out_event(client: httpx.AsyncClient, make_user: Any) -> Any:
    """A published event with one GA zone of `capacity`, sold out to one owner in holds of
    `holds` tickets each; returns (event, organizer headers, owner headers, booking ids)."""

    async def make(
        capacity: int = 4, holds: tuple[int, ...] = (2, 2), **overrides: Any
    ) -> tuple[dict[str, Any], dict[str, str], dict[str, str], list[str]]:
        _, organizer = await make_user("organizer")
        payload = event_payload(
            zones=[{"name": "Floor", "capacity": capacity, "price_minor": 5000}],
            waitlist={"enabled": True, "offer_ttl_s": OFFER_TTL_S},
            **overrides,
        )
        created = await client.post("/api/v1/events", json=payload, headers=organizer)
        assert created.status_code == 201, created.text
        event_id = created.json()["event_id"]
        published = await client.post(f"/api/v1/events/{event_id}/publish", headers=organizer)
        assert published.status_code == 200, published.text
        event = published.json()
        _, owner = await make_user()
        booking_ids = []
        for n, quantity in enumerate(holds):
            booking_ids.append(await reserve(client, event, owner, quantity, key=f"own-{n}"))
        return event, organizer, owner, booking_ids

    return make


async def reserve(
    client: httpx.AsyncClient,
    event: dict[str, Any],
    headers: dict[str, str],
    quantity: int,
    *,
    key: str,
    offer: str | None = None,
    expect: int = 201,
) -> Any:
    extra = {"Idempotency-Key": key}
    if offer is not None:
        extra["X-Waitlist-Offer"] = offer
    answer = await client.post(
        "/api/v1/bookings/reserve",
        json={
            "event_id": event["event_id"],
            "zone_id": event["zones"][0]["zone_id"],
            "quantity": quantity,
        },
        headers={**headers, **extra},
    )
    assert answer.status_code == expect, answer.text
    return answer.json()["booking_id"] if expect == 201 else answer.json()
