from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def test_reserve_ga_then_read_list_and_cancel(
    client: httpx.AsyncClient, make_user: Any, published_event: Any, clean_db: Any
) -> None:
    event, _ = await published_event()
    floor = event["zones"][0]["zone_id"]
    _, buyer = await make_user()
    answer = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": event["event_id"], "zone_id": floor, "quantity": 3},
        headers={**buyer, **key()},
    )
    assert answer.status_code == 201, answer.text
    booking = answer.json()
    assert booking["status"] == "RESERVED"
    assert booking["amount_minor"] == 3 * 5000 and booking["currency"] == "EUR"
    assert booking["quantity"] == 3 and "expires_at" in booking

    # Durable before 201: the row and the counters are in PostgreSQL.
    row = await clean_db.fetchrow(
        "SELECT held, sold FROM zones WHERE zone_id = $1", uuid.UUID(floor)
    )
    assert (row["held"], row["sold"]) == (3, 0)

    got = await client.get(f"/api/v1/bookings/{booking['booking_id']}", headers=buyer)
    assert got.json() == {**booking, "tickets": []}  # a hold has no tickets yet
    mine = await client.get("/api/v1/bookings", headers=buyer)
    assert [b["booking_id"] for b in mine.json()["items"]] == [booking["booking_id"]]

    _, stranger = await make_user()
    hidden = await client.get(f"/api/v1/bookings/{booking['booking_id']}", headers=stranger)
    assert hidden.status_code == 404
    assert (
        await client.post(f"/api/v1/bookings/{booking['booking_id']}/cancel", headers=stranger)
    ).status_code == 404

    cancelled = await client.post(f"/api/v1/bookings/{booking['booking_id']}/cancel", headers=buyer)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    availability = (await client.get(f"/api/v1/events/{event['event_id']}/availability")).json()
    assert availability["zones"][0]["available"] == 10
    row = await clean_db.fetchrow(
        "SELECT held, sold FROM zones WHERE zone_id = $1", uuid.UUID(floor)
    )
    assert (row["held"], row["sold"]) == (0, 0)
    again = await client.post(f"/api/v1/bookings/{booking['booking_id']}/cancel", headers=buyer)
    assert again.status_code == 200 and again.json()["status"] == "CANCELLED"
    outbox = await clean_db.fetchval(
        "SELECT count(*) FROM outbox WHERE payload->>'type' = 'booking.cancelled'"
    )
    assert outbox == 1


async def test_seated_all_or_nothing(
    client: httpx.AsyncClient, make_user: Any, published_event: Any
) -> None:
    event, _ = await published_event()
    balcony = event["zones"][1]["zone_id"]
    _, first = await make_user()
    _, second = await make_user()
    taken = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": event["event_id"], "zone_id": balcony, "seats": ["A1", "A2"]},
        headers={**first, **key()},
    )
    assert taken.status_code == 201 and taken.json()["seats"] == ["A1", "A2"]
    clash = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": event["event_id"], "zone_id": balcony, "seats": ["A3", "A2"]},
        headers={**second, **key()},
    )
    assert clash.status_code == 409 and clash.json()["code"] == "seat_unavailable"
    availability = (await client.get(f"/api/v1/events/{event['event_id']}/availability")).json()
    assert availability["zones"][1]["available"] == 3  # A3 was not taken


async def test_idempotent_replay_and_reuse(
    client: httpx.AsyncClient, make_user: Any, published_event: Any, clean_db: Any
) -> None:
    event, _ = await published_event()
    floor = event["zones"][0]["zone_id"]
    _, buyer = await make_user()
    headers = {**buyer, **key()}
    body = {"event_id": event["event_id"], "zone_id": floor, "quantity": 2}
    first = await client.post("/api/v1/bookings/reserve", json=body, headers=headers)
    replay = await client.post("/api/v1/bookings/reserve", json=body, headers=headers)
    assert first.status_code == replay.status_code == 201
    assert first.json() == replay.json()
    reused = await client.post(
        "/api/v1/bookings/reserve", json={**body, "quantity": 1}, headers=headers
    )
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    assert await clean_db.fetchval("SELECT count(*) FROM bookings") == 1
    availability = (await client.get(f"/api/v1/events/{event['event_id']}/availability")).json()
    assert availability["zones"][0]["available"] == 8


async def test_concurrent_same_key_takes_seats_once(
    client: httpx.AsyncClient, make_user: Any, published_event: Any, clean_db: Any
) -> None:
    event, _ = await published_event()
    _, buyer = await make_user()
    headers = {**buyer, **key()}
    body = {"event_id": event["event_id"], "zone_id": event["zones"][0]["zone_id"], "quantity": 1}
    answers = await asyncio.gather(
        *[client.post("/api/v1/bookings/reserve", json=body, headers=headers) for _ in range(10)]
    )
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {201, 409} and 201 in statuses
    # Every success is the same booking; the others were told the first is still in flight.
    assert len({a.json()["booking_id"] for a in answers if a.status_code == 201}) == 1
    for a in answers:
        if a.status_code == 409:
            assert a.json()["code"] == "idempotency_in_flight"
    assert await clean_db.fetchval("SELECT count(*) FROM bookings") == 1


async def test_user_limit_and_sold_out(
    client: httpx.AsyncClient, make_user: Any, published_event: Any
) -> None:
    event, _ = await published_event(max_per_user=4)
    floor = event["zones"][0]["zone_id"]
    body = {"event_id": event["event_id"], "zone_id": floor}
    _, buyer = await make_user()
    ok = await client.post(
        "/api/v1/bookings/reserve", json={**body, "quantity": 3}, headers={**buyer, **key()}
    )
    assert ok.status_code == 201
    over = await client.post(
        "/api/v1/bookings/reserve", json={**body, "quantity": 2}, headers={**buyer, **key()}
    )
    assert over.status_code == 409 and over.json()["code"] == "user_limit_exceeded"
    for _ in range(2):
        _, other = await make_user()
        await client.post(
            "/api/v1/bookings/reserve", json={**body, "quantity": 3}, headers={**other, **key()}
        )
    _, late = await make_user()
    sold_out = await client.post(
        "/api/v1/bookings/reserve", json={**body, "quantity": 2}, headers={**late, **key()}
    )
    assert sold_out.status_code == 409 and sold_out.json()["code"] == "sold_out"


async def test_bad_reserve_input_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, make_user: Any, published_event: Any, clean_db: Any
) -> None:
    event, _ = await published_event()
    floor, balcony = event["zones"][0]["zone_id"], event["zones"][1]["zone_id"]
    _, buyer = await make_user()
    base = {"event_id": event["event_id"]}
    cases = [
        ({**base, "zone_id": floor, "quantity": -1}, "quantity"),
        ({**base, "zone_id": floor, "quantity": 10**9}, "quantity"),
        ({**base, "zone_id": str(uuid.uuid4()), "quantity": 1}, "zone_id"),
        ({**base, "zone_id": floor, "seats": ["A1"]}, "seats"),
        ({**base, "zone_id": balcony, "seats": ["Z9"]}, "seats"),
        ({**base, "zone_id": balcony, "seats": ["A1", "A1"]}, "seats"),
        ({"event_id": str(uuid.uuid4()), "zone_id": floor, "quantity": 1}, "event_id"),
        ({**base, "zone_id": "not-a-uuid", "quantity": 1}, "zone_id"),
    ]
    for body, field in cases:
        answer = await client.post(
            "/api/v1/bookings/reserve", json=body, headers={**buyer, **key()}
        )
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["code"] == "invalid_request"
        assert field in {e["field"] for e in answer.json()["errors"]}, (field, answer.json())
    missing_key = await client.post(
        "/api/v1/bookings/reserve", json={**base, "zone_id": floor, "quantity": 1}, headers=buyer
    )
    assert missing_key.status_code == 400
    assert missing_key.json()["code"] == "idempotency_key_required"
    assert await clean_db.fetchval("SELECT count(*) FROM bookings") == 0
    availability = (await client.get(f"/api/v1/events/{event['event_id']}/availability")).json()
    assert [z["available"] for z in availability["zones"]] == [10, 5]


async def test_draft_event_is_not_on_sale(client: httpx.AsyncClient, make_user: Any) -> None:
    from tests.api.conftest import event_payload

    _, organizer = await make_user("organizer")
    event = (await client.post("/api/v1/events", json=event_payload(), headers=organizer)).json()
    _, buyer = await make_user()
    answer = await client.post(
        "/api/v1/bookings/reserve",
        json={
            "event_id": event["event_id"],
            "zone_id": event["zones"][0]["zone_id"],
            "quantity": 1,
        },
        headers={**buyer, **key()},
    )
    assert answer.status_code == 409 and answer.json()["code"] == "sale_not_open"


async def test_the_hot_routes_do_not_need_starlettes_router(
    app: Any, client: httpx.AsyncClient, make_user: Any, published_event: Any
) -> None:
    event, _ = await published_event()
    _, buyer = await make_user()
    body = {"event_id": event["event_id"], "zone_id": event["zones"][0]["zone_id"], "quantity": 1}
    app.router.routes.clear()  # only the hot routes are still served
    taken = await client.post("/api/v1/bookings/reserve", json=body, headers={**buyer, **key()})
    assert taken.status_code == 201, taken.text
    refused = await client.post("/api/v1/bookings/reserve", json=body)
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    queue = await client.post(
        "/api/v1/queue/join", json={"event_id": event["event_id"]}, headers=buyer
    )
    assert queue.status_code == 409 and queue.json()["code"] == "invalid_state"  # no queue
    assert (await client.get("/api/v1/bookings", headers=buyer)).status_code == 404
