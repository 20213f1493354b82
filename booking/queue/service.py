"""Virtual queue use-cases: join, position, leave, the live position stream, outflow settings;
and the pure pieces (the verifiable pre-queue shuffle, the wait estimate).

The live stream is `booking.queue.stream`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from booking import errors
from booking.domain import from_ms, rfc3339, to_ms
from booking.inventory.lua_errors import QueueNotLoadedError
from booking.inventory.scripts import epoch_ms
from booking.metrics import QUEUE_JOINS
from booking.queue.store import (
    Outflow,
    Placement,
    QueueConfig,
    QueueStore,
    find_seeds,
    update_queue_settings,
)
from booking.schemas import QueuePatchBody
from common.tokens import Identity

if TYPE_CHECKING:  # booking.catalog imports this package (its queue store)
    from booking.catalog import Catalog

_DRAW_SPACE = 1 << 64
QUEUE_REDIS_CONNECTIONS = 32  # the queue's Redis pool per process (the hub has its own one)


def shuffled_order(seed: bytes, joiners: Iterable[str]) -> list[str]:
    """The order of the pre-queue, reproducible by anyone from the revealed seed.

    The joiners (user ids, duplicates ignored) are sorted, then shuffled by Fisher-Yates from the
    last index down: for index i, j = draw(i + 1) and items i and j swap. draw(n) takes the first
    8 bytes of HMAC-SHA256(key=seed, msg=counter as 8 big-endian bytes) as an integer, counter
    starting at 0 and growing by one per HMAC, and rejects values >= 2^64 - (2^64 mod n) (no
    modulo bias); the accepted value mod n is the draw.
    """
    order = sorted(set(joiners))
    counter = 0

    def draw(bound: int) -> int:
        nonlocal counter
        limit = _DRAW_SPACE - _DRAW_SPACE % bound
        while True:
            digest = hmac.new(seed, counter.to_bytes(8, "big"), hashlib.sha256).digest()
            counter += 1
            value = int.from_bytes(digest[:8], "big")
            if value < limit:
                return value % bound

    for i in range(len(order) - 1, 0, -1):
        j = draw(i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def estimated_wait_s(position: int, outflow: Outflow) -> int:
    """Seconds until admission at the measured outflow (EWMA of admitted/s, kept by the ticks);
    before the first measurement, at the configured one (release_per_tick per tick)."""
    rate = outflow.rate
    if rate <= 0.001:
        rate = outflow.release_per_tick * 1000 / max(outflow.tick_ms, 1)
    return math.ceil(position / rate)


def placement_body(event_id: str, placement: Placement, outflow: Outflow) -> dict[str, Any]:
    if placement.status == "admitted":
        assert placement.expires_ms is not None
        return {
            "event_id": event_id,
            "status": "admitted",
            "queue_pass": placement.queue_pass,
            "pass_expires_at": rfc3339(from_ms(placement.expires_ms)),
        }
    position = placement.position or 0
    body: dict[str, Any] = {
        "event_id": event_id,
        "status": "waiting",
        "position": position,
        "estimated_wait_s": estimated_wait_s(position, outflow),
    }
    if placement.status == "pre":
        # Joined before the sale opened: the shuffle at sale start decides the place; until
        # then `position` is the pre-queue's size (the worst place the shuffle can give).
        body["pre_queue"] = True
    return body


def settings_body(event_id: str, row: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "enabled": row.queue_enabled,
        "max_concurrent": row.queue_max_concurrent,
        "release_per_tick": row.queue_release_per_tick,
        "pass_ttl_s": row.queue_pass_ttl_s,
        "paused": row.queue_paused,
    }


@dataclass
class Queue:
    pool: asyncpg.Pool
    store: QueueStore
    catalog: Catalog
    clock: Callable[[], int] = epoch_ms

    async def join(self, identity: Identity, event_id: str) -> dict[str, Any]:
        now = self.clock()
        try:
            placement, outflow = await self.store.join(event_id, identity.user_id, now)
        except QueueNotLoadedError:
            await self.set_up(event_id)
            placement, outflow = await self.store.join(event_id, identity.user_id, now)
        QUEUE_JOINS.labels(placement.status).inc()
        return placement_body(event_id, placement, outflow)

    async def set_up(self, event_id: str) -> None:
        """Copies the event's queue settings from PostgreSQL into Redis (idempotent)."""
        event = await self.catalog.get_event(event_id)
        if event.status != "on_sale":
            raise errors.InvalidStateError(f"the event is {event.status}")
        if not event.queue_enabled:
            raise errors.InvalidStateError("this event has no queue: reserve directly")
        seed = (await find_seeds(self.pool, [event_id]))[event_id]
        await self.store.init_queue(
            QueueConfig(
                event_id=event_id,
                sale_starts_ms=to_ms(event.sale_starts_at),
                max_concurrent=event.queue_max_concurrent,
                release_per_tick=event.queue_release_per_tick,
                pass_ttl_s=event.queue_pass_ttl_s,
                paused=event.queue_paused,
                seed=seed,
            )
        )

    async def position(self, identity: Identity, event_id: str) -> dict[str, Any]:
        placement, outflow = await self.store.look(event_id, identity.user_id, self.clock())
        if placement is None:
            raise errors.NotFoundError("you are not in this event's queue")
        return placement_body(event_id, placement, outflow)

    async def leave(self, identity: Identity, event_id: str) -> None:
        await self.store.leave(event_id, identity.user_id)

    async def update_settings(
        self, identity: Identity, event_id: str, patch: QueuePatchBody
    ) -> dict[str, Any]:
        event = await self.catalog.get_managed_event(identity, event_id)
        if not event.queue_enabled:
            raise errors.InvalidStateError("this event has no queue")
        await update_queue_settings(
            self.pool,
            event_id,
            max_concurrent=patch.max_concurrent,
            release_per_tick=patch.release_per_tick,
            paused=patch.paused,
        )
        live: dict[str, int] = {}
        if patch.max_concurrent is not None:
            live["max_concurrent"] = patch.max_concurrent
        if patch.release_per_tick is not None:
            live["release_per_tick"] = patch.release_per_tick
        if patch.paused is not None:
            live["paused"] = 1 if patch.paused else 0
        await self.store.update_settings(event_id, live)
        return settings_body(event_id, await self.catalog.get_managed_event(identity, event_id))


def new_pass_id() -> str:
    return str(uuid.uuid4())
