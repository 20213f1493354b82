"""The drop view's live figures: each booking process writes its own, through real Redis; the
reader merges the fresh ones (watchers summed, the feed rate the largest, pass delivery p99 from
merged buckets) and drops a process that stopped writing."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from booking.inventory.keys import live_figures_key
from booking.live_figures import STALE_S, LiveFigures, bucket_counts, p99


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall_ms(self) -> int:
        return int(self.now * 1000)


async def test_two_processes_are_merged_and_a_silent_one_drops_out(
    redis: aioredis.Redis,
) -> None:
    event_id = str(uuid.uuid4())
    clock = Clock()
    rooms_a: dict[str, tuple[int, int]] = {event_id: (3, 100)}
    rooms_b: dict[str, tuple[int, int]] = {event_id: (2, 40)}
    streams_b = {event_id: 5}
    a = LiveFigures(
        redis,
        rooms=lambda: rooms_a,
        queue_streams=dict,
        process_id="proc-a",
        clock=clock,
        wall_ms=clock.wall_ms,
    )
    b = LiveFigures(
        redis,
        rooms=lambda: rooms_b,
        queue_streams=lambda: streams_b,
        process_id="proc-b",
        clock=clock,
        wall_ms=clock.wall_ms,
    )
    await a.publish()
    await b.publish()
    clock.now += 2.0
    rooms_a[event_id] = (3, 120)  # 20 updates in 2 s
    rooms_b[event_id] = (2, 50)  # it joined later: 10 in 2 s
    for delay in [0.004] * 98 + [0.03, 0.2]:
        b.pass_delivered(event_id, delay)
    await a.publish()
    await b.publish()

    merged = await a.read(event_id)
    assert merged == {
        "processes": 2,
        "feed_watchers": 5,
        "queue_streams": 5,
        "events_per_s": 10.0,
        "pass_deliveries": 100,
        "pass_delivery_p99_s": 0.05,  # the 99th of 100 is 0.03 s: in the (0.025, 0.05] bucket
        "window_s": 60.0,
    }
    assert await redis.pttl(live_figures_key(event_id)) > 0

    # Process b stops writing (it died): after STALE_S its entry no longer counts.
    clock.now += STALE_S + 1
    await a.publish()
    alone = await a.read(event_id)
    assert (alone["processes"], alone["feed_watchers"], alone["queue_streams"]) == (1, 3, 0)
    assert alone["pass_delivery_p99_s"] is None

    # A process that stops cleanly removes its entry; nothing left, the figures are zero.
    rooms_a.clear()
    await a.stop()
    assert await redis.hexists(live_figures_key(event_id), "proc-a") == 0
    assert (await b.read(event_id))["processes"] == 0


def test_p99_from_buckets_is_capped_by_the_largest_delay() -> None:
    assert p99(bucket_counts([]), 0.0) is None
    assert p99(bucket_counts([0.0003] * 10), 0.0003) == 0.0003
    assert p99(bucket_counts([0.001] * 99 + [7.0]), 7.0) == 0.001
    assert p99(bucket_counts([7.0] * 2), 7.0) == 7.0  # past the last bound: the largest seen
