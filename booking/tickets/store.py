"""Tickets in PostgreSQL. Every write runs in the caller's transaction; the one that admits
someone is a single conditional UPDATE, so concurrent scans of one code admit exactly one."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TypeAlias

import asyncpg

from booking.tickets.model import Ticket

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


def _ticket(row: asyncpg.Record) -> Ticket:
    return Ticket(
        ticket_id=str(row["ticket_id"]),
        booking_id=str(row["booking_id"]),
        event_id=str(row["event_id"]),
        zone_id=str(row["zone_id"]),
        unit=row["unit"],
        seat_id=row["seat_id"],
        code=row["code"],
        status=row["status"],
        issued_at=row["issued_at"],
        voided_at=row["voided_at"],
        checked_in_at=row["checked_in_at"],
        checked_in_by=str(row["checked_in_by"]) if row["checked_in_by"] else None,
    )


async def insert_tickets(conn: asyncpg.Connection, tickets: Sequence[Ticket]) -> int:
    """Writes new tickets in one statement; a unit that already has one keeps it. How many were
    written."""
    if not tickets:
        return 0
    written = await conn.fetchval(
        """WITH written AS (
               INSERT INTO tickets (ticket_id, booking_id, event_id, zone_id, unit, seat_id,
                                    code, status, issued_at)
               SELECT t, b, e, z, u, s, c, 'valid', $8
               FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::int[],
                           $6::text[], $7::text[]) AS x(t, b, e, z, u, s, c)
               ON CONFLICT (booking_id, unit) DO NOTHING
               RETURNING 1)
           SELECT count(*) FROM written""",
        [uuid.UUID(t.ticket_id) for t in tickets],
        [uuid.UUID(t.booking_id) for t in tickets],
        [uuid.UUID(t.event_id) for t in tickets],
        [uuid.UUID(t.zone_id) for t in tickets],
        [t.unit for t in tickets],
        [t.seat_id for t in tickets],
        [t.code for t in tickets],
        tickets[0].issued_at,
    )
    return int(written)


async def tickets_of(conn: Conn, booking_ids: Sequence[str]) -> dict[str, list[Ticket]]:
    """booking id -> its tickets in unit order (bookings without tickets are left out)."""
    if not booking_ids:
        return {}
    rows = await conn.fetch(
        "SELECT * FROM tickets WHERE booking_id = ANY($1::uuid[]) ORDER BY booking_id, unit",
        [uuid.UUID(b) for b in booking_ids],
    )
    found: dict[str, list[Ticket]] = {}
    for row in rows:
        ticket = _ticket(row)
        found.setdefault(ticket.booking_id, []).append(ticket)
    return found


async def void_tickets(conn: Conn, booking_ids: Sequence[str], *, now: datetime) -> int:
    """The bookings' valid tickets admit nobody any more. How many were voided."""
    if not booking_ids:
        return 0
    result = await conn.execute(
        """UPDATE tickets SET status = 'void', voided_at = $2
           WHERE booking_id = ANY($1::uuid[]) AND status = 'valid'""",
        [uuid.UUID(b) for b in booking_ids],
        now,
    )
    return int(result.rsplit(" ", 1)[-1])


async def check_in(
    conn: Conn, ticket_id: str, *, event_id: str, by: str, now: datetime
) -> Ticket | None:
    """Marks a valid, unused ticket as used and returns it; None when it is not one (unknown,
    void or used already). Concurrent calls for one ticket queue on its row lock; each re-checks
    the condition on the row the one before it left, so exactly one gets the ticket."""
    row = await conn.fetchrow(
        """UPDATE tickets SET checked_in_at = $3, checked_in_by = $4
           WHERE ticket_id = $1 AND event_id = $2 AND status = 'valid' AND checked_in_at IS NULL
           RETURNING *""",
        uuid.UUID(ticket_id),
        uuid.UUID(event_id),
        now,
        uuid.UUID(by),
    )
    return None if row is None else _ticket(row)


async def find_ticket(conn: Conn, ticket_id: str) -> Ticket | None:
    row = await conn.fetchrow("SELECT * FROM tickets WHERE ticket_id = $1", uuid.UUID(ticket_id))
    return None if row is None else _ticket(row)


async def event_organizer(conn: Conn, event_id: str) -> str | None:
    """The organizer who owns the event; None when there is no such event."""
    value = await conn.fetchval(
        "SELECT organizer_id FROM events WHERE event_id = $1", uuid.UUID(event_id)
    )
    return None if value is None else str(value)
