"""Queue passes on reserve, through the API: every rejection answers its code; a pass works once."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from booking.queue.passes import QueuePass, sign_pass
from tests.queue.conftest import Clock
from tests.queue.helpers import join, position, reserve
from workers.queue_release import QueueRelease


async def _admit(
    client: httpx.AsyncClient, release: QueueRelease, clock: Clock, headers: Any, event_id: str
) -> str:
    await join(client, headers, event_id)
    await release.release_event(event_id, clock() + 3_600_000)  # always due
    answer = (await position(client, headers, event_id)).json()
    assert answer["status"] == "admitted", answer
    return str(answer["queue_pass"])


def _tampered(token: str) -> str:
    payload, signature = token.split(".")
    fields = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().split("|")
    fields[3] = str(int(fields[3]) + 3_600_000)  # a longer life, same signature
    forged = base64.urlsafe_b64encode("|".join(fields).encode()).rstrip(b"=").decode()
    return f"{forged}.{signature}"


async def test_every_rejection_answers_its_code(
    client: httpx.AsyncClient,
    make_user: Any,
    queued_event: Any,
    release: QueueRelease,
    clock: Clock,
    service_env: dict[str, str],
) -> None:
    event, _ = await queued_event(max_concurrent=10, release_per_tick=10)
    other_event, _ = await queued_event(max_concurrent=10, release_per_tick=10)
    event_id = event["event_id"]
    owner_id, owner = await make_user()
    _, stranger = await make_user()
    token = await _admit(client, release, clock, owner, event_id)
    elsewhere = await _admit(client, release, clock, owner, other_event["event_id"])
    secret = service_env["INTERNAL_SECRET"]
    lapsed = sign_pass(secret, QueuePass(event_id, owner_id, "p-old", clock() - 1))
    wrong_key = sign_pass("z" * 40, QueuePass(event_id, owner_id, "p-x", clock() + 60_000))
    unknown = sign_pass(secret, QueuePass(event_id, owner_id, "never-issued", clock() + 60_000))

    missing = await reserve(client, owner, event, None)
    assert (missing.status_code, missing.json()["code"]) == (403, "queue_pass_required")
    for name, headers, candidate, why in [
        ("forged", owner, _tampered(token), "not one this service issued"),
        ("foreign key", owner, wrong_key, "not one this service issued"),
        ("garbage", owner, "not-a-pass", "not one this service issued"),
        ("expired", owner, lapsed, "has expired"),
        ("never issued", owner, unknown, "is unknown"),
        ("another user's", stranger, token, "issued to another user"),
        ("another event's", owner, elsewhere, "for another event"),
    ]:
        answer = await reserve(client, headers, event, candidate)
        assert (answer.status_code, answer.json()["code"]) == (403, "queue_pass_invalid"), name
        assert why in answer.json()["detail"], (name, answer.json())

    first = await reserve(client, owner, event, token)
    assert first.status_code == 201, first.text
    reused = await reserve(client, owner, event, token)
    assert (reused.status_code, reused.json()["code"]) == (403, "queue_pass_invalid")
    assert "already used" in reused.json()["detail"]
    # the other event's pass still works there (bound to its own event only)
    there = await reserve(client, owner, other_event, elsewhere)
    assert there.status_code == 201, there.text


async def test_leaving_revokes_an_unused_pass(
    client: httpx.AsyncClient,
    make_user: Any,
    queued_event: Any,
    release: QueueRelease,
    clock: Clock,
) -> None:
    event, _ = await queued_event()
    _, buyer = await make_user()
    token = await _admit(client, release, clock, buyer, event["event_id"])
    left = await client.delete(f"/api/v1/queue/position/{event['event_id']}", headers=buyer)
    assert left.status_code == 204
    answer = await reserve(client, buyer, event, token)
    assert (answer.status_code, answer.json()["code"]) == (403, "queue_pass_invalid")
    # joining again puts the buyer at the back, as a new arrival
    assert (await join(client, buyer, event["event_id"]))["status"] == "waiting"
