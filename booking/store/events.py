"""Events, zones and seats in PostgreSQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from booking.schemas import EventBody


@dataclass(frozen=True)
class ZoneRow:
    zone_id: str
    name: str
    kind: str
    capacity: int
    price_minor: int
    held: int = 0
    sold: int = 0
    suspended: int = 0
    seats: tuple[str, ...] | None = None


@dataclass(frozen=True)
class EventRow:
    event_id: str
    organizer_id: str
    name: str
    venue: str
    starts_at: datetime
    sale_starts_at: datetime
    max_per_user: int
    currency: str
    status: str
    queue_enabled: bool
    queue_max_concurrent: int
    queue_release_per_tick: int
    queue_pass_ttl_s: int
    queue_paused: bool
    zones: tuple[ZoneRow, ...] = field(default_factory=tuple)
    waitlist_enabled: bool = True
    waitlist_offer_ttl_s: int = 300

    def zone(self, zone_id: str) -> ZoneRow | None:
        return next((zone for zone in self.zones if zone.zone_id == zone_id), None)


from booking.store import Conn  # noqa: E402


async def insert_event(conn: asyncpg.Connection, organizer_id: str, body: EventBody) -> str:
    """Inserts the event, its zones and seats (call inside a transaction); returns the id."""
    event_id = uuid.uuid4()
    await conn.execute(
        """INSERT INTO events (event_id, organizer_id, name, venue, starts_at, sale_starts_at,
               max_per_user, currency, queue_enabled, queue_max_concurrent,
               queue_release_per_tick, queue_pass_ttl_s, waitlist_enabled,
               waitlist_offer_ttl_s)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)""",
        event_id,
        uuid.UUID(organizer_id),
        body.name,
        body.venue,
        body.starts_at,
        body.sale_starts_at,
        body.max_per_user,
        body.currency,
        body.queue.enabled,
        body.queue.max_concurrent,
        body.queue.release_per_tick,
        body.queue.pass_ttl_s,
        body.waitlist.enabled,
        body.waitlist.offer_ttl_s,
    )
    seat_rows: list[tuple[Any, ...]] = []
    for position, zone in enumerate(body.zones):
        zone_id = uuid.uuid4()
        await conn.execute(
            """INSERT INTO zones (zone_id, event_id, position, name, kind, capacity, price_minor)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            zone_id,
            event_id,
            position,
            zone.name,
            "seated" if zone.seats is not None else "ga",
            zone.capacity,
            zone.price_minor,
        )
        for seat_position, label in enumerate(zone.seats or ()):
            seat_rows.append((zone_id, label, seat_position))
    if seat_rows:
        await conn.copy_records_to_table(
            "seats", records=seat_rows, columns=["zone_id", "label", "position"]
        )
    return str(event_id)


def _event(row: asyncpg.Record, zones: tuple[ZoneRow, ...]) -> EventRow:
    return EventRow(
        event_id=str(row["event_id"]),
        organizer_id=str(row["organizer_id"]),
        name=row["name"],
        venue=row["venue"],
        starts_at=row["starts_at"],
        sale_starts_at=row["sale_starts_at"],
        max_per_user=row["max_per_user"],
        currency=row["currency"],
        status=row["status"],
        queue_enabled=row["queue_enabled"],
        queue_max_concurrent=row["queue_max_concurrent"],
        queue_release_per_tick=row["queue_release_per_tick"],
        queue_pass_ttl_s=row["queue_pass_ttl_s"],
        queue_paused=row["queue_paused"],
        zones=zones,
        waitlist_enabled=row["waitlist_enabled"],
        waitlist_offer_ttl_s=row["waitlist_offer_ttl_s"],
    )


async def _zones(conn: Conn, event_ids: list[uuid.UUID]) -> dict[str, list[ZoneRow]]:
    rows = await conn.fetch(
        """SELECT z.*, (SELECT array_agg(s.label ORDER BY s.position) FROM seats s
                        WHERE s.zone_id = z.zone_id) AS seat_labels
           FROM zones z WHERE z.event_id = ANY($1::uuid[]) ORDER BY z.event_id, z.position""",
        event_ids,
    )
    by_event: dict[str, list[ZoneRow]] = {}
    for row in rows:
        by_event.setdefault(str(row["event_id"]), []).append(
            ZoneRow(
                zone_id=str(row["zone_id"]),
                name=row["name"],
                kind=row["kind"],
                capacity=row["capacity"],
                price_minor=row["price_minor"],
                held=row["held"],
                sold=row["sold"],
                suspended=row["suspended"],
                seats=tuple(row["seat_labels"]) if row["kind"] == "seated" else None,
            )
        )
    return by_event


async def find_event(conn: Conn, event_id: str) -> EventRow | None:
    try:
        key = uuid.UUID(event_id)
    except ValueError:
        return None
    row = await conn.fetchrow("SELECT * FROM events WHERE event_id = $1", key)
    if row is None:
        return None
    zones = await _zones(conn, [key])
    return _event(row, tuple(zones.get(event_id, [])))


async def list_events(
    conn: Conn, *, statuses: tuple[str, ...], limit: int, organizer_id: str | None = None
) -> list[EventRow]:
    """Events in those statuses (of one organizer when given), by sale time."""
    rows = await conn.fetch(
        """SELECT * FROM events WHERE status = ANY($1::text[])
             AND ($3::uuid IS NULL OR organizer_id = $3)
           ORDER BY sale_starts_at, created_at LIMIT $2""",
        list(statuses),
        limit,
        None if organizer_id is None else uuid.UUID(organizer_id),
    )
    zones = await _zones(conn, [row["event_id"] for row in rows])
    return [_event(row, tuple(zones.get(str(row["event_id"]), []))) for row in rows]


async def set_status(conn: Conn, event_id: str, status: str, now: datetime) -> None:
    await conn.execute(
        """UPDATE events SET status = $2,
               published_at = CASE WHEN $2 = 'on_sale' THEN coalesce(published_at, $3)
                                   ELSE published_at END
           WHERE event_id = $1""",
        uuid.UUID(event_id),
        status,
        now,
    )


async def live_event_ids(conn: Conn) -> list[str]:
    rows = await conn.fetch("SELECT event_id FROM events WHERE status = 'on_sale'")
    return [str(row["event_id"]) for row in rows]


# Suspensions: seats.suspended / zones.suspended hold the state, seat_suspensions the history.


async def lock_zone(conn: asyncpg.Connection, zone_id: str) -> None:
    """Serialises suspend/unsuspend of one zone (PostgreSQL then Redis, in the same order)."""
    await conn.execute("SELECT 1 FROM zones WHERE zone_id = $1 FOR UPDATE", uuid.UUID(zone_id))


async def set_seats_suspended(
    conn: asyncpg.Connection, zone_id: str, labels: list[str], suspended: bool
) -> list[str]:
    """Flags the seats; returns the labels whose flag changed (others already were so)."""
    rows = await conn.fetch(
        """UPDATE seats SET suspended = $3
           WHERE zone_id = $1 AND label = ANY($2::text[]) AND suspended <> $3
           RETURNING label""",
        uuid.UUID(zone_id),
        labels,
        suspended,
    )
    return [row["label"] for row in rows]


async def add_zone_suspended(conn: asyncpg.Connection, zone_id: str, delta: int) -> None:
    """Raises asyncpg.CheckViolationError when held + sold + suspended would pass capacity."""
    await conn.execute(
        "UPDATE zones SET suspended = suspended + $2 WHERE zone_id = $1",
        uuid.UUID(zone_id),
        delta,
    )


async def insert_suspension(
    conn: asyncpg.Connection,
    *,
    event_id: str,
    zone_id: str,
    action: str,
    seats: list[str] | None,
    quantity: int,
    reason: str,
    admin_id: str,
) -> None:
    await conn.execute(
        """INSERT INTO seat_suspensions
               (event_id, zone_id, action, seats, quantity, reason, admin_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        uuid.UUID(event_id),
        uuid.UUID(zone_id),
        action,
        seats,
        quantity,
        reason,
        uuid.UUID(admin_id),
    )


async def find_suspensions(conn: Conn, event_id: str) -> list[tuple[str, tuple[str, ...], int]]:
    """(zone_id, suspended seat labels, GA quantity) per zone with anything suspended."""
    rows = await conn.fetch(
        """SELECT z.zone_id, z.kind, z.suspended,
                  (SELECT array_agg(s.label ORDER BY s.position) FROM seats s
                   WHERE s.zone_id = z.zone_id AND s.suspended) AS labels
           FROM zones z WHERE z.event_id = $1 AND z.suspended > 0 ORDER BY z.position""",
        uuid.UUID(event_id),
    )
    return [
        (str(row["zone_id"]), tuple(row["labels"] or ()), 0)
        if row["kind"] == "seated"
        else (str(row["zone_id"]), (), row["suspended"])
        for row in rows
    ]
