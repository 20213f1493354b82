"""queue-release against the real Redis: FIFO admission within `release_per_tick` and
`max_concurrent`, lapsed passes freeing their slots within one tick, two copies at once, the
pre-queue shuffle, and the end of the queue when the event sells out."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from booking.inventory.keys import queue_keys
from booking.queue.service import shuffled_order
from tests.queue.conftest import TICK_S, Clock
from tests.queue.helpers import join, position, reserve
from workers.queue_release import QueueRelease
from workers.resources import open_queue

TICK_MS = int(TICK_S * 1000)


async def _admitted(client: httpx.AsyncClient, users: list[Any], event_id: str) -> list[int]:
    answers = [await position(client, headers, event_id) for _, headers in users]
    return [n for n, a in enumerate(answers) if a.json().get("status") == "admitted"]


async def test_fifo_within_both_limits(
    client: httpx.AsyncClient,
    make_user: Any,
    queued_event: Any,
    release: QueueRelease,
    clock: Clock,
) -> None:
    event, _ = await queued_event(max_concurrent=3, release_per_tick=2)
    event_id = event["event_id"]
    users = [await make_user() for _ in range(6)]
    for _, headers in users:
        await join(client, headers, event_id)

    now = clock()
    first = await release.release_event(event_id, now)
    assert first is not None and (first.admitted, first.status) == (2, "OK")
    assert await _admitted(client, users, event_id) == [0, 1]
    again = await release.release_event(event_id, now + 10)  # same tick: nobody more
    assert again is not None and (again.admitted, again.status) == (0, "NOT_DUE")
    second = await release.release_event(event_id, now + TICK_MS)
    assert second is not None and second.admitted == 1  # max_concurrent 3 reached
    third = await release.release_event(event_id, now + 2 * TICK_MS)
    assert third is not None and (third.admitted, third.passes_active) == (0, 3)
    assert await _admitted(client, users, event_id) == [0, 1, 2]
    waiting = await position(client, users[3][1], event_id)
    assert waiting.json()["position"] == 1

    # Using a pass frees its slot: the next in line gets in at the next tick.
    admitted = (await position(client, users[0][1], event_id)).json()
    assert admitted["status"] == "admitted" and admitted["pass_expires_at"].endswith("Z")
    booked = await reserve(client, users[0][1], event, admitted["queue_pass"])
    assert booked.status_code == 201, booked.text
    fourth = await release.release_event(event_id, now + 3 * TICK_MS)
    assert fourth is not None and fourth.admitted == 1
    assert await _admitted(client, users, event_id) == [1, 2, 3]  # user 0 is done with the queue


async def test_a_lapsed_pass_frees_its_slot_within_one_tick(
    client: httpx.AsyncClient,
    make_user: Any,
    queued_event: Any,
    release: QueueRelease,
    clock: Clock,
) -> None:
    event, _ = await queued_event(max_concurrent=1, release_per_tick=1, pass_ttl_s=5)
    event_id = event["event_id"]
    users = [await make_user() for _ in range(2)]
    for _, headers in users:
        await join(client, headers, event_id)
    clock.offset_ms = -4_700  # the pass lapses 0.3 s from now (real time, as reserve sees it)
    assert (await release.release_event(event_id, clock())).admitted == 1  # type: ignore[union-attr]
    token = (await position(client, users[0][1], event_id)).json()["queue_pass"]
    clock.offset_ms = 0
    assert (await release.release_event(event_id, clock())).admitted == 0  # type: ignore[union-attr]
    await asyncio.sleep(0.4)
    lapsed = await reserve(client, users[0][1], event, token)
    assert lapsed.status_code == 403 and lapsed.json()["code"] == "queue_pass_invalid"
    # the very next tick admits the next user into the freed slot
    freed = await release.release_event(event_id, clock())
    assert freed is not None and freed.admitted == 1
    assert await _admitted(client, users, event_id) == [1]
    gone = await position(client, users[0][1], event_id)
    assert gone.status_code == 404


async def test_two_copies_at_once_respect_the_limits(
    client: httpx.AsyncClient,
    make_user: Any,
    queued_event: Any,
    release: QueueRelease,
    clock: Clock,
    redis_url: str,
    service_env: dict[str, str],
    redis: Any,
) -> None:
    event, _ = await queued_event(max_concurrent=5, release_per_tick=2)
    event_id = event["event_id"]
    users = [await make_user() for _ in range(8)]
    for _, headers in users:
        await join(client, headers, event_id)
    async with open_queue(release.settings) as store:  # another copy: a client of its own
        other = QueueRelease(
            release.settings, store, secret=service_env["INTERNAL_SECRET"], clock=clock
        )
        now = clock()
        for tick in range(5):
            results = await asyncio.gather(
                release.release_event(event_id, now + tick * TICK_MS),
                other.release_event(event_id, now + tick * TICK_MS),
            )
            assert sum(r.admitted for r in results if r is not None) <= 2
            keys = queue_keys(event_id)
            assert await redis.zcard(keys.passes_active) <= 5
    keys = queue_keys(event_id)
    assert await redis.hlen(keys.admitted) == 5 == await redis.hlen(keys.passes)
    assert await _admitted(client, users, event_id) == [0, 1, 2, 3, 4]


async def test_pre_queue_is_shuffled_at_sale_start_from_the_seed(
    client: httpx.AsyncClient,
    make_user: Any,
    queued_event: Any,
    release: QueueRelease,
    clock: Clock,
) -> None:
    from datetime import UTC, datetime, timedelta

    starts = datetime.now(UTC) + timedelta(seconds=1.5)
    event, organizer = await queued_event(
        sale_starts_at=starts.isoformat(), max_concurrent=10, release_per_tick=10
    )
    event_id = event["event_id"]
    early = [await make_user() for _ in range(7)]
    for n, (_, headers) in enumerate(early, 1):
        placed = await join(client, headers, event_id)
        assert placed["pre_queue"] is True and placed["position"] == n
    assert "seed" not in (await client.get(f"/api/v1/events/{event_id}")).json()["queue"]
    paused = await client.patch(
        f"/api/v1/events/{event_id}/queue", json={"paused": True}, headers=organizer
    )
    assert paused.status_code == 200
    await asyncio.sleep(max(0.0, (starts - datetime.now(UTC)).total_seconds()) + 0.05)
    late_id, late = await make_user()
    assert (await join(client, late, event_id))["position"] == 8  # behind the whole pre-queue

    result = await release.release_event(event_id, clock())
    assert result is not None and result.status == "PAUSED"
    revealed = (await client.get(f"/api/v1/events/{event_id}")).json()["queue"]
    order = shuffled_order(bytes.fromhex(revealed["seed"]), [user_id for user_id, _ in early])
    places = {
        user_id: (await position(client, headers, event_id)).json()["position"]
        for user_id, headers in early
    }
    assert sorted(places, key=places.__getitem__) == order
    assert (await position(client, late, event_id)).json()["position"] == 8
    assert late_id not in order


async def test_sold_out_closes_the_queue(
    client: httpx.AsyncClient,
    make_user: Any,
    queued_event: Any,
    release: QueueRelease,
    clock: Clock,
    app: Any,
) -> None:
    event, _ = await queued_event(
        max_concurrent=5,
        release_per_tick=5,
        zones=[{"name": "Floor", "capacity": 1, "price_minor": 100}],
    )
    event_id = event["event_id"]
    buyer = await make_user()
    waiting = [await make_user() for _ in range(2)]
    await join(client, buyer[1], event_id)
    assert (await release.release_event(event_id, clock())).admitted == 1  # type: ignore[union-attr]
    for _, headers in waiting:
        await join(client, headers, event_id)
    token = (await position(client, buyer[1], event_id)).json()["queue_pass"]
    booking = (await reserve(client, buyer[1], event, token)).json()

    # No seat free but a live hold: nobody is admitted (the hold may lapse).
    held = await release.release_event(event_id, clock() + TICK_MS)
    assert held is not None and (held.admitted, held.status) == (0, "NO_SEATS")
    await app.state.services.scripts.confirm(event_id, booking["booking_id"])
    done = await release.release_event(event_id, clock() + 2 * TICK_MS)
    assert done is not None and done.status == "SOLD_OUT"
    refused = await client.post(
        "/api/v1/queue/join", json={"event_id": event_id}, headers=waiting[0][1]
    )
    assert refused.status_code == 409 and refused.json()["code"] == "sold_out"
    assert event_id not in await release.store.open_queue_ids()
