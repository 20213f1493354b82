"""Holds about to lapse whose buyer has not been warned yet (`bookings.expiry_warned_at`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class ExpiringHold:
    booking_id: str
    event_id: str
    event_name: str
    quantity: int
    expires_at: datetime
    email: str


async def claim_expiring_holds(
    conn: asyncpg.Connection, *, now: datetime, warning_s: float, limit: int
) -> list[ExpiringHold]:
    """Marks as warned, and returns, RESERVED bookings whose deadline is less than `warning_s`
    away (or half their hold, when that is shorter: a short hold is not warned at once) and
    that no payment is settling. Call in the transaction that writes the warnings; copies skip
    each other's rows."""
    rows = await conn.fetch(
        """WITH due AS (
               SELECT b.booking_id FROM bookings b
               WHERE b.status = 'RESERVED' AND b.expiry_warned_at IS NULL
                 AND b.expires_at > $1
                 AND b.expires_at <= $1 + make_interval(secs => $2)
                 AND b.expires_at - $1 <= (b.expires_at - b.created_at) / 2
                 AND NOT EXISTS (
                     SELECT 1 FROM payments p
                     WHERE p.booking_id = b.booking_id AND p.status IN ('PENDING', 'SUCCEEDED'))
               ORDER BY b.expires_at LIMIT $3
               FOR UPDATE OF b SKIP LOCKED)
           UPDATE bookings b SET expiry_warned_at = $1
           FROM due, users u, events e
           WHERE b.booking_id = due.booking_id AND u.user_id = b.user_id
             AND e.event_id = b.event_id
           RETURNING b.booking_id::text, b.event_id::text, e.name AS event_name, b.quantity,
                     b.expires_at, u.email""",
        now,
        warning_s,
        limit,
    )
    return [
        ExpiringHold(
            booking_id=row["booking_id"],
            event_id=row["event_id"],
            event_name=str(row["event_name"]),
            quantity=int(row["quantity"]),
            expires_at=row["expires_at"],
            email=str(row["email"]),
        )
        for row in rows
    ]
