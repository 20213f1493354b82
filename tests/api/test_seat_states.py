"""GET /events/{id}/seats (each seat's state, for the seat map) and the queue's counters in the
admin stats (for the drop view)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


async def test_seat_states_follow_holds_and_suspensions(
    client: httpx.AsyncClient, make_user: Any, published_event: Any
) -> None:
    event, _ = await published_event()
    event_id, balcony = event["event_id"], event["zones"][1]["zone_id"]
    _, buyer = await make_user()
    _, admin = await make_user("admin")
    reserved = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": event_id, "zone_id": balcony, "seats": ["A1", "A2"]},
        headers={**buyer, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert reserved.status_code == 201, reserved.text
    suspended = await client.post(
        f"/api/v1/events/{event_id}/seats/suspend",
        json={"zone_id": balcony, "seats": ["B2"], "reason": "broken"},
        headers=admin,
    )
    assert suspended.status_code == 200, suspended.text

    answer = await client.get(f"/api/v1/events/{event_id}/seats")  # public
    assert answer.status_code == 200
    body = answer.json()
    assert body["event_id"] == event_id
    assert body["zones"] == [  # seated zones only; no booking id
        {
            "zone_id": balcony,
            "seats": {
                "A1": "held",
                "A2": "held",
                "A3": "available",
                "B1": "available",
                "B2": "suspended",
            },
        }
    ]
    assert reserved.json()["booking_id"] not in answer.text
    missing = await client.get(f"/api/v1/events/{uuid.uuid4()}/seats")
    assert missing.status_code == 404


async def test_admin_stats_carry_the_queue(
    client: httpx.AsyncClient, make_user: Any, published_event: Any
) -> None:
    queued, _ = await published_event(queue={"enabled": True, "max_concurrent": 5})
    plain, _ = await published_event()
    _, admin = await make_user("admin")
    _, buyer = await make_user()
    url = f"/api/v1/admin/events/{queued['event_id']}/stats"
    before = (await client.get(url, headers=admin)).json()["queue"]  # set up at the first join
    assert (before["open"], before["waiting"], before["passes_outstanding"]) == (True, 0, 0)
    joined = await client.post(
        "/api/v1/queue/join", json={"event_id": queued["event_id"]}, headers=buyer
    )
    assert joined.status_code == 202, joined.text
    stats = (await client.get(url, headers=admin)).json()
    assert stats["queue"] == {
        "open": True,
        "paused": False,
        "sold_out": False,
        "waiting": 1,
        "pre_queue": 0,
        "passes_outstanding": 0,
        "admitted_per_s": 0.0,
    }
    plain_stats = await client.get(f"/api/v1/admin/events/{plain['event_id']}/stats", headers=admin)
    assert plain_stats.json()["queue"] is None
