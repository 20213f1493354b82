"""release.lua and confirm.lua: state changes, idempotency, refusals."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from booking import errors
from booking.inventory.keys import event_keys
from booking.inventory.scripts import Scripts
from tests.lua.invariants import NOW, TTL_MS, assert_consistent, load_event, reserve


async def test_release_twice_is_safe(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, ga=5, seats=3)
    ga = await reserve(scripts, event_id, quantity=2)
    seated = await reserve(scripts, event_id, seats=["A1", "A3"])
    for held in (ga, seated):
        first = await scripts.release(event_id, held.hold.booking_id, now_ms=NOW + 5)
        second = await scripts.release(event_id, held.hold.booking_id, now_ms=NOW + 9)
        assert first.released and first.hold.status == "CANCELLED"
        assert first.hold.ended_ms == NOW + 5
        assert not second.released and second.hold == first.hold
    zones = await scripts.availability(event_id)
    assert (zones["ga"].available, zones["seated"].available) == (5, 3)
    state = await assert_consistent(redis, event_id)
    assert state["seats"] == {"seated:A1": "", "seated:A2": "", "seated:A3": ""}
    assert state["users"] == {}


async def test_payment_failure_cancels(scripts: Scripts, event_id: str) -> None:
    await load_event(scripts, event_id, ga=5)
    held = await reserve(scripts, event_id, quantity=1)
    released = await scripts.release(event_id, held.hold.booking_id, reason="FAILED")
    assert released.hold.status == "CANCELLED"


async def test_release_of_confirmed_needs_the_flag(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, seats=3, max_per_user=2)
    held = await reserve(scripts, event_id, seats=["A1", "A2"])
    await scripts.confirm(event_id, held.hold.booking_id, now_ms=NOW)
    with pytest.raises(errors.InvalidStateError):
        await scripts.release(event_id, held.hold.booking_id, reason="REFUNDED")
    with pytest.raises(errors.InvalidStateError):
        await scripts.release(
            event_id, held.hold.booking_id, reason="EXPIRED", allow_confirmed=True
        )
    refunded = await scripts.release(
        event_id, held.hold.booking_id, reason="REFUNDED", allow_confirmed=True
    )
    assert refunded.released and refunded.hold.status == "REFUNDED"
    zones = await scripts.availability(event_id)
    assert (zones["seated"].sold, zones["seated"].available) == (0, 3)
    await assert_consistent(redis, event_id)
    await reserve(scripts, event_id, seats=["A1", "A2"])  # allowance and seats are back


async def test_release_as_expired_only_after_the_deadline(scripts: Scripts, event_id: str) -> None:
    await load_event(scripts, event_id, ga=5)
    held = await reserve(scripts, event_id, quantity=1)
    with pytest.raises(errors.InvalidStateError):
        await scripts.release(
            event_id, held.hold.booking_id, reason="EXPIRED", now_ms=NOW + TTL_MS - 1
        )
    done = await scripts.release(
        event_id, held.hold.booking_id, reason="EXPIRED", now_ms=NOW + TTL_MS
    )
    assert done.hold.status == "EXPIRED"


async def test_release_unknown_booking(scripts: Scripts, event_id: str) -> None:
    await load_event(scripts, event_id, ga=5)
    with pytest.raises(errors.NotFoundError):
        await scripts.release(event_id, "nope")


async def test_confirm_moves_held_to_sold_once(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, ga=5)
    held = await reserve(scripts, event_id, quantity=2)
    first = await scripts.confirm(event_id, held.hold.booking_id, now_ms=NOW + TTL_MS)
    assert first.hold.status == "CONFIRMED" and not first.already_confirmed
    assert first.hold.confirmed_ms == NOW + TTL_MS
    again = await scripts.confirm(event_id, held.hold.booking_id, now_ms=NOW + TTL_MS + 1)
    assert again.already_confirmed and again.hold == first.hold
    zones = await scripts.availability(event_id)
    assert (zones["ga"].held, zones["ga"].sold, zones["ga"].available) == (0, 2, 3)
    assert await redis.zscore(event_keys(event_id).expiry, held.hold.booking_id) is None
    await assert_consistent(redis, event_id)


async def test_confirm_refuses_a_lapsed_hold(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, ga=5)
    held = await reserve(scripts, event_id, quantity=1)
    with pytest.raises(errors.ReservationExpiredError):
        await scripts.confirm(event_id, held.hold.booking_id, now_ms=NOW + TTL_MS + 1)
    await scripts.sweep(event_id, now_ms=NOW + TTL_MS + 1)
    with pytest.raises(errors.ReservationExpiredError):
        await scripts.confirm(event_id, held.hold.booking_id, now_ms=NOW)
    assert (await scripts.availability(event_id))["ga"].sold == 0
    await assert_consistent(redis, event_id)


async def test_confirm_refuses_cancelled_and_unknown(scripts: Scripts, event_id: str) -> None:
    await load_event(scripts, event_id, ga=5)
    held = await reserve(scripts, event_id, quantity=1)
    await scripts.release(event_id, held.hold.booking_id)
    with pytest.raises(errors.InvalidStateError):
        await scripts.confirm(event_id, held.hold.booking_id, now_ms=NOW)
    with pytest.raises(errors.NotFoundError):
        await scripts.confirm(event_id, "nope", now_ms=NOW)
