"""Catalog use-cases: create, read and publish events; availability from the live inventory."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from booking.domain import rfc3339, to_ms
from booking.errors import ForbiddenError, InvalidStateError, NotFoundError
from booking.inventory.records import EventSpec, ZoneSpec
from booking.inventory.scripts import Scripts
from booking.queue.store import find_seeds
from booking.schemas import EventBody
from booking.store import events as event_store
from booking.store.events import EventRow
from common.tokens import Identity

PUBLIC_STATUSES = ("on_sale", "closed")
ALL_STATUSES = ("draft", *PUBLIC_STATUSES)
LIST_LIMIT = 200


@dataclass(frozen=True)
class SeededEvent(EventRow):
    """An event with its pre-queue seed (queue-enabled events read through the catalog)."""

    queue_seed: bytes | None = None


def _queue_seed_fields(event: EventRow, now: datetime | None) -> dict[str, Any]:
    """sha256(seed) always, the seed itself once the sale opened (the shuffle has then used
    it): anyone can check that booking.queue.service.shuffled_order(seed, joiners) gives the
    order."""
    seed = getattr(event, "queue_seed", None)
    if seed is None:
        return {}
    fields = {"seed_sha256": hashlib.sha256(seed).hexdigest()}
    if (now or datetime.now(UTC)) >= event.sale_starts_at:
        fields["seed"] = seed.hex()
    return fields


def event_body(event: EventRow, now: datetime | None = None) -> dict[str, Any]:
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
            **_queue_seed_fields(event, now),
        },
        "waitlist": waitlist_settings(event),
    }


def waitlist_settings(event: EventRow) -> dict[str, Any]:
    return {"enabled": event.waitlist_enabled, "offer_ttl_s": event.waitlist_offer_ttl_s}


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
        waitlist_enabled=event.waitlist_enabled,
        offer_ttl_ms=event.waitlist_offer_ttl_s * 1000,
    )


def may_manage(identity: Identity, event: EventRow) -> bool:
    """The ownership rule: an event is managed by its organizer and by admins."""
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
            event.status == "draft" and (identity is None or not may_manage(identity, event))
        ):
            raise NotFoundError("no such event")
        return (await self._with_seeds([event]))[0]

    async def get_managed_event(self, identity: Identity, event_id: str) -> EventRow:
        event = await self.get_event(event_id, identity)
        if not may_manage(identity, event):
            raise (
                NotFoundError("no such event")
                if event.status == "draft"
                else ForbiddenError("only the event's organizer or an admin may change it")
            )
        return event

    async def list_events(self) -> list[EventRow]:
        events = await event_store.list_events(
            self.pool, statuses=PUBLIC_STATUSES, limit=LIST_LIMIT
        )
        return await self._with_seeds(events)

    async def list_managed_events(self, identity: Identity) -> list[EventRow]:
        """The events the caller manages, drafts included: an organizer's own, every event for
        an admin, none for a buyer."""
        if identity.is_admin:
            organizer_id = None
        elif identity.role == "organizer":
            organizer_id = identity.user_id
        else:
            return []
        events = await event_store.list_events(
            self.pool, statuses=ALL_STATUSES, limit=LIST_LIMIT, organizer_id=organizer_id
        )
        return await self._with_seeds(events)

    async def _with_seeds(self, events: list[EventRow]) -> list[EventRow]:
        queued = [event.event_id for event in events if event.queue_enabled]
        if not queued:
            return events
        seeds = await find_seeds(self.pool, queued)
        return [
            SeededEvent(
                **{f.name: getattr(event, f.name) for f in dataclasses.fields(event)},
                queue_seed=seeds.get(event.event_id),
            )
            if event.event_id in seeds
            else event
            for event in events
        ]

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

    async def seat_states(self, event_id: str) -> dict[str, Any]:
        """The seat map's live states of every seated zone (a published event's)."""
        event = await self.get_event(event_id)
        live = await self.scripts.seat_states(event_id)
        zones = []
        for zone in event.zones:
            if zone.seats is None:
                continue
            states = live.get(zone.zone_id, {})
            zones.append(
                {
                    "zone_id": zone.zone_id,
                    "seats": {label: states.get(label, "unavailable") for label in zone.seats},
                }
            )
        return {"event_id": event_id, "zones": zones}

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
