"""Suspend / unsuspend (organizer or admin) through the booking app (in-process) on the real
Redis and PostgreSQL: atomic refusal of held seats, counters, persistence, and a rebuild that
keeps them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from booking.inventory.scripts import Scripts
from booking.reconcile import rebuild_event

API = "/api/v1"


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def _reserve(
    client: httpx.AsyncClient, headers: dict[str, str], event_id: str, zone_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"{API}/bookings/reserve",
        json={"event_id": event_id, "zone_id": zone_id, **body},
        headers={**headers, **_key()},
    )


async def _zone_row(pool: Any, zone_id: str) -> tuple[int, int, int]:
    row = await pool.fetchrow(
        "SELECT held, sold, suspended FROM zones WHERE zone_id = $1", uuid.UUID(zone_id)
    )
    return row["held"], row["sold"], row["suspended"]


async def _suspended_seats(pool: Any, zone_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT label FROM seats WHERE zone_id = $1 AND suspended ORDER BY position",
        uuid.UUID(zone_id),
    )
    return [row["label"] for row in rows]


async def test_suspend_seats_refuses_held_ones_and_persists(
    client: httpx.AsyncClient, make_user: Any, published_event: Any, clean_db: Any
) -> None:
    event, _ = await published_event()
    event_id, balcony = event["event_id"], event["zones"][1]["zone_id"]
    _, admin = await make_user("admin")
    _, buyer = await make_user()
    assert (await _reserve(client, buyer, event_id, balcony, seats=["A3"])).status_code == 201
    url = f"{API}/events/{event_id}/seats/suspend"

    held = await client.post(
        url, json={"zone_id": balcony, "seats": ["A1", "A3"], "reason": "camera"}, headers=admin
    )
    assert held.status_code == 409 and held.json()["code"] == "seat_unavailable"
    assert "A3" in held.json()["detail"]
    assert await _suspended_seats(clean_db, balcony) == []  # all or nothing, in both stores

    answer = await client.post(
        url, json={"zone_id": balcony, "seats": ["A1", "A2"], "reason": "camera"}, headers=admin
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "event_id": event_id,
        "zone_id": balcony,
        "changed": 2,
        "capacity": 5,
        "available": 2,
        "held": 1,
        "sold": 0,
        "suspended": 2,
    }
    assert await _suspended_seats(clean_db, balcony) == ["A1", "A2"]
    assert await _zone_row(clean_db, balcony) == (1, 0, 2)
    log = await clean_db.fetchrow("SELECT action, seats, quantity, reason FROM seat_suspensions")
    assert dict(log) == {
        "action": "suspend",
        "seats": ["A1", "A2"],
        "quantity": 2,
        "reason": "camera",
    }

    again = await client.post(
        url, json={"zone_id": balcony, "seats": ["A1"], "reason": "twice"}, headers=admin
    )
    assert again.status_code == 200 and again.json()["changed"] == 0
    refused = await _reserve(client, buyer, event_id, balcony, seats=["A1"])
    assert refused.status_code == 409 and refused.json()["code"] == "seat_unavailable"
    availability = (await client.get(f"{API}/events/{event_id}/availability")).json()
    assert availability["zones"][1]["available"] == 2

    back = await client.post(
        f"{API}/events/{event_id}/seats/unsuspend",
        json={"zone_id": balcony, "seats": ["A1"]},
        headers=admin,
    )
    assert back.status_code == 200 and back.json()["available"] == 3
    assert await _suspended_seats(clean_db, balcony) == ["A2"]
    assert await _zone_row(clean_db, balcony) == (1, 0, 1)
    assert (await _reserve(client, buyer, event_id, balcony, seats=["A1"])).status_code == 201


async def test_general_admission_quantity_counts_as_neither_available_nor_sold(
    client: httpx.AsyncClient, make_user: Any, published_event: Any, clean_db: Any
) -> None:
    event, _ = await published_event()
    event_id, floor = event["event_id"], event["zones"][0]["zone_id"]
    _, admin = await make_user("admin")
    url = f"{API}/events/{event_id}/seats/suspend"
    answer = await client.post(
        url, json={"zone_id": floor, "quantity": 7, "reason": "stage"}, headers=admin
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["available"], answer.json()["suspended"]) == (3, 7)
    assert await _zone_row(clean_db, floor) == (0, 0, 7)

    too_much = await client.post(
        url, json={"zone_id": floor, "quantity": 4, "reason": "more"}, headers=admin
    )
    assert too_much.status_code == 409 and too_much.json()["code"] == "seat_unavailable"
    _, buyer = await make_user()
    sold_out = await _reserve(client, buyer, event_id, floor, quantity=4)
    assert sold_out.status_code == 409 and sold_out.json()["code"] == "sold_out"

    unsuspend = f"{API}/events/{event_id}/seats/unsuspend"
    over = await client.post(unsuspend, json={"zone_id": floor, "quantity": 8}, headers=admin)
    assert over.status_code == 409 and over.json()["code"] == "invalid_state"
    assert await _zone_row(clean_db, floor) == (0, 0, 7)
    back = await client.post(unsuspend, json={"zone_id": floor, "quantity": 5}, headers=admin)
    assert (back.json()["available"], back.json()["suspended"]) == (8, 2)
    assert await _zone_row(clean_db, floor) == (0, 0, 2)


async def test_a_rebuild_from_postgresql_keeps_suspensions(
    client: httpx.AsyncClient, make_user: Any, published_event: Any, clean_db: Any, app: Any
) -> None:
    event, _ = await published_event()
    event_id = event["event_id"]
    floor, balcony = event["zones"][0]["zone_id"], event["zones"][1]["zone_id"]
    _, admin = await make_user("admin")
    url = f"{API}/events/{event_id}/seats/suspend"
    for body in (
        {"zone_id": floor, "quantity": 4, "reason": "stage"},
        {"zone_id": balcony, "seats": ["B1"], "reason": "broken"},
    ):
        assert (await client.post(url, json=body, headers=admin)).status_code == 200
    scripts: Scripts = app.state.services.scripts
    before = await scripts.availability(event_id)

    await rebuild_event(clean_db, scripts, event_id)
    after = await scripts.availability(event_id)
    assert after == before
    assert (after[floor].available, after[floor].suspended) == (6, 4)
    _, buyer = await make_user()
    refused = await _reserve(client, buyer, event_id, balcony, seats=["B1"])
    assert refused.status_code == 409 and refused.json()["code"] == "seat_unavailable"


async def test_only_its_managers_and_well_formed_requests(
    client: httpx.AsyncClient, make_user: Any, published_event: Any
) -> None:
    event, organizer = await published_event()
    event_id, floor, balcony = (
        event["event_id"],
        event["zones"][0]["zone_id"],
        event["zones"][1]["zone_id"],
    )
    _, admin = await make_user("admin")
    url = f"{API}/events/{event_id}/seats/suspend"
    body = {"zone_id": floor, "quantity": 1, "reason": "x"}
    assert (await client.post(url, json=body)).status_code == 401
    _, other_organizer = await make_user("organizer")
    _, buyer = await make_user()
    for outsider in (other_organizer, buyer):
        forbidden = await client.post(url, json=body, headers=outsider)
        assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"
    # The event's own organizer may take its seats out of sale and put them back.
    own = await client.post(url, json=body, headers=organizer)
    assert own.status_code == 200 and own.json()["changed"] == 1, own.text
    back = await client.post(
        f"{API}/events/{event_id}/seats/unsuspend",
        json={"zone_id": floor, "quantity": 1},
        headers=organizer,
    )
    assert back.status_code == 200 and back.json()["suspended"] == 0, back.text

    for bad in (
        {"zone_id": floor, "quantity": 1},  # no reason
        {"zone_id": floor, "quantity": 1, "seats": ["A1"], "reason": "x"},  # both
        {"zone_id": str(uuid.uuid4()), "quantity": 1, "reason": "x"},  # not its zone
        {"zone_id": balcony, "quantity": 1, "reason": "x"},  # seated zone needs seats
        {"zone_id": floor, "seats": ["A1"], "reason": "x"},  # GA zone needs quantity
    ):
        answer = await client.post(url, json=bad, headers=admin)
        assert answer.status_code == 422 and answer.json()["code"] == "invalid_request", bad
    unknown = await client.post(
        f"{API}/events/{uuid.uuid4()}/seats/suspend", json=body, headers=admin
    )
    assert unknown.status_code == 404


async def test_a_draft_has_no_seats_on_sale_to_suspend(
    client: httpx.AsyncClient, make_user: Any, clean_db: Any
) -> None:
    """Found by the contract run: an admin suspending seats of an unpublished event got 503
    (no inventory in Redis). It is 409 invalid_state, and nothing changes in PostgreSQL."""
    from tests.api.conftest import event_payload

    _, organizer = await make_user("organizer")
    _, admin = await make_user("admin")
    created = await client.post(f"{API}/events", json=event_payload(), headers=organizer)
    assert created.status_code == 201, created.text
    event = created.json()
    floor = event["zones"][0]["zone_id"]
    for who in (organizer, admin):
        answer = await client.post(
            f"{API}/events/{event['event_id']}/seats/suspend",
            json={"zone_id": floor, "quantity": 1, "reason": "x"},
            headers=who,
        )
        assert answer.status_code == 409, answer.text
        assert answer.json()["code"] == "invalid_state"
    assert await _zone_row(clean_db, floor) == (0, 0, 0)
    assert await clean_db.fetchval("SELECT count(*) FROM seat_suspensions") == 0
