"""Issue acceptance (fast path, real processes): concurrent buyers drain a zone through the
gateway; PostgreSQL and Redis agree afterwards; cancel returns seats at once; lapsed holds go back
on sale and are sold to others."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.e2e.conftest import E2E_HOLD_TTL_S

CAPACITY = 40


async def _event(gateway: httpx.AsyncClient, organizer: dict[str, str]) -> dict[str, Any]:
    created = await gateway.post(
        "/events",
        headers=organizer,
        json={
            "name": f"drop-{uuid.uuid4().hex[:6]}",
            "venue": "Loopback",
            "starts_at": "2031-01-01T20:00:00Z",
            "sale_starts_at": "2021-01-01T10:00:00Z",
            "max_per_user": 4,
            "currency": "EUR",
            "zones": [{"name": "Floor", "capacity": CAPACITY, "price_minor": 2500}],
        },
    )
    assert created.status_code == 201, created.text
    event = created.json()
    published = await gateway.post(f"/events/{event['event_id']}/publish", headers=organizer)
    assert published.status_code == 200, published.text
    return published.json()


async def _reserve(
    gateway: httpx.AsyncClient, headers: dict[str, str], event: dict[str, Any], quantity: int
) -> httpx.Response:
    return await gateway.post(
        "/bookings/reserve",
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "event_id": event["event_id"],
            "zone_id": event["zones"][0]["zone_id"],
            "quantity": quantity,
        },
    )


async def _stats(gateway: httpx.AsyncClient, admin: dict[str, str], event_id: str) -> Any:
    answer = await gateway.get(f"/admin/events/{event_id}/stats", headers=admin)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _agree(stats: dict[str, Any]) -> None:
    zone = stats["zones"][0]
    assert zone["available"] + zone["held"] + zone["sold"] == CAPACITY
    assert zone["postgres"] == {"held": zone["held"], "sold": zone["sold"]}
    assert zone["available"] >= 0


async def test_concurrent_buyers_drain_then_holds_lapse_and_resell(
    gateway: httpx.AsyncClient, e2e_user: Any
) -> None:
    _, organizer = await e2e_user("organizer")
    _, admin = await e2e_user("admin")
    event = await _event(gateway, organizer)
    buyers = [(await e2e_user())[1] for _ in range(60)]

    answers = await asyncio.gather(
        *[_reserve(gateway, buyer, event, 1 + i % 2) for i, buyer in enumerate(buyers)]
    )
    won = [
        (a.json(), buyer) for a, buyer in zip(answers, buyers, strict=True) if a.status_code == 201
    ]
    refused = [a for a in answers if a.status_code != 201]
    assert sum(booking["quantity"] for booking, _ in won) == CAPACITY
    assert {a.status_code for a in refused} == {409}
    assert {a.json()["code"] for a in refused} == {"sold_out"}

    stats = await _stats(gateway, admin, event["event_id"])
    _agree(stats)
    assert (stats["available"], stats["held"]) == (0, CAPACITY)

    # Cancel gives the seats back at once.
    (cancelled, owner), (lapsing, lapsing_owner) = won[0], won[1]
    answer = await gateway.post(f"/bookings/{cancelled['booking_id']}/cancel", headers=owner)
    assert answer.status_code == 200 and answer.json()["status"] == "CANCELLED"
    availability = (await gateway.get(f"/events/{event['event_id']}/availability")).json()
    assert availability["zones"][0]["available"] == cancelled["quantity"]

    # Every other hold lapses after HOLD_TTL_S; seat-release puts the seats back on sale.
    async with asyncio.timeout(E2E_HOLD_TTL_S + 15):
        while True:
            stats = await _stats(gateway, admin, event["event_id"])
            if stats["available"] == CAPACITY and stats["zones"][0]["postgres"]["held"] == 0:
                break
            await asyncio.sleep(0.5)
    _agree(stats)
    lapsed = await gateway.get(f"/bookings/{lapsing['booking_id']}", headers=lapsing_owner)
    assert lapsed.json()["status"] == "EXPIRED"

    # ... and others buy them.
    late = [(await e2e_user())[1] for _ in range(10)]
    again = await asyncio.gather(*[_reserve(gateway, buyer, event, 4) for buyer in late])
    assert sum(a.json()["quantity"] for a in again if a.status_code == 201) == CAPACITY
    _agree(await _stats(gateway, admin, event["event_id"]))
