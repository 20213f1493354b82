"""sweep.lua: only due holds, bounded batches, no double release under concurrent sweepers."""

from __future__ import annotations

import asyncio
from collections import Counter

import redis.asyncio as aioredis

from booking.inventory.keys import event_keys
from booking.inventory.scripts import Scripts
from tests.lua.invariants import NOW, TTL_MS, assert_consistent, load_event, reserve


async def test_sweep_releases_only_due_holds(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, ga=10, seats=4)
    due = await reserve(scripts, event_id, quantity=2, now_ms=NOW)
    due_seats = await reserve(scripts, event_id, seats=["A1", "A2"], now_ms=NOW + 1)
    live = await reserve(scripts, event_id, quantity=3, now_ms=NOW + 2)
    confirmed = await reserve(scripts, event_id, seats=["A3"], now_ms=NOW)
    await scripts.confirm(event_id, confirmed.hold.booking_id, now_ms=NOW)
    await scripts.mark_durable(event_id, due.hold.booking_id)

    result = await scripts.sweep(event_id, now_ms=NOW + 1 + TTL_MS)
    swept = {s.hold.booking_id: s for s in result.expired}
    assert set(swept) == {due.hold.booking_id, due_seats.hold.booking_id}
    assert not result.more
    assert all(s.hold.status == "EXPIRED" for s in swept.values())
    assert not swept[due.hold.booking_id].was_pending
    assert swept[due_seats.hold.booking_id].was_pending
    assert (await scripts.get_hold(event_id, live.hold.booking_id)).status == "RESERVED"  # type: ignore[union-attr]
    zones = await scripts.availability(event_id)
    assert (zones["ga"].available, zones["seated"].available) == (7, 3)
    await assert_consistent(redis, event_id)
    assert (await scripts.sweep(event_id, now_ms=NOW + 1 + TTL_MS)).expired == ()


async def test_sweep_in_bounded_batches(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, ga=30)
    for n in range(25):
        await reserve(scripts, event_id, user=f"u{n}", quantity=1, now_ms=NOW + n)
    later = NOW + 100 + TTL_MS
    sizes = []
    while True:
        result = await scripts.sweep(event_id, limit=10, now_ms=later)
        sizes.append(len(result.expired))
        if not result.more:
            break
    assert sizes == [10, 10, 5]
    assert await redis.zcard(event_keys(event_id).expiry) == 0
    await assert_consistent(redis, event_id)


async def test_concurrent_sweeps_never_double_release(
    pooled_scripts: Scripts, pooled_redis: aioredis.Redis, event_id: str
) -> None:
    scripts = pooled_scripts
    await load_event(scripts, event_id, ga=300, seats=100)
    await asyncio.gather(
        *(reserve(scripts, event_id, user=f"u{n}", quantity=1) for n in range(300)),
        *(reserve(scripts, event_id, user=f"s{n}", seats=[f"A{n + 1}"]) for n in range(100)),
    )

    async def sweeper() -> list[str]:
        released: list[str] = []
        while True:
            result = await scripts.sweep(event_id, limit=7, now_ms=NOW + TTL_MS)
            released += [s.hold.booking_id for s in result.expired]
            if not result.expired and not result.more:
                return released

    batches = await asyncio.gather(*(sweeper() for _ in range(6)))
    counts = Counter(b for batch in batches for b in batch)
    assert len(counts) == 400 and set(counts.values()) == {1}
    assert sum(1 for batch in batches if batch) >= 2  # the sweepers really interleaved
    zones = await scripts.availability(event_id)
    assert (zones["ga"].available, zones["seated"].available) == (300, 100)
    await assert_consistent(pooled_redis, event_id)


async def test_stale_index_entries_are_dropped_without_effect(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(scripts, event_id, ga=5)
    paid = await reserve(scripts, event_id, quantity=2)
    await scripts.confirm(event_id, paid.hold.booking_id, now_ms=NOW)
    expiry = event_keys(event_id).expiry
    await redis.zadd(expiry, {paid.hold.booking_id: NOW, "no-such-booking": NOW})
    result = await scripts.sweep(event_id, now_ms=NOW + TTL_MS)
    assert result.expired == () and await redis.zcard(expiry) == 0
    assert (await scripts.get_hold(event_id, paid.hold.booking_id)).status == "CONFIRMED"  # type: ignore[union-attr]
    await assert_consistent(redis, event_id)
