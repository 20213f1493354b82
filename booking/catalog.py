"""Catalog use-cases: create, read and publish events; availability from the live inventory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from booking.domain import rfc3339, to_ms
from booking.errors import ForbiddenError, InvalidStateError, NotFoundError
from booking.schemas import EventBody
from booking.scripts import EventSpec, Scripts, ZoneSpec
from booking.store import events as event_store
from booking.store.events import EventRow
from common.tokens import Identity

PUBLIC_STATUSES = ("on_sale", "closed")
LIST_LIMIT = 200


def event_body(event: EventRow) -> dict[str, Any]:
    zones = []
    for zone in event.zones:
        entry: dict[str, Any] = {
            "zone_id": zone.zone_id,
            "name": zone.name,
            "capacity": zone.capacity,
            "price_minor": zone.price_minor,
        }
        if zone.seats is not None:
            entry["seats"] = list(zone.seats)
        zones.append(entry)
    return {
        "event_id": event.event_id,
        "name": event.name,
        "venue": event.venue,
        "starts_at": rfc3339(event.starts_at),
        "sale_starts_at": rfc3339(event.sale_starts_at),
        "max_per_user": event.max_per_user,
        "currency": event.currency,
        "status": event.status,
        "organizer_id": event.organizer_id,
        "zones": zones,
        "queue": {
            "enabled": event.queue_enabled,
            "max_concurrent": event.queue_max_concurrent,
            "release_per_tick": event.queue_release_per_tick,
            "pass_ttl_s": event.queue_pass_ttl_s,
            "paused": event.queue_paused,
        },
    }


def inventory_spec(event: EventRow, status: str) -> EventSpec:
    """What Redis needs to sell the event (lua/load_event.lua's document)."""
    return EventSpec(
        event_id=event.event_id,
        zones=tuple(
            ZoneSpec(
                zone_id=zone.zone_id,
                price_minor=zone.price_minor,
                capacity=zone.capacity,
                seats=zone.seats or (),
            )
            for zone in event.zones
        ),
        status=status,
        sale_starts_ms=to_ms(event.sale_starts_at),
        max_per_user=event.max_per_user,
        queue_enabled=event.queue_enabled,
        currency=event.currency,
    )


def _may_manage(identity: Identity, event: EventRow) -> bool:
    return identity.is_admin or (
        identity.role == "organizer" and identity.user_id == event.organizer_id
    )


@dataclass(frozen=True)
class Catalog:
    pool: asyncpg.Pool
    scripts: Scripts

    async def create_event(self, identity: Identity, body: EventBody) -> EventRow:
        if identity.role not in ("organizer", "admin"):
            raise ForbiddenError("only organizers and admins create events")
        async with self.pool.acquire() as conn, conn.transaction():
            event_id = await event_store.insert_event(conn, identity.user_id, body)
            event = await event_store.find_event(conn, event_id)
        assert event is not None
        return event

    async def get_event(self, event_id: str, identity: Identity | None = None) -> EventRow:
        """Drafts are visible to their organizer and admins only; to others they do not exist."""
        event = await event_store.find_event(self.pool, event_id)
        if event is None or (
            event.status == "draft" and (identity is None or not _may_manage(identity, event))
        ):
            raise NotFoundError("no such event")
        return event

    async def get_managed_event(self, identity: Identity, event_id: str) -> EventRow:
        event = await self.get_event(event_id, identity)
        if not _may_manage(identity, event):
            raise (
                NotFoundError("no such event")
                if event.status == "draft"
                else ForbiddenError("only the event's organizer or an admin may change it")
            )
        return event

    async def list_events(self) -> list[EventRow]:
        return await event_store.list_events(self.pool, statuses=PUBLIC_STATUSES, limit=LIST_LIMIT)

    async def publish_event(self, identity: Identity, event_id: str, now: datetime) -> EventRow:
        """Loads the inventory into Redis, then marks the event on sale. Safe to repeat: a
        crash between the two leaves Redis loaded, and the retry only flips the status."""
        event = await self.get_managed_event(identity, event_id)
        if event.status == "closed":
            raise InvalidStateError("the event is closed")
        if event.status == "draft":
            await self.scripts.load_event(inventory_spec(event, "on_sale"), mode="publish")
            await event_store.set_status(self.pool, event_id, "on_sale", now)
        return await self.get_event(event_id, identity)

    async def availability(self, event_id: str) -> dict[str, Any]:
        event = await self.get_event(event_id)
        live = await self.scripts.availability(event_id)
        zones = []
        for zone in event.zones:
            counters = live.get(zone.zone_id)
            available = counters.available if counters is not None else 0
            zones.append(
                {"zone_id": zone.zone_id, "capacity": zone.capacity, "available": available}
            )
        return {"event_id": event_id, "zones": zones}
