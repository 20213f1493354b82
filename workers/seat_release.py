"""seat-release: lapsed holds go back on sale.

Each tick sweeps every live event's expiry index in Redis (atomic, bounded batches: several
copies never release a hold twice), then records the expiries in PostgreSQL with an outbox
message each. A catch-up pass finds RESERVED bookings PostgreSQL still thinks live past their
deadline (a crash between the sweep and the write) and ends them too; the release script is a
no-op for holds Redis already released, so the pass is safe to repeat. Then the waitlists
take their turn (`booking.waitlist.ticker`): offers lapse to the next in line, withheld seats
are offered or go back on sale.

It also warns buyers whose hold lapses within HOLD_EXPIRY_WARNING_S (at most half the hold):
each such booking is marked warned and its `hold_expiring` email written to the outbox in one
transaction, so a crash either warns (once) or leaves it for the next tick.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter

from booking import errors
from booking.bookings import record_ended
from booking.domain import CANCELLED, EXPIRED
from booking.inventory import LIVE_EVENTS
from booking.metrics import EXPIRY_WARNINGS
from booking.notifications import OutboxNotifier, hold_expiring_email
from booking.payments import SagaTopics
from booking.store import claim_expiring_holds, due_reserved
from booking.waitlist import WaitlistTicker
from workers.resources import Provisioned, Resources, open_resources
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

EXPIRED_HOLDS = Counter(
    "booking_rush_holds_expired_total", "Holds that lapsed and went back on sale", ["path"]
)

# PostgreSQL's catch-up waits this long past a deadline, so the Redis sweep goes first.
CATCH_UP_GRACE = timedelta(seconds=5)


class SeatRelease:
    name = "seat-release"

    def __init__(self, settings: WorkerSettings, resources: Resources) -> None:
        self.settings = settings
        self.redis = resources.redis
        self.pool = resources.pool
        self.scripts = resources.scripts
        topics = SagaTopics.for_namespace(settings.kafka_namespace)
        self.notifier = OutboxNotifier(topics.notifications)
        self.waitlists = WaitlistTicker(self.pool, self.redis, self.scripts, notifier=self.notifier)

    @classmethod
    def provisioned(cls, settings: WorkerSettings) -> Provisioned[Resources]:
        return Provisioned(cls, lambda: open_resources(settings), lambda r: cls(settings, r))

    async def start(self) -> None:
        """Nothing of its own to open: its clients come ready."""

    async def stop(self) -> None:
        """Nothing of its own to close."""

    async def tick(self) -> int:
        released = await self.sweep_redis() + await self.catch_up() + await self.warn_expiring()
        return released + await self.waitlists.tick()

    async def warn_expiring(self) -> int:
        warning_s = self.settings.hold_expiry_warning_s
        if warning_s <= 0:
            return 0
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            holds = await claim_expiring_holds(
                conn, now=now, warning_s=warning_s, limit=self.settings.batch_size
            )
            for hold in holds:
                email = hold_expiring_email(
                    hold.email,
                    booking_id=hold.booking_id,
                    event_id=hold.event_id,
                    event_name=hold.event_name,
                    quantity=hold.quantity,
                    expires_at=hold.expires_at,
                )
                await self.notifier.send(conn, email, now=now)
        EXPIRY_WARNINGS.inc(len(holds))
        return len(holds)

    async def sweep_redis(self) -> int:
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
