"""The position stream (use-case level, real Redis and hub): current state at once, `position`
when it changes, the pushed `pass`, ids that continue after Last-Event-ID, final `sold_out`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from booking import errors
from booking.queue_stream import StreamEvent
from common.tokens import Identity
from tests.queue.conftest import TICK_S, Clock
from tests.queue.helpers import join, reserve
from workers.queue_release import QueueRelease

TICK_MS = int(TICK_S * 1000)


async def _next(events: AsyncIterator[StreamEvent], wait_s: float = 3) -> StreamEvent:
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
    queue = app.state.queue_streams
    last_id, last = users[2]
    with pytest.raises(errors.NotFoundError):
        await queue.open(Identity(str(__import__("uuid").uuid4()), "customer", 0), event_id)

    stream = await queue.open(Identity(last_id, "customer", 0), event_id, last_event_id=41)
    events = stream.events(resync_s=30)
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
    replay = again.events(resync_s=30)
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
        stream = await app.state.queue_streams.open(Identity(user_id, "customer", 0), event_id)
        events = stream.events(resync_s=30)
        assert (await _next(events)).event == "position"
        streams.append((stream, events))
    token = (await client.get(f"/api/v1/queue/position/{event_id}", headers=buyer)).json()
    booking = (await reserve(client, buyer, event, token["queue_pass"])).json()
    await app.state.scripts.confirm(event_id, booking["booking_id"])
    await release.release_event(event_id, clock() + TICK_MS)
    for stream, events in streams:
        final = await _next(events)
        assert final.event == "sold_out"
        with pytest.raises(StopAsyncIteration):
            await _next(events)
        stream.close()
