"""Waitlist entries and offers in PostgreSQL (migration 0011), and the events' waitlist settings."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from booking.domain import from_ms
from booking.inventory.waitlist import Offer
from booking.store import Conn

LIVE = ("WAITING", "OFFERED")
# an offer's end -> its entry's end (a withdrawn offer's entry was left by its user)
ENTRY_END = {"TAKEN": "TAKEN", "LAPSED": "LAPSED", "WITHDRAWN": "LEFT"}


def _uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)


async def insert_entry(
    conn: Conn, event_id: str, user_id: str, zone_id: str | None, quantity: int
) -> tuple[asyncpg.Record, bool]:
    """(the user's live entry, whether it was created now): one live entry per user and event."""
    row = await conn.fetchrow(
        """INSERT INTO waitlist_entries (entry_id, event_id, user_id, zone_id, quantity)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (event_id, user_id) WHERE status IN ('WAITING', 'OFFERED') DO NOTHING
           RETURNING *""",
        uuid.uuid4(),
        uuid.UUID(event_id),
        uuid.UUID(user_id),
        _uuid(zone_id),
        quantity,
    )
    if row is not None:
        return row, True
    existing = await find_live_entry(conn, event_id, user_id)
    if existing is None:  # ended between the two statements: try once more
        return await insert_entry(conn, event_id, user_id, zone_id, quantity)
    return existing, False


async def find_live_entry(conn: Conn, event_id: str, user_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT * FROM waitlist_entries
           WHERE event_id = $1 AND user_id = $2 AND status IN ('WAITING', 'OFFERED')""",
        uuid.UUID(event_id),
        uuid.UUID(user_id),
    )
    return row


async def leave(conn: Conn, entry_id: str, now: datetime) -> bool:
    """Ends a live entry as LEFT; False if it was not live. Its outstanding offer is recorded
    WITHDRAWN by the worker, from Redis, like every other end of an offer."""
    changed = await conn.fetchval(
        """UPDATE waitlist_entries SET status = 'LEFT', ended_at = $2
           WHERE entry_id = $1 AND status IN ('WAITING', 'OFFERED') RETURNING true""",
        uuid.UUID(entry_id),
        now,
    )
    return bool(changed)


async def live_entries(conn: Conn, event_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM waitlist_entries
           WHERE event_id = $1 AND status IN ('WAITING', 'OFFERED') ORDER BY position""",
        uuid.UUID(event_id),
    )


async def outstanding_offers(conn: Conn, event_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM waitlist_offers WHERE event_id = $1 AND status = 'OUTSTANDING'",
        uuid.UUID(event_id),
    )


async def find_outstanding_offer(conn: Conn, entry_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM waitlist_offers WHERE entry_id = $1 AND status = 'OUTSTANDING'",
        uuid.UUID(entry_id),
    )
    return row


async def events_with_live_entries(conn: Conn) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT event_id FROM waitlist_entries WHERE status IN ('WAITING', 'OFFERED')"
    )
    return [str(row["event_id"]) for row in rows]


async def record_offer(
    conn: asyncpg.Connection, event_id: str, offer: Offer, now: datetime
) -> tuple[bool, str | None]:
    """Records what Redis says of one offer: (inserted now, the end it was given now or None).
    Repeating it changes nothing: an offer is inserted once and ends once."""
    inserted = await conn.fetchval(
        """INSERT INTO waitlist_offers (offer_id, entry_id, event_id, user_id, zone_id, quantity,
               seats, created_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (offer_id) DO NOTHING RETURNING true""",
        uuid.UUID(offer.offer_id),
        uuid.UUID(offer.entry_id),
        uuid.UUID(event_id),
        uuid.UUID(offer.user_id),
        uuid.UUID(offer.zone_id),
        offer.quantity,
        list(offer.seats) or None,
        from_ms(offer.created_ms) if offer.created_ms else now,
        from_ms(offer.expires_ms),
    )
    if inserted:
        await conn.execute(
            """UPDATE waitlist_entries SET status = 'OFFERED'
               WHERE entry_id = $1 AND status = 'WAITING'""",
            uuid.UUID(offer.entry_id),
        )
    if offer.status not in ENTRY_END:
        return bool(inserted), None
    ended_at = from_ms(offer.ended_ms) if offer.ended_ms else now
    changed = await conn.fetchval(
        """UPDATE waitlist_offers SET status = $2, booking_id = $3, ended_at = $4
           WHERE offer_id = $1 AND status = 'OUTSTANDING' RETURNING true""",
        uuid.UUID(offer.offer_id),
        offer.status,
        _uuid(offer.booking_id),
        ended_at,
    )
    if not changed:
        return bool(inserted), None
    await conn.execute(
        """UPDATE waitlist_entries SET status = $2, ended_at = $3
           WHERE entry_id = $1 AND status IN ('WAITING', 'OFFERED')""",
        uuid.UUID(offer.entry_id),
        ENTRY_END[offer.status],
        ended_at,
    )
    return bool(inserted), offer.status


async def update_settings(
    conn: Conn, event_id: str, *, enabled: bool | None, offer_ttl_s: int | None
) -> None:
    await conn.execute(
        """UPDATE events SET waitlist_enabled = COALESCE($2, waitlist_enabled),
               waitlist_offer_ttl_s = COALESCE($3, waitlist_offer_ttl_s)
           WHERE event_id = $1""",
        uuid.UUID(event_id),
        enabled,
        offer_ttl_s,
    )


async def entries_ended(conn: Conn, entry_ids: Sequence[str]) -> set[str]:
    """Which of these entries are no longer live in PostgreSQL."""
    rows = await conn.fetch(
        """SELECT entry_id FROM waitlist_entries
           WHERE entry_id = ANY($1::uuid[]) AND status NOT IN ('WAITING', 'OFFERED')""",
        [uuid.UUID(entry_id) for entry_id in entry_ids],
    )
    return {str(row["entry_id"]) for row in rows}


async def known_events(conn: Conn, event_ids: Sequence[str]) -> set[str]:
    """Which of these events PostgreSQL has."""
    rows = await conn.fetch(
        "SELECT event_id FROM events WHERE event_id = ANY($1::uuid[])",
        [uuid.UUID(event_id) for event_id in event_ids],
    )
    return {str(row["event_id"]) for row in rows}


async def record_taken(
    conn: asyncpg.Connection, offer_id: str, booking_id: str, now: datetime
) -> bool:
    """The offer's hold is committed: the offer TAKEN, its entry TAKEN (if PostgreSQL knows the
    offer yet; else the worker records both). True when this call recorded it."""
    entry_id = await conn.fetchval(
        """UPDATE waitlist_offers SET status = 'TAKEN', booking_id = $2, ended_at = $3
           WHERE offer_id = $1 AND status = 'OUTSTANDING' RETURNING entry_id""",
        uuid.UUID(offer_id),
        uuid.UUID(booking_id),
        now,
    )
    if entry_id is None:
        return False
    await conn.execute(
        """UPDATE waitlist_entries SET status = 'TAKEN', ended_at = $2
           WHERE entry_id = $1 AND status IN ('WAITING', 'OFFERED')""",
        entry_id,
        now,
    )
    return True


async def event_name(conn: Conn, event_id: str) -> str:
    """The event's name for its offer emails ("" if it is gone)."""
    name = await conn.fetchval("SELECT name FROM events WHERE event_id = $1", uuid.UUID(event_id))
    return str(name or "")
