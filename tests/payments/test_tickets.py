"""Signed tickets and check-in on the real path: a booking paid through the mock provider and
confirmed by the real saga workers (Kafka, PostgreSQL, Redis) gets its tickets in the confirming
transaction; the door admits each exactly once; a refund voids them."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from booking import errors
from booking.db import create_pool
from booking.tickets import TicketClaim, TicketSigner
from booking.tickets.service import Tickets
from common.tokens import Identity
from tests.payments.conftest import SagaRig, wait_for


async def _confirmation_emails(rig: SagaRig, booking_id: str) -> list[dict[str, Any]]:
    """The data of the booking's confirmation emails in the outbox."""
    rows = await rig.pool.fetch(
        "SELECT payload FROM outbox WHERE topic = $1 AND key = $2 ORDER BY id",
        rig.topics.notifications,
        booking_id,
    )
    data = [row["payload"]["data"] for row in rows]
    return [d["data"] for d in data if d["kind"] == "booking_confirmed"]


async def _status_is(rig: SagaRig, booking_id: str, status: str) -> bool:
    return await rig.booking_status(booking_id) == status


async def _confirm(rig: SagaRig, buyer: dict[str, str], booking_id: str) -> None:
    """Pays for the hold and waits for the saga (running) to confirm it."""
    paid = await rig.pay(buyer, booking_id)
    assert paid.status_code == 201, paid.text
    delivered = await rig.deliver(*await rig.signed_webhook(paid.json()["payment_id"]))
    assert delivered.status_code == 200, delivered.text
    await wait_for(lambda: _status_is(rig, booking_id, "CONFIRMED"))


async def _seated_event(rig: SagaRig, seats: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    _, organizer = await rig.user("organizer")
    created = await rig.client.post(
        "/api/v1/events",
        headers=organizer,
        json={
            "name": "Seated night",
            "venue": "Loopback",
            "starts_at": "2031-01-01T20:00:00Z",
            "sale_starts_at": "2021-01-01T10:00:00Z",
            "max_per_user": 4,
            "currency": "EUR",
            "zones": [{"name": "Balcony", "price_minor": 4000, "seats": seats}],
        },
    )
    assert created.status_code == 201, created.text
    event_id = created.json()["event_id"]
    published = await rig.client.post(f"/api/v1/events/{event_id}/publish", headers=organizer)
    assert published.status_code == 200, published.text
    return published.json(), organizer


async def _tickets(rig: SagaRig, buyer: dict[str, str], booking_id: str) -> list[dict[str, Any]]:
    answer = await rig.client.get(f"/api/v1/bookings/{booking_id}", headers=buyer)
    assert answer.status_code == 200, answer.text
    tickets: list[dict[str, Any]] = answer.json()["tickets"]
    return tickets


async def _scan(rig: SagaRig, headers: dict[str, str], code: str) -> httpx.Response:
    return await rig.client.post("/api/v1/checkin", headers=headers, json={"code": code})


async def _confirmed_ga(rig: SagaRig, quantity: int) -> tuple[dict[str, Any], list[str]]:
    """A confirmed general-admission booking of `quantity`, and its ticket codes."""
    event = await rig.event(capacity=4)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event, quantity=quantity)
    await _confirm(rig, buyer, booking["booking_id"])
    codes = [t["code"] for t in await _tickets(rig, buyer, booking["booking_id"])]
    return booking, codes


async def test_a_confirmed_booking_shows_one_signed_ticket_per_seat(
    rig: SagaRig, saga_workers: Any
) -> None:
    event, _ = await _seated_event(rig, ["A1", "A2", "A3"])
    _, buyer = await rig.user()
    reserved = await rig.client.post(
        "/api/v1/bookings/reserve",
        headers={**buyer, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "event_id": event["event_id"],
            "zone_id": event["zones"][0]["zone_id"],
            "seats": ["A3", "A1"],
        },
    )
    assert reserved.status_code == 201, reserved.text
    booking_id = reserved.json()["booking_id"]
    assert await _tickets(rig, buyer, booking_id) == []  # a hold has no tickets

    async with saga_workers():
        await _confirm(rig, buyer, booking_id)
        emails = await wait_for(lambda: _confirmation_emails(rig, booking_id))
    tickets = await _tickets(rig, buyer, booking_id)
    assert [(t["seat_id"], t["status"], t["checked_in_at"]) for t in tickets] == [
        ("A3", "valid", None),
        ("A1", "valid", None),
    ]
    # The confirmation email lists the same signed codes, seat by seat.
    assert len(emails) == 1
    assert emails[0]["tickets"] == [
        {"code": t["code"], "zone_id": t["zone_id"], "seat_id": t["seat_id"]} for t in tickets
    ]
    signer = TicketSigner(rig.settings.ticket_secret)
    for unit, ticket in enumerate(tickets, start=1):
        assert ticket["zone_id"] == event["zones"][0]["zone_id"]
        assert signer.verify(ticket["code"]) == TicketClaim(
            ticket["ticket_id"], event["event_id"], unit, ticket["seat_id"]
        )
    listed = await rig.client.get("/api/v1/bookings", headers=buyer)
    assert listed.json()["items"][0]["tickets"] == tickets
    step = await rig.pool.fetchval(
        """SELECT detail FROM saga_steps WHERE step = 'confirm_booking' AND outcome = 'confirmed'
           AND saga_id = (SELECT payment_id FROM bookings WHERE booking_id = $1)""",
        uuid.UUID(booking_id),
    )
    assert step == {"tickets": 2}

    # Confirmed before tickets existed (no row): the booking's first read issues them.
    await rig.pool.execute("DELETE FROM tickets WHERE booking_id = $1", uuid.UUID(booking_id))
    reissued = await _tickets(rig, buyer, booking_id)
    assert [t["seat_id"] for t in reissued] == ["A3", "A1"]
    assert {t["ticket_id"] for t in reissued}.isdisjoint(t["ticket_id"] for t in tickets)
    assert await _tickets(rig, buyer, booking_id) == reissued


async def test_a_ticket_admits_once_and_the_second_scan_says_when(
    rig: SagaRig, saga_workers: Any
) -> None:
    async with saga_workers():
        booking, codes = await _confirmed_ga(rig, quantity=2)
    _, staff = await rig.user("staff")
    first = await _scan(rig, staff, codes[0])
    assert first.status_code == 200, first.text
    admitted = first.json()
    assert admitted["booking_id"] == booking["booking_id"]
    assert admitted["event_id"] == booking["event_id"]
    assert admitted["zone_id"] == booking["zone_id"]
    assert admitted["seat_id"] is None
    assert admitted["checked_in_at"]

    again = await _scan(rig, staff, codes[0])
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["code"] == "already_checked_in"
    assert again.json()["checked_in_at"] == admitted["checked_in_at"]
    assert admitted["checked_in_at"] in again.json()["detail"]

    other = await _scan(rig, staff, codes[1])  # the booking's other ticket is still good
    assert other.status_code == 200, other.text
    assert other.json()["ticket_id"] != admitted["ticket_id"]


async def test_forged_garbled_and_unknown_codes(rig: SagaRig) -> None:
    _, staff = await rig.user("staff")
    signer = TicketSigner(rig.settings.ticket_secret)
    genuine = signer.sign(TicketClaim(str(uuid.uuid4()), str(uuid.uuid4()), 1))
    forged = TicketSigner("someone-else's-secret-" + "f" * 40).sign(
        TicketClaim(str(uuid.uuid4()), str(uuid.uuid4()), 1)
    )
    altered = genuine[:10] + ("A" if genuine[10] != "A" else "B") + genuine[11:]
    for code in (forged, altered, "hello", "A" * 68, "not base64url!", "\u00e9t\u00e9"):
        answer = await _scan(rig, staff, code)
        assert answer.status_code == 422, (code, answer.text)
        assert answer.json()["code"] == "ticket_invalid"
    # Ours, but not on record (a database restored from before it was issued).
    unknown = await _scan(rig, staff, genuine)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    too_long = await _scan(rig, staff, "A" * 1000)
    assert (too_long.status_code, too_long.json()["code"]) == (422, "invalid_request")


async def test_who_may_check_in(rig: SagaRig, saga_workers: Any) -> None:
    event, organizer = await _seated_event(rig, ["S1", "S2", "S3"])
    _, buyer = await rig.user()
    reserved = await rig.client.post(
        "/api/v1/bookings/reserve",
        headers={**buyer, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "event_id": event["event_id"],
            "zone_id": event["zones"][0]["zone_id"],
            "seats": ["S1", "S2", "S3"],
        },
    )
    assert reserved.status_code == 201, reserved.text
    async with saga_workers():
        await _confirm(rig, buyer, reserved.json()["booking_id"])
    codes = [t["code"] for t in await _tickets(rig, buyer, reserved.json()["booking_id"])]
    _, other_organizer = await rig.user("organizer")
    _, admin = await rig.user("admin")
    _, staff = await rig.user("staff")

    for refused in (buyer, other_organizer):
        answer = await _scan(rig, refused, codes[0])
        assert (answer.status_code, answer.json()["code"]) == (403, "forbidden")
    nobody = await rig.client.post("/api/v1/checkin", json={"code": codes[0]})
    assert nobody.status_code == 401
    for allowed, code in zip((organizer, admin, staff), codes, strict=True):
        answer = await _scan(rig, allowed, code)
        assert answer.status_code == 200, answer.text
    seats = await rig.pool.fetch(
        "SELECT seat_id, checked_in_by FROM tickets WHERE event_id = $1 ORDER BY unit",
        uuid.UUID(event["event_id"]),
    )
    assert [row["seat_id"] for row in seats] == ["S1", "S2", "S3"]
    assert all(row["checked_in_by"] for row in seats)


async def test_a_refunded_booking_s_tickets_are_void(rig: SagaRig, saga_workers: Any) -> None:
    _, staff = await rig.user("staff")
    async with saga_workers():
        booking, codes = await _confirmed_ga(rig, quantity=2)
        assert (await _scan(rig, staff, codes[0])).status_code == 200
        owner = await rig.pool.fetchval(
            "SELECT user_id FROM bookings WHERE booking_id = $1", uuid.UUID(booking["booking_id"])
        )
        buyer = rig.headers(str(owner))
        cancelled = await rig.client.post(
            f"/api/v1/bookings/{booking['booking_id']}/cancel", headers=buyer
        )
        assert cancelled.status_code == 200, cancelled.text
        await wait_for(lambda: _status_is(rig, booking["booking_id"], "REFUNDED"))
    for code in codes:  # the used one and the unused one alike
        answer = await _scan(rig, staff, code)
        assert (answer.status_code, answer.json()["code"]) == (409, "ticket_void"), answer.text
        assert answer.json()["voided_at"]
    shown = await _tickets(rig, buyer, booking["booking_id"])
    assert [t["status"] for t in shown] == ["void", "void"]


async def test_200_concurrent_scans_of_one_ticket_admit_exactly_one(
    rig: SagaRig, saga_workers: Any
) -> None:
    async with saga_workers():
        _, codes = await _confirmed_ga(rig, quantity=1)
    _, staff = await rig.user("staff")
    started = time.perf_counter()
    answers = await asyncio.gather(*(_scan(rig, staff, codes[0]) for _ in range(200)))
    elapsed = time.perf_counter() - started
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [409] * 199, statuses
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"already_checked_in"}
    admitted = next(a.json() for a in answers if a.status_code == 200)
    assert {a.json()["checked_in_at"] for a in answers if a.status_code == 409} == {
        admitted["checked_in_at"]
    }
    print(f"200 concurrent scans of one ticket: {elapsed * 1000:.0f} ms")


async def test_a_forged_code_is_refused_without_asking_the_database(migrated_database: str) -> None:
    pool = await create_pool(migrated_database, min_size=1, max_size=1)
    await pool.close()  # any read now fails
    signer = TicketSigner("door-secret-" + "d" * 40)
    tickets = Tickets(pool=pool, signer=signer)
    staff = Identity(str(uuid.uuid4()), "staff", 0)
    genuine = signer.sign(TicketClaim(str(uuid.uuid4()), str(uuid.uuid4()), 1))
    forged = genuine[:-1] + ("A" if genuine[-1] != "A" else "B")
    with pytest.raises(errors.TicketInvalidError):
        await tickets.check_in(staff, forged)
    with pytest.raises(asyncpg.InterfaceError):  # a genuine code does need it
        await tickets.check_in(staff, genuine)
