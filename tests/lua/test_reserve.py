"""reserve.lua: checks, their order, idempotency and the per-user limit on the real Redis."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from booking import errors
from booking.inventory.keys import LIVE_EVENTS, event_keys
from booking.inventory.lua_errors import EventNotLoadedError
from booking.inventory.scripts import Scripts
from tests.lua.invariants import NOW, TTL_MS, assert_consistent, load_event, reserve


async def test_ga_reserve_holds_quantity_at_server_price(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, ga=10, price=1500)
    result = await reserve(scripts, event_id, quantity=3)
    hold = result.hold
    assert not result.replay
    assert (hold.status, hold.quantity, hold.amount_minor) == ("RESERVED", 3, 4500)
    assert (hold.created_ms, hold.deadline_ms) == (NOW, NOW + TTL_MS)
    zones = await scripts.availability(event_id)
    assert (zones["ga"].available, zones["ga"].held, zones["ga"].capacity) == (7, 3, 10)
    assert await scripts.get_hold(event_id, hold.booking_id) == hold
    assert await redis.hget(event_keys(event_id).pending, hold.booking_id) == "1"
    await assert_consistent(redis, event_id)


async def test_seated_reserve_is_all_or_nothing(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, seats=5)
    first = await reserve(scripts, event_id, seats=["A1", "A2"])
    assert first.hold.seats == ("A1", "A2")
    assert first.hold.amount_minor == 2 * 5000
    with pytest.raises(errors.SeatUnavailableError, match="A2"):
        await reserve(scripts, event_id, user="u2", seats=["A3", "A2"])
    state = await assert_consistent(redis, event_id)
    assert state["seats"]["seated:A3"] == ""  # nothing of the refused request was taken
    assert (await scripts.availability(event_id))["seated"].available == 3


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"zone_id": "nope", "quantity": 1}, "zone_id"),
        ({"seats": ["A1", "Z9"]}, "seats"),
        ({"seats": ["A1", "A1"]}, "seats"),
        ({"zone_id": "seated", "quantity": 1}, "seats"),
        ({"zone_id": "ga", "seats": ["A1"]}, "seats"),
        ({"quantity": 0}, "quantity"),
    ],
)
async def test_invalid_requests_name_the_field(
    scripts: Scripts, redis: aioredis.Redis, event_id: str, kwargs: dict[str, Any], field: str
) -> None:
    await load_event(scripts, event_id, ga=5, seats=5)
    with pytest.raises(errors.InvalidRequestError) as caught:
        await reserve(scripts, event_id, **kwargs)
    assert caught.value.errors is not None and caught.value.errors[0]["field"] == field
    state = await assert_consistent(redis, event_id)
    assert state["holds"] == {}


async def test_sold_out_tells_what_is_left(scripts: Scripts, event_id: str) -> None:
    await load_event(scripts, event_id, ga=3)
    await reserve(scripts, event_id, quantity=2)
    with pytest.raises(errors.SoldOutError, match="only 1 left"):
        await reserve(scripts, event_id, user="u2", quantity=2)
    await reserve(scripts, event_id, user="u2", quantity=1)
    with pytest.raises(errors.SoldOutError, match=r"^sold out$"):
        await reserve(scripts, event_id, user="u3", quantity=1)


async def test_seated_zone_sold_out(scripts: Scripts, event_id: str) -> None:
    await load_event(scripts, event_id, seats=2)
    await reserve(scripts, event_id, seats=["A1", "A2"])
    with pytest.raises(errors.SoldOutError):
        await reserve(scripts, event_id, user="u2", seats=["A1"])


@pytest.mark.parametrize(
    ("meta", "now_ms"),
    [
        ({"status": "draft"}, NOW),
        ({"status": "closed"}, NOW),
        ({"sale_starts_ms": NOW + 1}, NOW),
    ],
)
async def test_sale_not_open(
    scripts: Scripts, event_id: str, meta: dict[str, Any], now_ms: int
) -> None:
    await load_event(scripts, event_id, ga=5, **meta)
    with pytest.raises(errors.SaleNotOpenError):
        await reserve(scripts, event_id, quantity=1, now_ms=now_ms)


async def test_sale_opens_at_its_start(scripts: Scripts, event_id: str) -> None:
    await load_event(scripts, event_id, ga=5, sale_starts_ms=NOW)
    assert (await reserve(scripts, event_id, quantity=1, now_ms=NOW)).hold.status == "RESERVED"


async def test_event_without_inventory(scripts: Scripts, event_id: str) -> None:
    with pytest.raises(EventNotLoadedError):
        await reserve(scripts, event_id, quantity=1)


async def test_user_limit_counts_holds_and_confirmed_and_release_gives_it_back(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, ga=50, max_per_user=4)
    first = await reserve(scripts, event_id, quantity=2)
    await scripts.confirm(event_id, first.hold.booking_id, now_ms=NOW)
    second = await reserve(scripts, event_id, quantity=1)
    with pytest.raises(errors.UserLimitExceededError, match="1 more"):
        await reserve(scripts, event_id, quantity=2)
    await reserve(scripts, event_id, user="u2", quantity=4)  # the limit is per user
    await scripts.release(event_id, second.hold.booking_id, now_ms=NOW)
    await reserve(scripts, event_id, quantity=2)
    with pytest.raises(errors.UserLimitExceededError):
        await reserve(scripts, event_id, quantity=1)
    state = await assert_consistent(redis, event_id)
    assert state["users"] == {"u1": 4, "u2": 4}


async def test_idempotent_replay_takes_seats_once(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, ga=10)
    request: dict[str, Any] = {"quantity": 2, "idempotency_key": "key-1", "fingerprint": "fp-a"}
    first = await reserve(scripts, event_id, **request)
    with pytest.raises(errors.IdempotencyInFlightError):
        await reserve(scripts, event_id, **request)
    await scripts.mark_durable(event_id, first.hold.booking_id)
    again = await reserve(scripts, event_id, **request)
    assert again.replay and again.hold == first.hold
    assert (await scripts.availability(event_id))["ga"].available == 8
    with pytest.raises(errors.IdempotencyKeyReusedError):
        await reserve(scripts, event_id, **{**request, "fingerprint": "fp-b"})
    # the key is per user: another user's identical key is a new booking
    other = await reserve(scripts, event_id, user="u2", **request)
    assert not other.replay and other.hold.booking_id != first.hold.booking_id
    await assert_consistent(redis, event_id)


async def test_replay_is_answered_before_the_sale_checks(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, ga=1)
    request: dict[str, Any] = {"quantity": 1, "idempotency_key": "k", "fingerprint": "fp"}
    first = await reserve(scripts, event_id, **request)
    await scripts.mark_durable(event_id, first.hold.booking_id)
    await redis.hset(event_keys(event_id).meta, "status", "closed")
    again = await reserve(scripts, event_id, **request)  # sold out and closed, still a replay
    assert again.replay and again.hold.booking_id == first.hold.booking_id


async def test_booking_id_is_never_reused(scripts: Scripts, event_id: str) -> None:
    await load_event(scripts, event_id, ga=10)
    first = await reserve(scripts, event_id, quantity=1)
    with pytest.raises(errors.InvalidStateError):
        await reserve(scripts, event_id, booking_id=first.hold.booking_id, quantity=1)


async def test_a_hold_released_before_it_was_durable_is_not_replayed(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, ga=5)
    request: dict[str, Any] = {"quantity": 2, "idempotency_key": "k", "fingerprint": "fp"}
    failed = await reserve(scripts, event_id, **request)
    await scripts.release(event_id, failed.hold.booking_id)  # its PostgreSQL write failed
    retry = await reserve(scripts, event_id, **request)
    assert not retry.replay and retry.hold.booking_id != failed.hold.booking_id
    lapsed = await reserve(scripts, event_id, user="u2", **request, now_ms=NOW)
    await scripts.sweep(event_id, now_ms=NOW + TTL_MS)  # swept before its commit
    fresh = await reserve(scripts, event_id, user="u2", **request, now_ms=NOW + TTL_MS)
    assert not fresh.replay and fresh.hold.booking_id != lapsed.hold.booking_id
    await assert_consistent(redis, event_id)


async def test_a_durable_released_hold_is_still_replayed(scripts: Scripts, event_id: str) -> None:
    await load_event(scripts, event_id, ga=5)
    request: dict[str, Any] = {"quantity": 2, "idempotency_key": "k", "fingerprint": "fp"}
    first = await reserve(scripts, event_id, **request)
    await scripts.mark_durable(event_id, first.hold.booking_id)
    await scripts.release(event_id, first.hold.booking_id)
    again = await reserve(scripts, event_id, **request)
    assert again.replay and again.hold.status == "CANCELLED"


async def test_holds_of_a_batch_leave_pending_together_and_only_they(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    other = f"{event_id}-other"
    try:
        await load_event(scripts, event_id, ga=10)
        await load_event(scripts, other, ga=10)
        mine = [(await reserve(scripts, event_id, quantity=1)).hold.booking_id for _ in range(3)]
        theirs = (await reserve(scripts, other, quantity=1)).hold.booking_id
        kept = (await reserve(scripts, event_id, quantity=1)).hold.booking_id
        await scripts.mark_all_durable([(event_id, b) for b in mine] + [(other, theirs)])
        assert await redis.hkeys(event_keys(event_id).pending) == [kept]
        assert await redis.hkeys(event_keys(other).pending) == []
        await scripts.mark_all_durable([(event_id, kept)])  # one event: a single HDEL
        assert await redis.hkeys(event_keys(event_id).pending) == []
    finally:
        await redis.delete(*event_keys(other).stored())
        await redis.zrem(LIVE_EVENTS, other)
