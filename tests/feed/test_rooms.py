"""Rooms of the live feed on the real Redis: one subscription per event per process, snapshot then
updates, coalesced bursts, slow watchers resynced then dropped, no buyer identity."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from booking.errors import NotFoundError
from booking.feed import Batch, LiveFeed, Watcher
from booking.inventory.keys import event_keys
from booking.inventory.scripts import Scripts
from booking.metrics import FEED_DROPPED, FEED_REDIS_MESSAGES, FEED_RESYNCS
from tests.lua.invariants import load_event, reserve


async def _numsub(redis: aioredis.Redis, channel: str) -> int:
    return int(dict(await redis.pubsub_numsub(channel))[channel])


async def _until(check: Any, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def _take(watcher: Watcher, within: float = 3.0) -> list[dict[str, Any]]:
    async with asyncio.timeout(within):
        batches = await watcher.take()
    return [message for batch in batches for message in batch.messages]


def _value(feed: LiveFeed, counter: Any, *labels: str) -> float:
    metric = counter.labels(*labels) if labels else counter
    return float(metric._value.get())


async def test_watchers_share_one_subscription_and_get_snapshot_then_updates(
    make_feed: Any, feed_scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(feed_scripts, event_id, ga=10, seats=3)
    feed = make_feed()
    channel = event_keys(event_id).feed
    watchers = [feed.watcher("sse") for _ in range(3)]
    await asyncio.gather(*(feed.watch(w, event_id) for w in watchers))
    assert await _numsub(redis, channel) == 1
    assert list(feed.rooms) == [event_id]

    for watcher in watchers:
        assert await _take(watcher) == [
            {
                "type": "availability",
                "event_id": event_id,
                "zones": [
                    {"zone_id": "ga", "capacity": 10, "available": 10},
                    {"zone_id": "seated", "capacity": 3, "available": 3},
                ],
            }
        ]
    before = _value(feed, FEED_REDIS_MESSAGES)
    held = await reserve(feed_scripts, event_id, user="u1", quantity=2)
    for watcher in watchers:
        (update,) = await _take(watcher)
        assert update["event_type"] == "SEAT_RESERVED"
        assert (update["zone_id"], update["quantity"], update["available"]) == ("ga", 2, 8)
        assert update["booking_id"] == held.hold.booking_id
    assert _value(feed, FEED_REDIS_MESSAGES) - before == 1  # one per change, not per watcher

    late = feed.watcher("ws")
    await feed.watch(late, event_id)
    (snapshot,) = await _take(late)
    assert snapshot["zones"][0]["available"] == 8  # the room's state, consistent with updates

    for watcher in [*watchers, late]:
        feed.close(watcher)
    assert feed.rooms == {}
    await _until(lambda: _numsub_is(redis, channel, 0))


async def _numsub_is(redis: aioredis.Redis, channel: str, count: int) -> bool:
    return await _numsub(redis, channel) == count


async def test_a_burst_is_coalesced_into_one_batch(
    make_feed: Any, feed_scripts: Scripts, event_id: str
) -> None:
    await load_event(feed_scripts, event_id, ga=20)
    feed = make_feed(coalesce_s=0.3)
    watcher = feed.watcher("sse")
    await feed.watch(watcher, event_id)
    await _take(watcher)

    started = time.monotonic()
    await reserve(feed_scripts, event_id, user="first", quantity=1)
    assert len(await _take(watcher)) == 1  # after a quiet spell: at once
    assert time.monotonic() - started < 0.2
    for n in range(5):
        await reserve(feed_scripts, event_id, user=f"burst-{n}", quantity=1)
    async with asyncio.timeout(2):
        batches = await watcher.take()
    assert [len(batch.messages) for batch in batches] == [5]
    assert [m["available"] for m in batches[0].messages] == [18, 17, 16, 15, 14]
    assert batches[0].sse.count(b"event: seat_update\n") == 5
    feed.close(watcher)


async def test_a_slow_watcher_is_resynced_then_dropped_and_never_slows_the_others(
    make_feed: Any, feed_scripts: Scripts, event_id: str
) -> None:
    await load_event(feed_scripts, event_id, ga=10)
    feed = make_feed(backlog=2, coalesce_s=0)
    slow, fast = feed.watcher("ws"), feed.watcher("sse")
    await feed.watch(slow, event_id)
    await feed.watch(fast, event_id)
    await _take(fast)
    resyncs, drops = _value(feed, FEED_RESYNCS), _value(feed, FEED_DROPPED, "ws")

    for n in range(2):
        await reserve(feed_scripts, event_id, user=f"u{n}", quantity=1)
        assert [m["available"] for m in await _take(fast)] == [9 - n]
    # Its backlog (snapshot + 1 update) overflowed: replaced by the latest state.
    assert slow.pending == 1 and _value(feed, FEED_RESYNCS) == resyncs + 1
    for n in range(2, 4):
        await reserve(feed_scripts, event_id, user=f"u{n}", quantity=1)
        assert [m["available"] for m in await _take(fast)] == [9 - n]
    assert slow.dropped and _value(feed, FEED_DROPPED, "ws") == drops + 1
    assert await slow.take() == []
    feed.close(slow)
    feed.close(fast)


async def test_lagging_watcher_gets_the_latest_counters_instead_of_its_backlog(
    make_feed: Any, feed_scripts: Scripts, event_id: str
) -> None:
    await load_event(feed_scripts, event_id, ga=10)
    feed = make_feed(backlog=2, coalesce_s=0)
    slow, fast = feed.watcher("ws"), feed.watcher("sse")
    await feed.watch(slow, event_id)
    await feed.watch(fast, event_id)
    await _take(fast)
    for n in range(2):
        await reserve(feed_scripts, event_id, user=f"u{n}", quantity=1)
        await _take(fast)
    (snapshot,) = await _take(slow)
    assert snapshot["type"] == "availability" and snapshot["zones"][0]["available"] == 8
    await reserve(feed_scripts, event_id, user="after", quantity=1)
    assert [m["available"] for m in await _take(slow)] == [7]
    assert not slow.dropped
    feed.close(slow)
    feed.close(fast)


async def test_only_the_api_fields_are_forwarded(
    make_feed: Any, feed_scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(feed_scripts, event_id, seats=2)
    feed = make_feed()
    watcher = feed.watcher("ws")
    await feed.watch(watcher, event_id)
    await _take(watcher)
    await reserve(feed_scripts, event_id, user="buyer-secret-identity", seats=["A1"])
    # A message carrying identity (as a buggy publisher might send) is stripped of it.
    forged = {
        "type": "seat_update",
        "event_id": event_id,
        "zone_id": "seated",
        "event_type": "SEAT_CONFIRMED",
        "quantity": 1,
        "available": 1,
        "user_id": "buyer-secret-identity",
        "email": "buyer@example.com",
    }
    await redis.publish(event_keys(event_id).feed, orjson.dumps(forged))
    async with asyncio.timeout(3):
        batches = [batch for batch in await watcher.take()]
        while sum(len(b.messages) for b in batches) < 2:
            batches += await watcher.take()
    for batch in batches:
        raw = batch.sse + "".join(batch.frames).encode()
        assert b"buyer-secret-identity" not in raw and b"buyer@example.com" not in raw
    last = batches[-1].messages[-1]
    assert set(last) == {"type", "event_id", "zone_id", "event_type", "quantity", "available"}
    feed.close(watcher)


async def test_an_unknown_event_is_not_found_and_leaves_no_room(
    make_feed: Any, redis: aioredis.Redis, event_id: str
) -> None:
    feed = make_feed()
    watcher = feed.watcher("sse")
    with pytest.raises(NotFoundError):
        await feed.watch(watcher, event_id)
    feed.close(watcher)
    assert feed.rooms == {}
    await _until(lambda: _numsub_is(redis, event_keys(event_id).feed, 0))


async def test_lost_messages_resync_every_watcher_from_redis(
    make_feed: Any, feed_scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    await load_event(feed_scripts, event_id, ga=5)
    feed = make_feed()
    watcher = feed.watcher("sse")
    await feed.watch(watcher, event_id)
    await _take(watcher)
    # A change the room never heard of (as if published while the pub/sub link was down) ...
    await redis.hset(event_keys(event_id).inv, "ga:available", 3)
    feed.rooms[event_id]._subscriber.mark_missed()  # ... and the Hub's "you missed messages"
    (snapshot,) = await _take(watcher)
    assert snapshot["type"] == "availability" and snapshot["zones"][0]["available"] == 3
    feed.close(watcher)


def test_a_batch_is_encoded_once_per_transport() -> None:
    batch = Batch(({"type": "pong"}, {"type": "seat_update", "available": 1}))
    assert batch.sse is batch.sse
    assert batch.sse == b'event: pong\ndata: {"type":"pong"}\n\n' + (
        b'event: seat_update\ndata: {"type":"seat_update","available":1}\n\n'
    )
    assert batch.frames == ('{"type":"pong"}', '{"type":"seat_update","available":1}')


async def test_refund_suspend_and_unsuspend_reach_the_room(
    make_feed: Any, feed_scripts: Scripts, event_id: str
) -> None:
    await load_event(feed_scripts, event_id, seats=4)
    feed = make_feed(coalesce_s=0)
    watcher = feed.watcher("ws")
    await feed.watch(watcher, event_id)
    await _take(watcher)
    paid = await reserve(feed_scripts, event_id, user="payer", seats=["A1", "A2"])
    booking_id = paid.hold.booking_id
    await feed_scripts.confirm(event_id, booking_id)
    await feed_scripts.release(event_id, booking_id, reason="REFUNDED", allow_confirmed=True)
    await feed_scripts.suspend(event_id, "seated", seats=["A3"])
    await feed_scripts.unsuspend(event_id, "seated", seats=["A3"])
    seen: list[dict[str, Any]] = []
    while len(seen) < 6:
        seen += await _take(watcher)
    assert [(m["event_type"], m["available"]) for m in seen] == [
        ("SEAT_RESERVED", 2),
        ("SEAT_CONFIRMED", 2),
        ("SEAT_CANCELLED", 2),
        ("SEAT_AVAILABLE", 4),
        ("SEAT_SUSPENDED", 3),
        ("SEAT_AVAILABLE", 4),
    ]
    assert [m.get("booking_id") for m in seen[4:]] == [None, None]
    assert feed.rooms[event_id].zones["seated"]["available"] == 4
    feed.close(watcher)
