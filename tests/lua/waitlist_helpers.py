"""Helpers of the waitlist's Lua tests: a sold-out event with a waitlist, entries, ticks."""

from __future__ import annotations

import uuid
from typing import Any

from booking.inventory.records import EventSpec, ZoneSpec
from booking.inventory.scripts import Scripts
from booking.inventory.waitlist import Offer, TickResult
from tests.lua.invariants import NOW, reserve, seat_labels

OFFER_TTL_MS = 60_000


async def load_waitlisted(
    scripts: Scripts, event_id: str, *, ga: int = 0, seats: int = 0, **meta: Any
) -> None:
    zones = []
    if ga:
        zones.append(ZoneSpec("ga", 1000, capacity=ga))
    if seats:
        zones.append(ZoneSpec("seated", 2000, seats=seat_labels(seats)))
    spec = EventSpec(
        event_id, zones=tuple(zones), waitlist_enabled=True, offer_ttl_ms=OFFER_TTL_MS, **meta
    )
    assert await scripts.load_event(spec)


async def join(
    scripts: Scripts, event_id: str, user: str, position: int, *, quantity: int, zone: str = ""
) -> str:
    entry_id = str(uuid.uuid4())
    assert await scripts.waitlist.join(
        event_id,
        user_id=user,
        entry_id=entry_id,
        zone_id=zone,
        quantity=quantity,
        position=position,
    )
    return entry_id


async def tick(scripts: Scripts, event_id: str, now_ms: int = NOW, ids: int = 10) -> TickResult:
    return await scripts.waitlist.tick(
        event_id, [str(uuid.uuid4()) for _ in range(ids)], now_ms=now_ms
    )


async def outstanding(scripts: Scripts, event_id: str) -> dict[str, Offer]:
    """user_id -> that user's outstanding offer."""
    return {
        offer.user_id: offer
        for offer in await scripts.waitlist.offers(event_id)
        if offer.status == "OUTSTANDING"
    }


async def sell_out(scripts: Scripts, event_id: str, *holds: dict[str, Any]) -> list[str]:
    """Reserves each hold (kwargs of `reserve`) for user "owner"; returns the booking ids."""
    ids = []
    for kwargs in holds:
        ids.append((await reserve(scripts, event_id, user="owner", **kwargs)).hold.booking_id)
    return ids
