"""The live feed as an SSE frame source (`booking.routes.feed.FeedStream`) on the real Redis:
the snapshot then updates as SSE events, a wake-up when something arrives, and a client the SSE
response found too slow is dropped (counted) and leaves its room."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from booking.inventory.scripts import Scripts
from booking.metrics import FEED_CONNECTIONS, FEED_DROPPED
from booking.routes.feed import FeedStream
from tests.lua.invariants import load_event, reserve


def _events(chunk: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in chunk.removesuffix(b"\n\n").split(b"\n\n"):
        name, data = block.split(b"\n")
        assert name.startswith(b"event: ") and data.startswith(b"data: ")
        events.append((name[7:].decode(), orjson.loads(data[6:])))
    return events


async def test_snapshot_then_updates_as_sse_events(
    make_feed: Any, feed_scripts: Scripts, event_id: str
) -> None:
    await load_event(feed_scripts, event_id, ga=10)
    feed = make_feed(coalesce_s=0)
    watcher = feed.watcher("sse")
    await feed.watch(watcher, event_id)
    source = FeedStream(feed, watcher)
    arrived = asyncio.Event()
    source.listen(arrived.set)

    ((name, snapshot),) = _events(source.take() or b"")
    assert name == "availability" and snapshot["zones"][0]["available"] == 10
    assert source.take() == b""  # nothing new: the writer waits for `ready`

    await reserve(feed_scripts, event_id, user="u1", quantity=2)
    async with asyncio.timeout(3):
        await arrived.wait()
    ((name, update),) = _events(source.take() or b"")
    assert (name, update["event_type"], update["available"]) == ("seat_update", "SEAT_RESERVED", 8)

    source.close("disconnected")
    assert source.take() is None
    assert feed.rooms == {}


async def test_a_too_slow_client_is_dropped_and_leaves_its_room(
    make_feed: Any, feed_scripts: Scripts, event_id: str
) -> None:
    await load_event(feed_scripts, event_id, ga=10)
    feed = make_feed()
    slow, other = feed.watcher("sse"), feed.watcher("sse")
    await feed.watch(slow, event_id)
    await feed.watch(other, event_id)
    drops = FEED_DROPPED.labels("sse")._value.get()
    connections = FEED_CONNECTIONS.labels("sse")._value.get()

    FeedStream(feed, slow).close("too_slow")
    assert slow.dropped and FEED_DROPPED.labels("sse")._value.get() == drops + 1
    assert FEED_CONNECTIONS.labels("sse")._value.get() == connections - 1
    assert feed.rooms[event_id].watchers == {other}
    feed.close(other)
