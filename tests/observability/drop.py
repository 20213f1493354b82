"""A small drop driven through the real gateway, touching every path the dashboards show:
sold-out reservations, an idempotent replay, a cancel, holds that lapse, a queued event whose
pass arrives on an SSE stream, a paid booking (saga), rate-limited requests, readiness."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx

from tests.e2e.conftest import LiveStack
from tests.e2e.queue_sse import frames

CAPACITY = 6
BUYERS = 9  # three more than seats: sold_out outcomes

MakeUser = Callable[..., Awaitable[tuple[str, dict[str, str]]]]


async def create_event(
    gateway: httpx.AsyncClient, organizer: dict[str, str], *, queue: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"obs-{uuid.uuid4().hex[:6]}",
        "venue": "Loopback",
        "starts_at": "2031-01-01T20:00:00Z",
        "sale_starts_at": "2021-01-01T10:00:00Z",
        "max_per_user": 4,
        "currency": "EUR",
        "zones": [{"name": "Floor", "capacity": CAPACITY, "price_minor": 2500}],
    }
    if queue:
        body["queue"] = {"enabled": True, "max_concurrent": 5, "pass_ttl_s": 60}
    created = await gateway.post("/events", headers=organizer, json=body)
    assert created.status_code == 201, created.text
    event_id = created.json()["event_id"]
    published = await gateway.post(f"/events/{event_id}/publish", headers=organizer)
    assert published.status_code == 200, published.text
    return published.json()


async def reserve(
    gateway: httpx.AsyncClient,
    headers: dict[str, str],
    event: dict[str, Any],
    *,
    key: str | None = None,
    queue_pass: str | None = None,
) -> httpx.Response:
    extra = {"X-Queue-Pass": queue_pass} if queue_pass else {}
    return await gateway.post(
        "/bookings/reserve",
        headers={**headers, **extra, "Idempotency-Key": key or uuid.uuid4().hex},
        json={
            "event_id": event["event_id"],
            "zone_id": event["zones"][0]["zone_id"],
            "quantity": 1,
        },
    )


async def watch_availability(live_stack: LiveStack, event: dict[str, Any]) -> None:
    """Opens the live seat feed (SSE) and reads its first snapshot."""
    url = f"{live_stack.gateway_url}/api/v1/events/{event['event_id']}/availability/stream"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        async with session.get(url) as stream:
            assert stream.status == 200, await stream.text()
            async for frame in frames(stream):
                assert frame.event == "availability", frame
                return


async def sell_out(
    gateway: httpx.AsyncClient, make_user: MakeUser, event: dict[str, Any]
) -> list[Any]:
    """Reserves with more buyers than seats; returns (booking, buyer headers) of the winners."""
    buyers = [(await make_user())[1] for _ in range(BUYERS)]
    answers = await asyncio.gather(*(reserve(gateway, buyer, event) for buyer in buyers))
    won = [(a.json(), b) for a, b in zip(answers, buyers, strict=True) if a.status_code == 201]
    assert len(won) == CAPACITY, [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code != 201} == {"sold_out"}
    return won


async def replay_and_cancel(
    gateway: httpx.AsyncClient, make_user: MakeUser, event: dict[str, Any], won: list[Any]
) -> None:
    booking, owner = won[0]
    cancelled = await gateway.post(f"/bookings/{booking['booking_id']}/cancel", headers=owner)
    assert cancelled.status_code == 200, cancelled.text
    _, buyer = await make_user()
    key = uuid.uuid4().hex
    first = await reserve(gateway, buyer, event, key=key)
    again = await reserve(gateway, buyer, event, key=key)
    assert first.status_code == again.status_code == 201, again.text
    assert first.json()["booking_id"] == again.json()["booking_id"]


async def pay(gateway: httpx.AsyncClient, booking: dict[str, Any], owner: dict[str, str]) -> None:
    """Pays with the mock provider and waits for the saga to confirm the booking."""
    paid = await gateway.post(
        "/payments",
        headers={**owner, "Idempotency-Key": uuid.uuid4().hex},
        json={"booking_id": booking["booking_id"]},
    )
    assert paid.status_code == 201, paid.text
    async with asyncio.timeout(30):
        while True:
            got = await gateway.get(f"/bookings/{booking['booking_id']}", headers=owner)
            if got.json()["status"] == "CONFIRMED":
                return
            await asyncio.sleep(0.3)


async def queue_through_stream(
    live_stack: LiveStack, gateway: httpx.AsyncClient, make_user: MakeUser, event: dict[str, Any]
) -> None:
    """Joins the queue, waits for the pass on the SSE stream, reserves with it."""
    _, buyer = await make_user()
    joined = await gateway.post("/queue/join", json={"event_id": event["event_id"]}, headers=buyer)
    assert joined.status_code == 202, joined.text
    url = f"{live_stack.gateway_url}/api/v1/queue/position/{event['event_id']}/stream"
    queue_pass = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.get(url, headers=buyer) as stream:
            assert stream.status == 200, await stream.text()
            async for frame in frames(stream):
                if frame.event == "pass":
                    queue_pass = frame.data["queue_pass"]
                    break
    assert queue_pass
    answer = await reserve(gateway, buyer, event, queue_pass=queue_pass)
    assert answer.status_code == 201, answer.text


async def hit_rate_limit(gateway: httpx.AsyncClient) -> None:
    """The auth group allows a burst of 10 per IP in the test stack: the rest get 429."""
    answers = await asyncio.gather(
        *(gateway.post("/auth/refresh", json={"refresh_token": "x" * 20}) for _ in range(14))
    )
    assert 429 in {a.status_code for a in answers}


async def check_ready(live_stack: LiveStack) -> None:
    """What a readiness probe does (it keeps booking_rush_dependency_up current)."""
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{live_stack.booking_url}/api/v1/ready")
    assert answer.status_code == 200, answer.text


async def drive_drop(
    live_stack: LiveStack, gateway: httpx.AsyncClient, make_user: MakeUser
) -> None:
    _, organizer = await make_user("organizer")
    event = await create_event(gateway, organizer)
    await watch_availability(live_stack, event)
    won = await sell_out(gateway, make_user, event)
    await replay_and_cancel(gateway, make_user, event, won)
    queued = await create_event(gateway, organizer, queue=True)
    await queue_through_stream(live_stack, gateway, make_user, queued)
    booking, owner = won[1]
    await pay(gateway, booking, owner)
    await hit_rate_limit(gateway)
    await check_ready(live_stack)
