"""suspend.lua / unsuspend.lua: free inventory leaves the sale and comes back."""

from __future__ import annotations

import orjson
import pytest
import redis.asyncio as aioredis

from booking import errors
from booking.inventory.keys import event_keys
from booking.inventory.scripts import Scripts
from tests.lua.invariants import (
    assert_consistent,
    load_event,
    next_message,
    reserve,
    subscribe_feed,
)


async def test_seats_suspend_and_come_back(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, seats=4)
    held = await reserve(scripts, event_id, seats=["A1"])
    with pytest.raises(errors.SeatUnavailableError, match="A1"):
        await scripts.suspend(event_id, "seated", seats=["A2", "A1"])
    assert (await scripts.availability(event_id))["seated"].suspended == 0

    result = await scripts.suspend(event_id, "seated", seats=["A2", "A3"])
    assert (result.changed, result.available) == (2, 1)
    assert (await scripts.suspend(event_id, "seated", seats=["A2"])).changed == 0
    with pytest.raises(errors.SeatUnavailableError, match="A3"):
        await reserve(scripts, event_id, user="u2", seats=["A3"])
    await assert_consistent(redis, event_id)

    await scripts.release(event_id, held.hold.booking_id)
    back = await scripts.unsuspend(event_id, "seated", seats=["A1", "A2", "A3"])
    assert (back.changed, back.available) == (2, 4)
    assert (await scripts.unsuspend(event_id, "seated", seats=["A2"])).changed == 0
    await reserve(scripts, event_id, user="u2", seats=["A3"])
    await assert_consistent(redis, event_id)


async def test_ga_quantity_suspends_within_what_is_free(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, ga=10)
    await reserve(scripts, event_id, quantity=6)
    with pytest.raises(errors.SeatUnavailableError):
        await scripts.suspend(event_id, "ga", quantity=5)
    assert (await scripts.suspend(event_id, "ga", quantity=4)).available == 0
    with pytest.raises(errors.SoldOutError):
        await reserve(scripts, event_id, user="u2", quantity=1)
    with pytest.raises(errors.InvalidStateError):
        await scripts.unsuspend(event_id, "ga", quantity=5)
    assert (await scripts.unsuspend(event_id, "ga", quantity=3)).available == 3
    zone = (await scripts.availability(event_id))["ga"]
    assert (zone.suspended, zone.held, zone.sold) == (1, 6, 0)
    await assert_consistent(redis, event_id)


async def test_suspensions_are_published(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, seats=3)
    pubsub = await subscribe_feed(redis, event_keys(event_id).feed)
    try:
        await scripts.suspend(event_id, "seated", seats=["A2"])
        await scripts.unsuspend(event_id, "seated", seats=["A2"])
        suspended = orjson.loads(await next_message(pubsub) or "{}")
        available = orjson.loads(await next_message(pubsub) or "{}")
    finally:
        await pubsub.aclose()
    assert (suspended["event_type"], suspended["seats"], suspended["available"]) == (
        "SEAT_SUSPENDED",
        ["A2"],
        2,
    )
    assert (available["event_type"], available["available"]) == ("SEAT_AVAILABLE", 3)


async def test_unknown_zone_and_seat(scripts: Scripts, event_id: str) -> None:
    await load_event(scripts, event_id, seats=3)
    with pytest.raises(errors.InvalidRequestError):
        await scripts.suspend(event_id, "nope", quantity=1)
    with pytest.raises(errors.InvalidRequestError):
        await scripts.suspend(event_id, "seated", seats=["Z1"])
