"""Comparing Redis inventory with PostgreSQL, and rebuilding Redis from PostgreSQL.

While a sale is open the live counters in Redis are never overwritten: drift is reported (metric
and admin stats) for a human to look at. Only when Redis has lost an event entirely (a restart
without persistence) is it rebuilt, from the bookings PostgreSQL holds: sold seats stay sold,
live holds stay held with their deadlines, suspended seats stay out of sale, so nothing can be
sold twice. Waitlist entries and outstanding offers are restored with it (offered seats stay
withheld for their offers, free seats of a zone someone waits for are withheld for the line).
The restore is atomic (it refuses when the event is already there), so the
reconciler and saga-step may both try it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from booking.catalog import inventory_spec
from booking.domain import to_ms
from booking.inventory.records import Hold, RebuildBooking, Suspension
from booking.inventory.scripts import Scripts
from booking.store import bookings as booking_store
from booking.store import events as event_store
from booking.store import waitlist as waitlist_store
from booking.store.events import EventRow


@dataclass(frozen=True)
class ZoneComparison:
    zone_id: str
    capacity: int
    redis_available: int
    redis_held: int
    redis_sold: int
    pg_held: int
    pg_sold: int

    @property
    def drift(self) -> int:
        return abs(self.redis_held - self.pg_held) + abs(self.redis_sold - self.pg_sold)

    @property
    def oversold(self) -> bool:
        return (
            self.redis_held + self.redis_sold > self.capacity
            or self.pg_held + self.pg_sold > self.capacity
        )

    def body(self) -> dict[str, Any]:
        return {
            "zone_id": self.zone_id,
            "capacity": self.capacity,
            "available": self.redis_available,
            "held": self.redis_held,
            "sold": self.redis_sold,
            "postgres": {"held": self.pg_held, "sold": self.pg_sold},
            "drift": self.drift,
        }


async def compare_event(
    pool: asyncpg.Pool, scripts: Scripts, event: EventRow
) -> list[ZoneComparison] | None:
    """Per-zone comparison; None when Redis holds no inventory for the event."""
    live = await scripts.availability(event.event_id)
    if not live:
        return None
    fresh = await event_store.find_event(pool, event.event_id)
    assert fresh is not None
    out = []
    for zone in fresh.zones:
        counters = live.get(zone.zone_id)
        out.append(
            ZoneComparison(
                zone_id=zone.zone_id,
                capacity=zone.capacity,
                redis_available=counters.available if counters else 0,
                redis_held=counters.held if counters else 0,
                redis_sold=counters.sold if counters else 0,
                pg_held=zone.held,
                pg_sold=zone.sold,
            )
        )
    return out


def _rebuild_booking(row: asyncpg.Record) -> RebuildBooking:
    hold = Hold(
        booking_id=str(row["booking_id"]),
        user_id=str(row["user_id"]),
        zone_id=str(row["zone_id"]),
        quantity=row["quantity"],
        seats=tuple(row["seats"] or ()),
        status=row["status"],
        amount_minor=row["amount_minor"],
        deadline_ms=to_ms(row["expires_at"]),
        created_ms=to_ms(row["created_at"]),
        idempotency_key=row["idempotency_key"],
        confirmed_ms=to_ms(row["confirmed_at"]) if row["confirmed_at"] else None,
    )
    return RebuildBooking(hold=hold, fingerprint=row["request_fingerprint"])


async def rebuild_event(pool: asyncpg.Pool, scripts: Scripts, event_id: str) -> int:
    """Replaces the event's Redis inventory with what PostgreSQL says; returns live bookings.
    An operator's tool (`python -m booking rebuild-inventory`): it overwrites live state."""
    loaded = await _load_from_postgres(pool, scripts, event_id, mode="rebuild")
    assert loaded is not None
    return loaded


async def restore_event(pool: asyncpg.Pool, scripts: Scripts, event_id: str) -> int | None:
    """Loads the event from PostgreSQL only if Redis has no inventory for it, atomically (a
    concurrent restore or publish wins and nothing is overwritten); returns the live bookings
    loaded, or None when Redis had the event. What the reconciler and saga-step use after
    Redis lost its data."""
    return await _load_from_postgres(pool, scripts, event_id, mode="publish")


async def _load_from_postgres(
    pool: asyncpg.Pool, scripts: Scripts, event_id: str, *, mode: Literal["publish", "rebuild"]
) -> int | None:
    event = await event_store.find_event(pool, event_id)
    if event is None:
        raise LookupError(f"no event {event_id}")
    rows = await booking_store.live_bookings(pool, event_id)
    suspended = await event_store.find_suspensions(pool, event_id)
    loaded = await scripts.load_event(
        inventory_spec(event, event.status),
        mode=mode,
        bookings=[_rebuild_booking(row) for row in rows],
        suspensions=[Suspension(zone, seats, quantity) for zone, seats, quantity in suspended],
        waitlist=await waitlist_document(pool, event_id),
    )
    return len(rows) if loaded else None


async def waitlist_document(pool: asyncpg.Pool, event_id: str) -> dict[str, Any]:
    """The live entries and outstanding offers, as lua/load_event.lua's document lists them."""
    entries = await waitlist_store.live_entries(pool, event_id)
    offers = await waitlist_store.outstanding_offers(pool, event_id)
    live = {row["entry_id"] for row in entries}
    return {
        "entries": [
            {
                "entry_id": str(row["entry_id"]),
                "user": str(row["user_id"]),
                "zone": "" if row["zone_id"] is None else str(row["zone_id"]),
                "qty": row["quantity"],
                "position": row["position"],
            }
            for row in entries
        ],
        # an offer whose entry has ended (left, not yet recorded as withdrawn) is not restored
        "offers": [_offer_record(row) for row in offers if row["entry_id"] in live],
    }


def _offer_record(row: asyncpg.Record) -> dict[str, Any]:
    record = {
        "offer_id": str(row["offer_id"]),
        "entry_id": str(row["entry_id"]),
        "user": str(row["user_id"]),
        "zone": str(row["zone_id"]),
        "qty": row["quantity"],
        "expires_ms": to_ms(row["expires_at"]),
        "created_ms": to_ms(row["created_at"]),
    }
    if row["seats"]:
        record["seats"] = list(row["seats"])
    return record
