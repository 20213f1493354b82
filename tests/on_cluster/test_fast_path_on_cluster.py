"""The fast path through two gateways and two booking processes on a Redis Cluster: buyers drain
a zone concurrently (half through each gateway), the live feed streams every change to a
watcher on the other gateway, buyers pay and are confirmed, PostgreSQL and Redis agree, and a
cancelled hold is back on sale at once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import httpx

from tests.e2e.queue_sse import frames
from tests.live import LiveStack

CAPACITY = 30


async def _event(gateway: httpx.AsyncClient, organizer: dict[str, str]) -> dict[str, Any]:
    created = await gateway.post(
        "/events",
        headers=organizer,
        json={
            "name": f"cluster-{uuid.uuid4().hex[:6]}",
            "venue": "Loopback",
            "starts_at": "2031-01-01T20:00:00Z",
            "sale_starts_at": "2021-01-01T10:00:00Z",
            "max_per_user": 2,
            "currency": "EUR",
            "zones": [{"name": "Floor", "capacity": CAPACITY, "price_minor": 2500}],
        },
    )
    assert created.status_code == 201, created.text
    published = await gateway.post(
        f"/events/{created.json()['event_id']}/publish", headers=organizer
    )
    assert published.status_code == 200, published.text
    return dict(published.json())


async def _stats(gateway: httpx.AsyncClient, admin: dict[str, str], event_id: str) -> Any:
    answer = await gateway.get(f"/admin/events/{event_id}/stats", headers=admin)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _watch(url: str, seen: list[dict[str, Any]], ready: asyncio.Event) -> None:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        async for frame in frames(response):
            ready.set()
            seen.append({"event": frame.event, "data": frame.data})


async def test_buyers_drain_pay_and_watch_through_two_gateways(
    cluster_stack: LiveStack, gateways: list[httpx.AsyncClient], cluster_user: Any
) -> None:
    first, second = gateways
    _, admin = await cluster_user("admin")
    event = await _event(first, admin)
    event_id, zone_id = event["event_id"], event["zones"][0]["zone_id"]

    seen: list[dict[str, Any]] = []
    ready = asyncio.Event()
    feed_url = f"{cluster_stack.gateway_urls[1]}/api/v1/events/{event_id}/availability/stream"
    watcher = asyncio.create_task(_watch(feed_url, seen, ready))
    async with asyncio.timeout(15):
        await ready.wait()  # the first frame (the current state) arrived

    buyers = [await cluster_user() for _ in range(CAPACITY + 10)]

    async def reserve(n: int, headers: dict[str, str]) -> httpx.Response:
        return await gateways[n % 2].post(
            "/bookings/reserve",
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            json={"event_id": event_id, "zone_id": zone_id, "quantity": 1},
        )

    answers = await asyncio.gather(*(reserve(n, h) for n, (_, h) in enumerate(buyers)))
    made = [(n, a.json()["booking_id"]) for n, a in enumerate(answers) if a.status_code == 201]
    refused = [a.json()["code"] for a in answers if a.status_code != 201]
    assert len(made) == CAPACITY, refused
    assert set(refused) == {"sold_out"}, refused

    # pay for half of them (through the other gateway), cancel one
    paid = made[: CAPACITY // 2]
    for n, booking_id in paid:
        answer = await gateways[(n + 1) % 2].post(
            "/payments",
            headers={**buyers[n][1], "Idempotency-Key": uuid.uuid4().hex},
            json={"booking_id": booking_id},
        )
        assert answer.status_code == 201, answer.text
    cancel_n, cancel_id = made[-1]
    cancelled = await second.post(f"/bookings/{cancel_id}/cancel", headers=buyers[cancel_n][1])
    assert cancelled.status_code == 200, cancelled.text

    async with asyncio.timeout(60):
        while True:
            stats = await _stats(first, admin, event_id)
            zone = stats["zones"][0]
            if zone["sold"] == len(paid) and zone["postgres"]["sold"] == len(paid):
                break
            await asyncio.sleep(0.3)
    assert zone["available"] == 1 and zone["held"] == CAPACITY - len(paid) - 1
    assert zone["postgres"] == {"held": zone["held"], "sold": zone["sold"]}
    assert zone["drift"] == 0
    for n, booking_id in paid:
        booking = await second.get(f"/bookings/{booking_id}", headers=buyers[n][1])
        assert booking.json()["status"] == "CONFIRMED", booking.text

    # the watcher on the other gateway saw every change as it happened (sharded pub/sub from
    # the event's shard to whichever booking process holds its stream)
    updates: list[dict[str, Any]] = []
    async with asyncio.timeout(15):
        while True:
            updates = [f["data"] for f in seen if f["event"] == "seat_update"]
            kinds = [u["event_type"] for u in updates]
            if kinds.count("SEAT_CONFIRMED") == len(paid) and "SEAT_AVAILABLE" in kinds:
                break
            await asyncio.sleep(0.1)
    watcher.cancel()
    assert seen[0]["event"] == "availability"
    assert sum(u["quantity"] for u in updates if u["event_type"] == "SEAT_RESERVED") == CAPACITY
    assert "SEAT_CANCELLED" in kinds
    back = [u for u in updates if u["event_type"] == "SEAT_AVAILABLE"]
    assert back[-1]["available"] == 1  # the cancelled seat, back on sale
