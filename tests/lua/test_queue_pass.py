"""Queue passes in reserve.lua: required, bound to a user, expiring, consumed once."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from booking import errors
from booking.inventory.keys import event_keys
from booking.inventory.scripts import Scripts
from tests.lua.invariants import NOW, add_pass, load_event, reserve


@pytest.fixture
async def queued_event(scripts: Scripts, redis: aioredis.Redis, event_id: str) -> str:
    await load_event(scripts, event_id, ga=10, seats=4, queue_enabled=True)
    await add_pass(redis, event_id, "pass-u1", "u1", NOW + 60_000)
    await add_pass(redis, event_id, "pass-old", "u1", NOW)
    return event_id


async def _assert_spent(
    scripts: Scripts, redis: aioredis.Redis, event_id: str, pass_id: str
) -> None:
    """The pass is gone from Redis and a reserve with it is refused."""
    keys = event_keys(event_id)
    assert await redis.hget(keys.passes, pass_id) is None
    assert await redis.zscore(keys.passes_active, pass_id) is None
    with pytest.raises(errors.QueuePassInvalidError):
        await reserve(scripts, event_id, quantity=1, pass_id=pass_id)


async def test_pass_required(scripts: Scripts, queued_event: str) -> None:
    with pytest.raises(errors.QueuePassRequiredError):
        await reserve(scripts, queued_event, quantity=1)


@pytest.mark.parametrize(
    ("user", "pass_id"),
    [("u1", "no-such-pass"), ("u2", "pass-u1"), ("u1", "pass-old")],
    ids=["unknown", "other-user", "expired"],
)
async def test_pass_invalid(scripts: Scripts, queued_event: str, user: str, pass_id: str) -> None:
    with pytest.raises(errors.QueuePassInvalidError):
        await reserve(scripts, queued_event, user=user, quantity=1, pass_id=pass_id)


async def test_pass_is_consumed_once(
    scripts: Scripts, redis: aioredis.Redis, queued_event: str
) -> None:
    held = await reserve(scripts, queued_event, quantity=1, pass_id="pass-u1")
    assert held.hold.status == "RESERVED"
    await _assert_spent(scripts, redis, queued_event, "pass-u1")


async def test_refused_reservation_keeps_the_pass(
    scripts: Scripts, redis: aioredis.Redis, queued_event: str
) -> None:
    await add_pass(redis, queued_event, "pass-u2", "u2", NOW + 60_000)
    await reserve(scripts, queued_event, user="u2", seats=["A1"], pass_id="pass-u2")
    with pytest.raises(errors.SeatUnavailableError):
        await reserve(scripts, queued_event, seats=["A1"], pass_id="pass-u1")
    retry = await reserve(scripts, queued_event, seats=["A2"], pass_id="pass-u1")
    assert retry.hold.seats == ("A2",)


async def test_a_hold_never_acknowledged_gives_its_pass_back(
    scripts: Scripts, redis: aioredis.Redis, queued_event: str
) -> None:
    """PostgreSQL refused the hold (or was down): the booking service releases it while it is
    still pending, and the buyer, who was told no, can try again with the same pass."""
    keys = event_keys(queued_event)
    refused = await reserve(scripts, queued_event, quantity=1, pass_id="pass-u1")
    assert await redis.hget(keys.passes, "pass-u1") is None
    await scripts.release(queued_event, refused.hold.booking_id, reason="CANCELLED", now_ms=NOW)
    assert await redis.hget(keys.passes, "pass-u1") == f"u1|{NOW + 60_000}"
    assert await redis.zscore(keys.passes_active, "pass-u1") == NOW + 60_000
    again = await reserve(scripts, queued_event, quantity=1, pass_id="pass-u1")
    assert again.hold.status == "RESERVED"


async def test_an_acknowledged_hold_keeps_its_pass_spent(
    scripts: Scripts, redis: aioredis.Redis, queued_event: str
) -> None:
    held = await reserve(scripts, queued_event, quantity=1, pass_id="pass-u1")
    await scripts.mark_durable(queued_event, held.hold.booking_id)
    await scripts.release(queued_event, held.hold.booking_id, reason="CANCELLED", now_ms=NOW)
    await _assert_spent(scripts, redis, queued_event, "pass-u1")


async def test_an_expired_pass_is_not_given_back(
    scripts: Scripts, redis: aioredis.Redis, queued_event: str
) -> None:
    keys = event_keys(queued_event)
    refused = await reserve(scripts, queued_event, quantity=1, pass_id="pass-u1")
    later = NOW + 60_000
    await scripts.release(queued_event, refused.hold.booking_id, reason="CANCELLED", now_ms=later)
    assert await redis.hget(keys.passes, "pass-u1") is None
    assert await redis.zscore(keys.passes_active, "pass-u1") is None


async def test_replay_after_the_pass_was_consumed(scripts: Scripts, queued_event: str) -> None:
    request: dict[str, Any] = {
        "quantity": 1,
        "pass_id": "pass-u1",
        "idempotency_key": "k",
        "fingerprint": "f",
    }
    first = await reserve(scripts, queued_event, **request)
    await scripts.mark_durable(queued_event, first.hold.booking_id)
    again = await reserve(scripts, queued_event, **request)
    assert again.replay and again.hold.booking_id == first.hold.booking_id


async def test_pass_ignored_without_queue(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, ga=5)
    await add_pass(redis, event_id, "p", "u1", NOW + 60_000)
    await reserve(scripts, event_id, quantity=1)
    await reserve(scripts, event_id, quantity=1, pass_id="p")
    assert await redis.hget(event_keys(event_id).passes, "p") == f"u1|{NOW + 60_000}"
