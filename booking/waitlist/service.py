"""Waitlist use-cases: join (only when sold out), my place and offer, leave, settings.

A join is committed in PostgreSQL before it is answered 202 and only then put in Redis; if that
second step fails, the waitlist worker puts it there on its next tick (`WaitlistTicker`), so an
answered entry is never lost. A second join of the same user answers the live entry again
(202) when it asks for the same zone and quantity, and `409 already_waitlisted` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from booking import errors
from booking.catalog import Catalog, waitlist_settings
from booking.domain import rfc3339, rfc3339_of_ms
from booking.inventory.keys import WAITLIST_EVENTS, event_keys
from booking.inventory.lua_errors import EventNotLoadedError
from booking.inventory.scripts import Scripts, epoch_ms
from booking.inventory.waitlist import Offer
from booking.metrics import WAITLIST_JOINS
from booking.schemas import WaitlistJoinBody, WaitlistPatchBody
from booking.store import waitlist as waitlist_store
from booking.store.events import EventRow
from common.redis_client import RedisClient
from common.tokens import Identity


def offer_body(offer: Offer) -> dict[str, Any]:
    return {
        "offer_id": offer.offer_id,
        "zone_id": offer.zone_id,
        "quantity": offer.quantity,
        "seats": list(offer.seats) or None,
        "expires_at": rfc3339_of_ms(offer.expires_ms),
    }


def _zone_of(row: asyncpg.Record) -> str | None:
    return None if row["zone_id"] is None else str(row["zone_id"])


@dataclass
class Waitlist:
    pool: asyncpg.Pool
    redis: RedisClient
    scripts: Scripts
    catalog: Catalog

    async def join(
        self, identity: Identity, event_id: str, body: WaitlistJoinBody
    ) -> dict[str, Any]:
        event = await self.catalog.get_event(event_id, identity)
        zone_id = None if body.zone_id is None else str(body.zone_id)
        self._check_request(event, zone_id, body.quantity)
        existing = await waitlist_store.find_live_entry(self.pool, event_id, identity.user_id)
        if existing is None:
            await self._check_sold_out(event_id, zone_id)
        elif (_zone_of(existing), existing["quantity"]) != (zone_id, body.quantity):
            raise errors.AlreadyWaitlistedError(
                "you are on this event's waitlist with another zone or quantity: leave it first"
            )
        row, created = await waitlist_store.insert_entry(
            self.pool, event_id, identity.user_id, zone_id, body.quantity
        )
        if created:
            WAITLIST_JOINS.inc()
        await self.put_in_redis(event_id, row)
        return await self.place(identity, event_id)

    def _check_request(self, event: EventRow, zone_id: str | None, quantity: int) -> None:
        if not event.waitlist_enabled:
            raise errors.WaitlistClosedError()
        if event.status != "on_sale":
            raise errors.SaleNotOpenError(f"the event is {event.status}")
        if zone_id is not None and event.zone(zone_id) is None:
            raise errors.InvalidRequestError.field("zone_id", "unknown zone")
        if quantity > event.max_per_user:
            raise errors.InvalidRequestError.field(
                "quantity", f"at most {event.max_per_user} per buyer for this event"
            )

    async def _check_sold_out(self, event_id: str, zone_id: str | None) -> None:
        live = await self.scripts.availability(event_id)
        if not live:
            raise EventNotLoadedError("inventory is being restored; try again")
        zones = [live[zone_id]] if zone_id is not None and zone_id in live else live.values()
        left = sum(zone.available for zone in zones)
        if left > 0:
            raise errors.NotSoldOutError(f"{left} ticket(s) still on sale: reserve them")

    async def put_in_redis(self, event_id: str, row: asyncpg.Record) -> None:
        """The committed entry, on the live line (idempotent)."""
        await self.redis.zadd(WAITLIST_EVENTS, {event_id: epoch_ms()})
        await self.scripts.waitlist.join(
            event_id,
            user_id=str(row["user_id"]),
            entry_id=str(row["entry_id"]),
            zone_id=_zone_of(row) or "",
            quantity=row["quantity"],
            position=row["position"],
        )

    async def place(self, identity: Identity, event_id: str) -> dict[str, Any]:
        """My entry: position in the line, or the offer I hold."""
        row = await waitlist_store.find_live_entry(self.pool, event_id, identity.user_id)
        if row is None:
            raise errors.NotFoundError("you are not on this event's waitlist")
        entry_id = str(row["entry_id"])
        offer = next(
            (
                o
                for o in await self.scripts.waitlist.offers(event_id)
                if o.entry_id == entry_id and o.status == "OUTSTANDING"
            ),
            None,
        )
        rank = await self.scripts.waitlist.rank(event_id, identity.user_id)
        return {
            "event_id": event_id,
            "entry_id": entry_id,
            "zone_id": _zone_of(row),
            "quantity": row["quantity"],
            "status": "offered" if offer is not None else "waiting",
            "position": None if rank is None or offer is not None else rank + 1,
            "offer": None if offer is None else offer_body(offer),
            "joined_at": rfc3339(row["joined_at"]),
        }

    async def leave(self, identity: Identity, event_id: str) -> None:
        """Leaves the line; an outstanding offer goes to the next in line."""
        row = await waitlist_store.find_live_entry(self.pool, event_id, identity.user_id)
        if row is None:
            raise errors.NotFoundError("you are not on this event's waitlist")
        entry_id = str(row["entry_id"])
        await waitlist_store.leave(self.pool, entry_id, datetime.now(UTC))
        await self.scripts.waitlist.leave(event_id, identity.user_id, entry_id=entry_id)

    async def update_settings(
        self, identity: Identity, event_id: str, patch: WaitlistPatchBody
    ) -> dict[str, Any]:
        await self.catalog.get_managed_event(identity, event_id)
        await waitlist_store.update_settings(
            self.pool, event_id, enabled=patch.enabled, offer_ttl_s=patch.offer_ttl_s
        )
        event = await self.catalog.get_managed_event(identity, event_id)
        meta = event_keys(event_id).meta
        if await self.redis.exists(meta):  # a lost event gets them from PostgreSQL on restore
            await self.redis.hset(
                meta,
                mapping={
                    "waitlist_enabled": "1" if event.waitlist_enabled else "0",
                    "offer_ttl_ms": str(event.waitlist_offer_ttl_s * 1000),
                },
            )
        return {"event_id": event_id, **waitlist_settings(event)}
