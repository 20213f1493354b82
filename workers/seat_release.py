"""seat-release: lapsed holds go back on sale.

Each tick sweeps every live event's expiry index in Redis (atomic, bounded batches: several
copies never release a hold twice), then records the expiries in PostgreSQL with an outbox
message each. A catch-up pass finds RESERVED bookings PostgreSQL still thinks live past their
deadline (a crash between the sweep and the write) and ends them too; the release script is a
no-op for holds Redis already released, so the pass is safe to repeat.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import asyncpg
from prometheus_client import Counter

from booking import errors
from booking.bookings import record_ended
from booking.db import create_pool
from booking.domain import CANCELLED, EXPIRED
from booking.inventory.keys import LIVE_EVENTS
from booking.inventory.scripts import Scripts
from booking.store.bookings import due_reserved
from common.redis_client import RedisClient, connect
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

EXPIRED_HOLDS = Counter(
    "booking_rush_holds_expired_total", "Holds that lapsed and went back on sale", ["path"]
)

# PostgreSQL's catch-up waits this long past a deadline, so the Redis sweep goes first.
CATCH_UP_GRACE = timedelta(seconds=5)


class SeatRelease:
    name = "seat-release"

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.redis: RedisClient | None = None
        self.pool: asyncpg.Pool | None = None
        self.scripts: Scripts | None = None

    async def start(self) -> None:
        self.redis = await connect(self.settings.redis_url, cluster=self.settings.redis_cluster)
        self.scripts = Scripts(self.redis)
        await self.scripts.load()
        self.pool = await create_pool(self.settings.database_url, min_size=1, max_size=2)

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        if self.redis is not None:
            await self.redis.aclose()

    async def tick(self) -> int:
        return await self.sweep_redis() + await self.catch_up()

    async def sweep_redis(self) -> int:
        assert self.redis is not None and self.scripts is not None and self.pool is not None
        released = 0
        for raw in await self.redis.zrange(LIVE_EVENTS, 0, -1):
            event_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            result = await self.scripts.sweep(event_id, limit=self.settings.batch_size)
            if result.expired:
                ids = [swept.hold.booking_id for swept in result.expired]
                await record_ended(self.pool, ids, status=EXPIRED)
                EXPIRED_HOLDS.labels("sweep").inc(len(ids))
                released += len(ids)
        return released

    async def catch_up(self) -> int:
        assert self.scripts is not None and self.pool is not None
        due = await due_reserved(
            self.pool,
            before=datetime.now(UTC) - CATCH_UP_GRACE,
            limit=self.settings.batch_size,
        )
        ended: dict[str, list[str]] = {}
        for event_id, booking_id in due:
            try:
                result = await self.scripts.release(event_id, booking_id, reason="EXPIRED")
            except errors.NotFoundError:
                ended.setdefault(EXPIRED, []).append(booking_id)  # Redis lost it: PG decides
                continue
            except errors.InvalidStateError:
                continue  # Redis's deadline is later (a clock apart): the sweep will get it
            if result.hold.status in (EXPIRED, CANCELLED):
                # Released now or earlier (a cancel that crashed before its database write).
                ended.setdefault(result.hold.status, []).append(booking_id)
        for status, ids in ended.items():
            await record_ended(self.pool, ids, status=status)
            EXPIRED_HOLDS.labels("catch_up").inc(len(ids))
        return sum(len(ids) for ids in ended.values())
