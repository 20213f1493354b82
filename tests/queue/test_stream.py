"""The position stream (use-case level, real Redis and hub): current state at once, `position`
when it changes, the pushed `pass`, ids that continue after Last-Event-ID, final `sold_out`.
The stream's frames are read as the SSE response reads them and parsed from the wire format."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from booking import errors
from booking.queue.stream import PositionStream
from common.tokens import Identity
from tests.queue.conftest import TICK_S, Clock
from tests.queue.helpers import join, reserve
from workers.queue_release import QueueRelease

TICK_MS = int(TICK_S * 1000)


@dataclass
class StreamEvent:
    event: str
    data: dict[str, Any]
    id: int


def parse_frames(chunk: bytes) -> list[StreamEvent]:
    """SSE events of one write: `id`, `event` and one `data` line each, a blank line after."""
    assert chunk.endswith(b"\n\n"), chunk
    events = []
    for block in chunk[:-2].split(b"\n\n"):
        fields = dict(line.split(b": ", 1) for line in block.split(b"\n"))
        assert set(fields) == {b"id", b"event", b"data"}, block
        event, data, event_id = fields[b"event"].decode(), fields[b"data"], fields[b"id"]
        events.append(StreamEvent(event, orjson.loads(data), int(event_id)))
    return events


class Events:
    """The events of a stream, one at a time, in order, taken as the SSE response takes them."""

    def __init__(self, stream: PositionStream) -> None:
        self.stream = stream
        self.queued: deque[StreamEvent] = deque()
        self.ready = asyncio.Event()
        stream.listen(self.ready.set)

    async def __anext__(self) -> StreamEvent:
        while not self.queued:
            self.ready.clear()
            chunk = self.stream.take()
            if chunk is None:
                raise StopAsyncIteration
            if chunk:
                self.queued.extend(parse_frames(chunk))
            else:
                await self.ready.wait()
        return self.queued.popleft()

    async def aclose(self) -> None:
        self.stream.close()


async def _next(events: Events, wait_s: float = 3) -> StreamEvent:
    async with asyncio.timeout(wait_s):
        return await anext(events)


async def test_position_then_pushed_pass(
    client: httpx.AsyncClient,
    make_user: Any,
    queued_event: Any,
    release: QueueRelease,
    clock: Clock,
    app: Any,
) -> None:
    event, _ = await queued_event(max_concurrent=1, release_per_tick=1)
    event_id = event["event_id"]
    users = [await make_user() for _ in range(3)]
    for _, headers in users:
        await join(client, headers, event_id)
    queue = app.state.services.queue_streams
    last_id, last = users[2]
    with pytest.raises(errors.NotFoundError):
        await queue.open(Identity(str(__import__("uuid").uuid4()), "customer", 0), event_id)

    stream = await queue.open(Identity(last_id, "customer", 0), event_id, last_event_id=41)
    events = Events(stream)
    try:
        first = await _next(events)
        assert (first.event, first.id, first.data["position"]) == ("position", 42, 3)
        now = clock()
        await release.release_event(event_id, now)
        moved = await _next(events)
        assert (moved.event, moved.id, moved.data["position"]) == ("position", 43, 2)

        # user 0 uses its pass, user 1 is admitted; then user 1's slot frees for us
        for n in range(2):
            token = (
                await client.get(f"/api/v1/queue/position/{event_id}", headers=users[n][1])
            ).json()
            assert (
                await reserve(client, users[n][1], event, token["queue_pass"])
            ).status_code == 201
            await release.release_event(event_id, now + (n + 1) * TICK_MS)
            if n == 0:
                assert (await _next(events)).data["position"] == 1
        admitted_at = time.monotonic()
        granted = await _next(events)
        assert granted.event == "pass" and granted.id == 45
        assert time.monotonic() - admitted_at < 0.5  # pushed, not found by a 30 s re-read
        mine = (await client.get(f"/api/v1/queue/position/{event_id}", headers=last)).json()
        assert granted.data == {
            "queue_pass": mine["queue_pass"],
            "pass_expires_at": mine["pass_expires_at"],
        }
    finally:
        stream.close()
        await events.aclose()

    # a reconnect after admission gets the pass again, ids continuing after Last-Event-ID
    again = await queue.open(Identity(last_id, "customer", 0), event_id, last_event_id=45)
    replay = Events(again)
    try:
        event_again = await _next(replay)
        assert (event_again.event, event_again.id) == ("pass", 46)
        assert event_again.data == granted.data
    finally:
        again.close()
        await replay.aclose()


async def test_sold_out_reaches_every_waiting_stream(
    client: httpx.AsyncClient,
    make_user: Any,
    queued_event: Any,
    release: QueueRelease,
    clock: Clock,
    app: Any,
) -> None:
    event, _ = await queued_event(
        max_concurrent=1,
        release_per_tick=1,
        zones=[{"name": "Floor", "capacity": 1, "price_minor": 100}],
    )
    event_id = event["event_id"]
    _, buyer = await make_user()
    await join(client, buyer, event_id)
    await release.release_event(event_id, clock())
    waiting = [await make_user() for _ in range(5)]
    streams = []
    for user_id, headers in waiting:
        await join(client, headers, event_id)
        stream = await app.state.services.queue_streams.open(
            Identity(user_id, "customer", 0), event_id
        )
        events = Events(stream)
        assert (await _next(events)).event == "position"
        streams.append((stream, events))
    token = (await client.get(f"/api/v1/queue/position/{event_id}", headers=buyer)).json()
    booking = (await reserve(client, buyer, event, token["queue_pass"])).json()
    await app.state.services.scripts.confirm(event_id, booking["booking_id"])
    await release.release_event(event_id, clock() + TICK_MS)
    for stream, events in streams:
        final = await _next(events)
        assert final.event == "sold_out"
        with pytest.raises(StopAsyncIteration):
            await _next(events)
        stream.close()
