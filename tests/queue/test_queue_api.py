"""Join / position / leave / PATCH through the booking app (in-process, real Redis and
PostgreSQL), and the seed shown by GET /events."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx

from booking.inventory.keys import queue_keys


async def _join(client: httpx.AsyncClient, headers: dict[str, str], event_id: str) -> Any:
    return await client.post("/api/v1/queue/join", json={"event_id": event_id}, headers=headers)


async def test_join_twice_keeps_the_place_and_positions_are_exact(
    client: httpx.AsyncClient, make_user: Any, queued_event: Any
) -> None:
    event, _ = await queued_event()
    event_id = event["event_id"]
    users = [await make_user() for _ in range(4)]
    for n, (_, headers) in enumerate(users, 1):
        answer = await _join(client, headers, event_id)
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert body["status"] == "waiting" and body["position"] == n
        assert body["event_id"] == event_id and body["estimated_wait_s"] >= 1
    again = await _join(client, users[0][1], event_id)
    assert again.status_code == 202 and again.json()["position"] == 1

    left = await client.delete(f"/api/v1/queue/position/{event_id}", headers=users[1][1])
    assert left.status_code == 204
    gone = await client.get(f"/api/v1/queue/position/{event_id}", headers=users[1][1])
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"
    last = await client.get(f"/api/v1/queue/position/{event_id}", headers=users[3][1])
    assert last.status_code == 200 and last.json()["position"] == 3


async def test_join_needs_an_open_queue(
    client: httpx.AsyncClient, make_user: Any, queued_event: Any
) -> None:
    from tests.api.conftest import event_payload

    _, headers = await make_user()
    unknown = await _join(client, headers, str(uuid.uuid4()))
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"

    _, organizer = await make_user("organizer")
    plain = await client.post("/api/v1/events", json=event_payload(), headers=organizer)
    plain_id = plain.json()["event_id"]
    draft = await _join(client, headers, plain_id)
    assert draft.status_code == 404  # a draft does not exist for buyers
    await client.post(f"/api/v1/events/{plain_id}/publish", headers=organizer)
    no_queue = await _join(client, headers, plain_id)
    assert no_queue.status_code == 409 and no_queue.json()["code"] == "invalid_state"

    bad = await client.get("/api/v1/queue/position/not-a-uuid", headers=headers)
    assert bad.status_code == 404
    anonymous = await client.post("/api/v1/queue/join", json={"event_id": plain_id})
    assert anonymous.status_code == 401


async def test_patch_changes_the_outflow_live(
    client: httpx.AsyncClient, make_user: Any, queued_event: Any, redis: Any
) -> None:
    event, organizer = await queued_event()
    event_id = event["event_id"]
    _, buyer = await make_user()
    await _join(client, buyer, event_id)  # sets the queue up in Redis

    url = f"/api/v1/events/{event_id}/queue"
    refused = await client.patch(url, json={"paused": True}, headers=buyer)
    assert refused.status_code == 403
    invalid = await client.patch(url, json={"max_concurrent": 0}, headers=organizer)
    assert invalid.status_code == 422
    bodiless = await client.patch(url, headers=organizer)
    assert bodiless.status_code == 422, bodiless.text
    assert bodiless.json()["errors"] == [{"field": "body", "message": "a JSON object is required"}]
    changed = await client.patch(
        url, json={"max_concurrent": 7, "release_per_tick": 5, "paused": True}, headers=organizer
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {
        "event_id": event_id,
        "enabled": True,
        "max_concurrent": 7,
        "release_per_tick": 5,
        "pass_ttl_s": 60,
        "paused": True,
    }
    live = await redis.hmget(
        queue_keys(event_id).queue, ["max_concurrent", "release_per_tick", "paused"]
    )
    assert live == ["7", "5", "1"]
    shown = (await client.get(f"/api/v1/events/{event_id}")).json()["queue"]
    assert (shown["max_concurrent"], shown["paused"]) == (7, True)


async def test_seed_hash_before_the_sale_and_seed_after(
    client: httpx.AsyncClient, queued_event: Any, pg_pool: Any
) -> None:
    future, _ = await queued_event(sale_starts_at="2029-01-01T10:00:00Z")
    queue = (await client.get(f"/api/v1/events/{future['event_id']}")).json()["queue"]
    assert "seed" not in queue and len(queue["seed_sha256"]) == 64

    opened, _ = await queued_event()
    queue = (await client.get(f"/api/v1/events/{opened['event_id']}")).json()["queue"]
    seed = bytes.fromhex(queue["seed"])
    assert len(seed) == 32 and hashlib.sha256(seed).hexdigest() == queue["seed_sha256"]
    stored = await pg_pool.fetchval(
        "SELECT queue_seed FROM events WHERE event_id = $1", uuid.UUID(opened["event_id"])
    )
    assert bytes(stored) == seed
    listed = (await client.get("/api/v1/events")).json()["items"]
    assert {item["event_id"]: item["queue"].get("seed") for item in listed}[
        opened["event_id"]
    ] == queue["seed"]


async def test_a_join_answers_its_wait_from_one_script_call(
    client: httpx.AsyncClient, app: Any, make_user: Any, queued_event: Any
) -> None:
    from prometheus_client import REGISTRY

    def looks() -> float:
        sample = REGISTRY.get_sample_value(
            "booking_rush_lua_script_duration_seconds_count", {"script": "queue_look"}
        )
        return sample or 0.0

    event, _ = await queued_event()
    event_id = event["event_id"]
    first = await _join(client, (await make_user())[1], event_id)
    assert first.status_code == 202, first.text
    await app.state.services.redis.hset(queue_keys(event_id).queue, "rate", "0.5")
    _, second = await make_user()
    before = looks()
    joined = await _join(client, second, event_id)
    assert looks() == before
    assert joined.status_code == 202 and joined.json()["position"] == 2
    assert joined.json()["estimated_wait_s"] == 4  # 2 places at the measured 0.5 per second
    where = await client.get(f"/api/v1/queue/position/{event_id}", headers=second)
    assert where.json()["estimated_wait_s"] == 4
