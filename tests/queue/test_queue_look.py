"""`QueueStore.look_many` (lua/queue_look.lua) on a real Redis: waiting users get their place
behind the pre-queue, pre-queue users the pre-queue's size, admitted users their pass only
while it is unused and unexpired, strangers nothing; the outflow comes along."""

from __future__ import annotations

import uuid
from typing import Any

from booking.inventory.keys import queue_keys
from booking.queue.store import Outflow, Placement, QueueStore

NOW = 1_000_000


async def test_look_many_reads_every_kind_of_user(redis: Any) -> None:
    event_id = str(uuid.uuid4())
    keys = queue_keys(event_id)
    await redis.hset(
        keys.queue, mapping={"rate": "2.5", "release_per_tick": 7, "tick_ms": 500, "sold_out": 0}
    )
    await redis.zadd(keys.pre, {"p1": 1, "p2": 2})
    await redis.zadd(keys.waiting, {"w1": 10, "w2": 20})
    await redis.hset(
        keys.admitted,
        mapping={
            "live": f"pass-live|{NOW + 5000}|signed-live",
            "used": f"pass-used|{NOW + 5000}|signed-used",  # its pass is gone: reserved
            "late": f"pass-late|{NOW - 1}|signed-late",  # expired
        },
    )
    await redis.hset(keys.passes, mapping={"pass-live": "live", "pass-late": "late"})
    store = QueueStore(redis)
    try:
        placements, outflow = await store.look_many(
            event_id, ["w2", "p1", "live", "used", "late", "stranger", "w1"], NOW
        )
    finally:
        await redis.delete(*keys.stored())
        await store.aclose()
    assert outflow == Outflow(rate=2.5, release_per_tick=7, tick_ms=500, sold_out=False)
    assert placements == [
        Placement("waiting", position=4),  # behind the 2 of the pre-queue
        Placement("pre", position=2),
        Placement("admitted", queue_pass="signed-live", expires_ms=NOW + 5000),
        None,
        None,
        None,
        Placement("waiting", position=3),
    ]


async def test_look_on_an_unknown_queue_gives_defaults(redis: Any) -> None:
    store = QueueStore(redis)
    try:
        placement, outflow = await store.look(str(uuid.uuid4()), "nobody", NOW)
    finally:
        await store.aclose()
    assert placement is None
    assert outflow == Outflow(rate=0.0, release_per_tick=1, tick_ms=1000, sold_out=False)
