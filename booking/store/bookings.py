"""Bookings in PostgreSQL, with the zone and per-user counters that carry the invariants.

Every write here changes a booking and its counters in one statement group inside the caller's
transaction, so `zones.held/sold` always equal the sum of the live bookings, and the CHECK
constraints refuse an oversell or a breached per-user limit outright.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

from booking.domain import Booking
from booking.store import Conn
from booking.tickets.store import void_tickets


@dataclass(frozen=True, slots=True)
class NewHold:
    booking: Booking
    idempotency_key: str
    fingerprint: str
    max_per_user: int


# A batch of holds is written by ONE statement, rows passed as arrays: one round trip and no
# BEGIN/COMMIT of its own (a statement is atomic), where `executemany` per table inside a
# transaction cost six round trips and an executor step per row (asyncpg and PostgreSQL were a
# quarter of the reserve path's CPU). Foreign keys and constraints are checked as before; the
# statement fails whole. Seat lists travel as JSON text (arrays of arrays must be rectangular).
# Zone rows are updated in zone id order so concurrent batches lock them in one order.
_INSERT_HOLDS = """
WITH new_bookings AS (
    INSERT INTO bookings (booking_id, event_id, zone_id, user_id, quantity, seats, status,
                          amount_minor, currency, idempotency_key, request_fingerprint,
                          created_at, expires_at)
    SELECT b, e, z, u, q,
           CASE WHEN s IS NULL THEN NULL ELSE ARRAY(
               SELECT label FROM jsonb_array_elements_text(s::jsonb) WITH ORDINALITY AS j(label, n)
               ORDER BY n) END,
           'RESERVED', a, c, k, f, ca, ea
    FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::int[], $6::text[],
                $7::bigint[], $8::text[], $9::text[], $10::text[], $11::timestamptz[],
                $12::timestamptz[])
         AS t(b, e, z, u, q, s, a, c, k, f, ca, ea)
    RETURNING 1
), new_seats AS (
    INSERT INTO booking_seats (booking_id, zone_id, label)
    SELECT * FROM unnest($13::uuid[], $14::uuid[], $15::text[])
    RETURNING 1
), held AS (
    UPDATE zones SET held = zones.held + d.delta
    FROM (SELECT * FROM unnest($16::uuid[], $17::int[]) AS u(zone_id, delta) ORDER BY zone_id) d
    WHERE zones.zone_id = d.zone_id
    RETURNING 1
), tickets AS (
    INSERT INTO user_tickets (event_id, user_id, tickets, max_tickets)
    SELECT * FROM unnest($18::uuid[], $19::uuid[], $20::int[], $21::int[])
    ON CONFLICT (event_id, user_id)
    DO UPDATE SET tickets = user_tickets.tickets + EXCLUDED.tickets
    RETURNING 1
)
SELECT (SELECT count(*) FROM new_bookings), (SELECT count(*) FROM new_seats),
       (SELECT count(*) FROM held), (SELECT count(*) FROM tickets)
"""


async def insert_holds(conn: asyncpg.Connection, holds: Sequence[NewHold]) -> None:
    """Writes RESERVED bookings and raises their counters, all or nothing, in one statement."""
    bookings = [h.booking for h in holds]
    seated = [(b, label) for b in bookings for label in (b.seats or ())]
    held: dict[str, int] = defaultdict(int)
    tickets: dict[tuple[str, str], int] = defaultdict(int)
    limits: dict[tuple[str, str], int] = {}
    for h in holds:
        held[h.booking.zone_id] += h.booking.quantity
        key = (h.booking.event_id, h.booking.user_id)
        tickets[key] += h.booking.quantity
        limits[key] = h.max_per_user
    ordered = sorted(tickets.items())
    await conn.execute(
        _INSERT_HOLDS,
        [b.booking_id for b in bookings],
        [b.event_id for b in bookings],
        [b.zone_id for b in bookings],
        [b.user_id for b in bookings],
        [b.quantity for b in bookings],
        [orjson.dumps(list(b.seats)).decode() if b.seats is not None else None for b in bookings],
        [b.amount_minor for b in bookings],
        [b.currency for b in bookings],
        [h.idempotency_key for h in holds],
        [h.fingerprint for h in holds],
        [b.created_at for b in bookings],
        [b.expires_at for b in bookings],
        [b.booking_id for b, _ in seated],
        [b.zone_id for b, _ in seated],
        [label for _, label in seated],
        list(held),
        list(held.values()),
        [event_id for (event_id, _), _ in ordered],
        [user_id for (_, user_id), _ in ordered],
        [count for _, count in ordered],
        [limits[key] for key, _ in ordered],
    )


def _uuids(values: Sequence[str]) -> list[uuid.UUID]:
    """The values that are UUIDs (anything else cannot be a booking in the database)."""
    out = []
    for value in values:
        try:
            out.append(uuid.UUID(value))
        except ValueError:
            continue
    return out


@dataclass(frozen=True, slots=True)
class EndedBooking:
    booking_id: str
    event_id: str
    zone_id: str
    user_id: str
    quantity: int
    previous_status: str


async def extend_deadline(conn: Conn, booking_id: str, expires_at: datetime) -> None:
    """Moves a RESERVED booking's deadline later (never earlier), as Redis just did."""
    await conn.execute(
        """UPDATE bookings SET expires_at = $2
           WHERE booking_id = $1 AND status = 'RESERVED' AND expires_at < $2""",
        uuid.UUID(booking_id),
        expires_at,
    )


async def end_bookings(
    conn: asyncpg.Connection,
    booking_ids: Sequence[str],
    *,
    status: str,
    now: datetime,
    from_statuses: Sequence[str] = ("RESERVED",),
) -> list[EndedBooking]:
    """Moves live bookings to an end status (CANCELLED, EXPIRED, REFUNDED), freeing their seats
    and tickets. Bookings already ended are left alone, so calling it twice changes nothing."""
    keys = _uuids(booking_ids)
    if not keys:
        return []
    rows = await conn.fetch(
        """WITH target AS (
               SELECT booking_id, status AS previous_status FROM bookings
               WHERE booking_id = ANY($1::uuid[]) AND status = ANY($4::text[])
               ORDER BY booking_id FOR UPDATE)
           UPDATE bookings b SET status = $2, ended_at = $3
           FROM target t WHERE b.booking_id = t.booking_id
           RETURNING b.booking_id, b.event_id, b.zone_id, b.user_id, b.quantity,
                     t.previous_status""",
        keys,
        status,
        now,
        list(from_statuses),
    )
    ended = [
        EndedBooking(
            booking_id=str(row["booking_id"]),
            event_id=str(row["event_id"]),
            zone_id=str(row["zone_id"]),
            user_id=str(row["user_id"]),
            quantity=row["quantity"],
            previous_status=row["previous_status"],
        )
        for row in rows
    ]
    if not ended:
        return []
    await conn.execute(
        "UPDATE booking_seats SET live = false WHERE booking_id = ANY($1::uuid[]) AND live",
        [uuid.UUID(e.booking_id) for e in ended],
    )
    # A refunded sale's tickets stop admitting anyone in the same transaction.
    await void_tickets(
        conn, [e.booking_id for e in ended if e.previous_status == "CONFIRMED"], now=now
    )
    held: dict[str, int] = defaultdict(int)
    sold: dict[str, int] = defaultdict(int)
    tickets: dict[tuple[str, str], int] = defaultdict(int)
    for e in ended:
        (held if e.previous_status == "RESERVED" else sold)[e.zone_id] += e.quantity
        tickets[(e.event_id, e.user_id)] += e.quantity
    zone_ids = sorted(set(held) | set(sold))
    await conn.executemany(
        "UPDATE zones SET held = held - $2, sold = sold - $3 WHERE zone_id = $1",
        [(uuid.UUID(z), held.get(z, 0), sold.get(z, 0)) for z in zone_ids],
    )
    await conn.executemany(
        """UPDATE user_tickets SET tickets = tickets - $3
           WHERE event_id = $1 AND user_id = $2""",
        [(uuid.UUID(ev), uuid.UUID(user), n) for (ev, user), n in sorted(tickets.items())],
    )
    return ended


async def confirm_booking(
    conn: asyncpg.Connection, booking_id: str, *, now: datetime, payment_id: str | None
) -> bool:
    """RESERVED -> CONFIRMED, moving its tickets from held to sold. False if it was not held."""
    row = await conn.fetchrow(
        """UPDATE bookings SET status = 'CONFIRMED', confirmed_at = $2,
               payment_id = coalesce($3, payment_id)
           WHERE booking_id = $1 AND status = 'RESERVED'
           RETURNING zone_id, quantity""",
        uuid.UUID(booking_id),
        now,
        uuid.UUID(payment_id) if payment_id else None,
    )
    if row is None:
        return False
    await conn.execute(
        "UPDATE zones SET held = held - $2, sold = sold + $2 WHERE zone_id = $1",
        row["zone_id"],
        row["quantity"],
    )
    return True


def _booking(row: asyncpg.Record) -> Booking:
    return Booking(
        booking_id=str(row["booking_id"]),
        event_id=str(row["event_id"]),
        zone_id=str(row["zone_id"]),
        user_id=str(row["user_id"]),
        quantity=row["quantity"],
        seats=tuple(row["seats"]) if row["seats"] is not None else None,
        status=row["status"],
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        confirmed_at=row["confirmed_at"],
        payment_id=str(row["payment_id"]) if row["payment_id"] else None,
    )


async def find_booking(conn: Conn, booking_id: str) -> Booking | None:
    try:
        key = uuid.UUID(booking_id)
    except ValueError:
        return None
    row = await conn.fetchrow("SELECT * FROM bookings WHERE booking_id = $1", key)
    return None if row is None else _booking(row)


async def list_bookings(conn: Conn, user_id: str, *, limit: int = 100) -> list[Booking]:
    rows = await conn.fetch(
        "SELECT * FROM bookings WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2",
        uuid.UUID(user_id),
        limit,
    )
    return [_booking(row) for row in rows]


async def due_reserved(conn: Conn, *, before: datetime, limit: int) -> list[tuple[str, str]]:
    """(event_id, booking_id) of RESERVED bookings whose hold ended before `before`."""
    rows = await conn.fetch(
        """SELECT event_id, booking_id FROM bookings
           WHERE status = 'RESERVED' AND expires_at < $1 ORDER BY expires_at LIMIT $2""",
        before,
        limit,
    )
    return [(str(row["event_id"]), str(row["booking_id"])) for row in rows]


async def live_bookings(conn: Conn, event_id: str) -> list[asyncpg.Record]:
    """Every RESERVED or CONFIRMED booking of the event (to rebuild Redis from the truth)."""
    return await conn.fetch(
        """SELECT * FROM bookings WHERE event_id = $1 AND status IN ('RESERVED', 'CONFIRMED')""",
        uuid.UUID(event_id),
    )


async def lock_status(conn: asyncpg.Connection, booking_id: str) -> asyncpg.Record | None:
    """The booking's status and payment id, its row locked until the transaction ends."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT status, payment_id FROM bookings WHERE booking_id = $1 FOR UPDATE",
        uuid.UUID(booking_id),
    )
    return row
