"""Suspend / unsuspend: take free seats (or general-admission quantity) out of sale and back.
The event's organizer or an admin may (booking.catalog.may_manage).

Redis makes the decision, atomically (lua/suspend.lua, lua/unsuspend.lua: a held or sold seat
is refused, the feed gets SEAT_SUSPENDED / SEAT_AVAILABLE); PostgreSQL keeps the state
(seats.suspended, zones.suspended, whose CHECK counts it as neither available nor sold) so a
rebuild of Redis keeps the seats out of sale, plus a history row. Order, inside one transaction:
lock the zone row, write PostgreSQL, run the script, commit. A refusal by the script rolls the
transaction back; a failed commit after the script is undone by the inverse script.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from booking.catalog import may_manage
from booking.errors import (
    ForbiddenError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
    SeatUnavailableError,
)
from booking.inventory.records import SuspendResult
from booking.inventory.scripts import Scripts
from booking.store import events as event_store
from common.tokens import Identity

log = logging.getLogger(__name__)

Action = Literal["suspend", "unsuspend"]


@dataclass(frozen=True)
class SuspendRequest:
    zone_id: str
    seats: tuple[str, ...] = ()
    quantity: int = 0
    reason: str = ""


@dataclass(frozen=True)
class Suspensions:
    pool: asyncpg.Pool
    scripts: Scripts

    async def change(
        self, identity: Identity, event_id: str, request: SuspendRequest, action: Action
    ) -> dict[str, Any]:
        """Suspends or unsuspends; returns the zone's new counters and how many changed."""
        event = await event_store.find_event(self.pool, event_id)
        if event is None or (event.status == "draft" and not may_manage(identity, event)):
            raise NotFoundError("no such event")
        if not may_manage(identity, event):
            raise ForbiddenError("only the event's organizer or an admin may suspend its seats")
        if event.status == "draft":
            # Nothing is on sale yet and Redis holds no inventory for it (publishing loads it,
            # without suspensions): there is nothing to take out of sale.
            raise InvalidStateError("the event is a draft: publish it before suspending seats")
        zone = event.zone(request.zone_id)
        if zone is None:
            raise InvalidRequestError.field("zone_id", "not a zone of this event")
        seated = zone.kind == "seated"
        if seated and not request.seats:
            raise InvalidRequestError.field("seats", "required in a seated zone")
        if not seated and (request.seats or request.quantity < 1):
            raise InvalidRequestError.field("quantity", "a general-admission zone takes quantity")

        suspend = action == "suspend"
        labels = list(request.seats)
        async with self.pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                await event_store.lock_zone(conn, zone.zone_id)
                if seated:
                    changed = await event_store.set_seats_suspended(
                        conn, zone.zone_id, labels, suspend
                    )
                    quantity = len(changed)
                else:
                    changed, quantity = [], request.quantity
                if quantity:
                    await event_store.add_zone_suspended(
                        conn, zone.zone_id, quantity if suspend else -quantity
                    )
                    await event_store.insert_suspension(
                        conn,
                        event_id=event.event_id,
                        zone_id=zone.zone_id,
                        action=action,
                        seats=changed if seated else None,
                        quantity=quantity,
                        reason=request.reason,
                        admin_id=identity.user_id,
                    )
                result = await self._run(action, event.event_id, zone.zone_id, labels, quantity)
            except asyncpg.CheckViolationError as exc:
                await transaction.rollback()
                if suspend:
                    raise SeatUnavailableError("not that much free capacity in the zone") from exc
                raise InvalidStateError("not that much is suspended in the zone") from exc
            except BaseException:
                await transaction.rollback()
                raise
            if result.changed != quantity:
                log.warning(
                    "%s of zone %s: Redis changed %s, PostgreSQL %s (drift)",
                    action,
                    zone.zone_id,
                    result.changed,
                    quantity,
                )
            try:
                await transaction.commit()
            except BaseException:
                if result.changed:
                    undo: Action = "unsuspend" if suspend else "suspend"
                    await self._run(undo, event.event_id, zone.zone_id, changed, quantity)
                raise
        counters = (await self.scripts.availability(event.event_id))[zone.zone_id]
        return {
            "event_id": event.event_id,
            "zone_id": zone.zone_id,
            "changed": result.changed,
            "capacity": counters.capacity,
            "available": counters.available,
            "held": counters.held,
            "sold": counters.sold,
            "suspended": counters.suspended,
        }

    async def _run(
        self, action: Action, event_id: str, zone_id: str, labels: list[str], quantity: int
    ) -> SuspendResult:
        script = self.scripts.suspend if action == "suspend" else self.scripts.unsuspend
        if labels:
            return await script(event_id, zone_id, seats=labels)
        return await script(event_id, zone_id, quantity=quantity)
