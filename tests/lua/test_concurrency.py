"""No oversell under concurrent load: many real connections racing for few seats."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from typing import Any

import orjson
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


async def _outcome(call: Any) -> Any:
    try:
        return await call
    except errors.BookingError as error:
        return error


async def test_2000_reserves_for_100_ga_seats_from_500_users(
    pooled_scripts: Scripts, pooled_redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(pooled_scripts, event_id, ga=100, max_per_user=2)
    feed = await subscribe_feed(pooled_redis, event_keys(event_id).feed)
    try:
        users = [f"user-{n % 500}" for n in range(2000)]
        random.Random(7).shuffle(users)
        outcomes = await asyncio.gather(
            *(_outcome(reserve(pooled_scripts, event_id, user=user, quantity=1)) for user in users)
        )
        published: list[dict[str, Any]] = []
        while len(published) < 100:
            message = await next_message(feed)
            assert message is not None, f"feed stopped after {len(published)} messages"
            published.append(orjson.loads(message))
    finally:
        await feed.aclose()

    holds = [o for o in outcomes if not isinstance(o, Exception)]
    refusals = Counter(type(o).__name__ for o in outcomes if isinstance(o, Exception))
    assert len(holds) == 100
    assert set(refusals) <= {"SoldOutError", "UserLimitExceededError"}
    assert sum(h.hold.quantity for h in holds) == 100
    assert max(Counter(h.hold.user_id for h in holds).values()) <= 2
    zone = (await pooled_scripts.availability(event_id))["ga"]
    assert (zone.available, zone.held, zone.sold) == (0, 100, 0)
    # every intermediate state the script published: available went 99 -> 0, never below
    assert sorted(m["available"] for m in published) == list(range(100))
    await assert_consistent(pooled_redis, event_id)


async def test_200_seated_requests_over_overlapping_seats(
    pooled_scripts: Scripts, pooled_redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(pooled_scripts, event_id, seats=60)
    rng = random.Random(11)
    requests = []
    for n in range(200):
        start = rng.randint(1, 57)
        wanted = [f"A{s}" for s in range(start, start + rng.randint(1, 4)) if s <= 60]
        rng.shuffle(wanted)
        requests.append((f"user-{n}", wanted))
    outcomes = await asyncio.gather(
        *(
            _outcome(
                reserve(
                    pooled_scripts, event_id, user=user, seats=seats, booking_id=str(uuid.uuid4())
                )
            )
            for user, seats in requests
        )
    )
    holds = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert holds and refused  # the sets really overlapped
    assert all(isinstance(e, errors.SeatUnavailableError | errors.SoldOutError) for e in refused)
    for outcome, (_, seats) in zip(outcomes, requests, strict=True):
        if not isinstance(outcome, Exception):
            assert sorted(outcome.hold.seats) == sorted(seats)  # all of them, or nothing
    taken = Counter(seat for h in holds for seat in h.hold.seats)
    assert max(taken.values()) == 1, "a seat is in two holds"
    state = await assert_consistent(pooled_redis, event_id)
    owned = {f: o for f, o in state["seats"].items() if o}
    assert len(owned) == sum(taken.values())
    zone = (await pooled_scripts.availability(event_id))["seated"]
    assert zone.held == len(owned) and zone.available == 60 - len(owned)
