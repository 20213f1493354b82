"""PostgreSQL itself refuses an oversell, whatever Redis said (invariants 1 and 3)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from booking.domain import Booking
from booking.schemas import EventBody
from booking.store.bookings import NewHold, insert_holds
from booking.store.events import find_event, insert_event
from booking.store.users import insert_user


async def _event(pool: Any) -> tuple[Any, str]:
    user = await insert_user(
        pool, email=f"{uuid.uuid4().hex}@x.io", name="O", role="organizer", password_hash="x"
    )
    assert user is not None
    body = EventBody.model_validate(
        {
            "name": "E",
            "venue": "V",
            "starts_at": "2030-01-01T00:00:00Z",
            "sale_starts_at": "2020-01-01T00:00:00Z",
            "max_per_user": 2,
            "currency": "EUR",
            "zones": [
                {"name": "GA", "capacity": 3, "price_minor": 100},
                {"name": "S", "price_minor": 100, "seats": ["A1", "A2"]},
            ],
        },
        strict=False,
    )
    async with pool.acquire() as conn, conn.transaction():
        event_id = await insert_event(conn, user.user_id, body)
    event = await find_event(pool, event_id)
    return event, user.user_id


def _hold(event: Any, zone: Any, user_id: str, quantity: int, seats: Any = None) -> NewHold:
    now = datetime.now(UTC)
    return NewHold(
        booking=Booking(
            booking_id=str(uuid.uuid4()),
            event_id=event.event_id,
            zone_id=zone.zone_id,
            user_id=user_id,
            quantity=quantity,
            seats=seats,
            status="RESERVED",
            amount_minor=100 * quantity,
            currency="EUR",
            created_at=now,
            expires_at=now + timedelta(minutes=10),
        ),
        idempotency_key=uuid.uuid4().hex,
        fingerprint="f",
        max_per_user=event.max_per_user,
    )


async def _buyer(pool: Any) -> str:
    user = await insert_user(
        pool, email=f"{uuid.uuid4().hex}@x.io", name="B", role="customer", password_hash="x"
    )
    assert user is not None
    return user.user_id


async def _insert(pool: Any, holds: list[NewHold]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await insert_holds(conn, holds)


async def test_zone_counter_cannot_exceed_capacity(clean_db: Any) -> None:
    event, _ = await _event(clean_db)
    ga = event.zones[0]
    await _insert(clean_db, [_hold(event, ga, await _buyer(clean_db), 2)])
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await _insert(clean_db, [_hold(event, ga, await _buyer(clean_db), 2)])
    assert refused.value.constraint_name == "zones_no_oversell"
    # A direct write is refused too.
    with pytest.raises(asyncpg.CheckViolationError):
        await clean_db.execute(
            "UPDATE zones SET sold = capacity WHERE zone_id = $1", uuid.UUID(ga.zone_id)
        )
    assert await clean_db.fetchval("SELECT count(*) FROM bookings") == 1


async def test_a_seat_has_at_most_one_live_booking(clean_db: Any) -> None:
    event, _ = await _event(clean_db)
    seated = event.zones[1]
    first = _hold(event, seated, await _buyer(clean_db), 1, ("A1",))
    await _insert(clean_db, [first])
    with pytest.raises(asyncpg.UniqueViolationError) as refused:
        await _insert(clean_db, [_hold(event, seated, await _buyer(clean_db), 1, ("A1",))])
    assert refused.value.constraint_name == "booking_seats_one_live_booking"
    # Once the first booking is no longer live, the seat can be sold again.
    await clean_db.execute(
        "UPDATE booking_seats SET live = false WHERE booking_id = $1",
        uuid.UUID(first.booking.booking_id),
    )
    await clean_db.execute(
        "UPDATE zones SET held = held - 1 WHERE zone_id = $1", uuid.UUID(seated.zone_id)
    )
    await _insert(clean_db, [_hold(event, seated, await _buyer(clean_db), 1, ("A1",))])


async def test_per_user_limit_and_idempotency_key_are_constraints(clean_db: Any) -> None:
    event, _ = await _event(clean_db)
    ga = event.zones[0]
    buyer = await _buyer(clean_db)
    await _insert(clean_db, [_hold(event, ga, buyer, 2)])
    with pytest.raises(asyncpg.CheckViolationError) as limit:
        await _insert(clean_db, [_hold(event, ga, buyer, 1)])
    assert limit.value.constraint_name == "user_tickets_within_limit"

    other = await _buyer(clean_db)
    first = _hold(event, ga, other, 1)
    await _insert(clean_db, [first])
    duplicate = _hold(event, ga, other, 1)
    duplicate = NewHold(duplicate.booking, first.idempotency_key, "f", 2)
    with pytest.raises(asyncpg.UniqueViolationError) as reused:
        await _insert(clean_db, [duplicate])
    assert reused.value.constraint_name == "bookings_one_per_idempotency_key"
