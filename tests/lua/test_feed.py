"""Seat updates published by the scripts, read through a real pub/sub subscription."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from booking.domain import rfc3339_of_ms
from booking.errors import SeatUnavailableError
from booking.inventory.keys import event_keys
from booking.inventory.scripts import Scripts
from tests.lua.invariants import NOW, TTL_MS, load_event, next_message, reserve, subscribe_feed


@pytest.fixture
async def feed(redis: aioredis.Redis, event_id: str) -> AsyncIterator[Any]:
    pubsub = await subscribe_feed(redis, event_keys(event_id).feed)
    try:
        yield pubsub
    finally:
        await pubsub.aclose()


async def _next(pubsub: Any) -> dict[str, Any]:
    message = await next_message(pubsub)
    assert message is not None, "no feed message"
    return orjson.loads(message)


async def test_reserve_cancel_confirm_expiry_publish(
    scripts: Scripts, event_id: str, feed: Any
) -> None:
    await load_event(scripts, event_id, ga=10, seats=4)
    held = await reserve(scripts, event_id, user="buyer-secret", seats=["A1", "A2"])
    booking_id = held.hold.booking_id
    reserved = await _next(feed)
    assert reserved == {
        "type": "seat_update",
        "event_id": event_id,
        "zone_id": "seated",
        "event_type": "SEAT_RESERVED",
        "seats": ["A1", "A2"],
        "quantity": 2,
        "available": 2,
        "booking_id": booking_id,
        "timestamp": rfc3339_of_ms(NOW),
    }

    await scripts.release(event_id, booking_id, now_ms=NOW + 1)
    cancelled, available = await _next(feed), await _next(feed)
    assert (cancelled["event_type"], cancelled["available"]) == ("SEAT_CANCELLED", 2)
    assert (available["event_type"], available["available"]) == ("SEAT_AVAILABLE", 4)
    assert available["seats"] == ["A1", "A2"] and available["timestamp"].endswith(".001Z")

    paid = await reserve(scripts, event_id, quantity=3)
    assert (await _next(feed))["event_type"] == "SEAT_RESERVED"
    await scripts.confirm(event_id, paid.hold.booking_id, now_ms=NOW)
    confirmed = await _next(feed)
    assert (confirmed["event_type"], confirmed["quantity"], confirmed["available"]) == (
        "SEAT_CONFIRMED",
        3,
        7,
    )
    assert "seats" not in confirmed

    lapsing = await reserve(scripts, event_id, quantity=2)
    assert (await _next(feed))["available"] == 5
    await scripts.sweep(event_id, now_ms=NOW + TTL_MS)
    expired = await _next(feed)
    assert (expired["event_type"], expired["booking_id"], expired["available"]) == (
        "SEAT_AVAILABLE",
        lapsing.hold.booking_id,
        7,
    )
    assert await next_message(feed, wait_s=0.2) is None


async def test_refusals_publish_nothing_and_no_buyer_identity(
    scripts: Scripts, event_id: str, feed: Any
) -> None:
    await load_event(scripts, event_id, seats=2)
    await reserve(scripts, event_id, user="buyer-secret", seats=["A1"])
    message = await next_message(feed)
    assert message is not None and "buyer-secret" not in message
    with pytest.raises(SeatUnavailableError, match="A1"):
        await reserve(scripts, event_id, user="u2", seats=["A1"])
    assert await next_message(feed, wait_s=0.2) is None
