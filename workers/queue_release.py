"""queue-release: every tick, each open queue admits its next users in join order.

Per event (found in the `br:queues:open` zset, never by KEYS/SCAN): at the first tick after
the sale opened, the pre-queue is shuffled (`booking.queue.service.shuffled_order` with the event's
seed); then the head of the queue is read, a signed pass minted for each candidate, and
`lua/queue_admit.lua` decides atomically who is admitted (limits: `max_concurrent` live passes,
`release_per_tick`; one tick per event per tick interval however many copies run), stores the
passes and publishes them. The script, not this process, is the authority: a copy working from a
stale head admits nobody twice and never more than the limits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import Counter, Gauge

from booking.inventory import epoch_ms
from booking.queue import AdmitResult, QueuePass, QueueStore, new_pass_id, shuffled_order, sign_pass
from workers.resources import Provisioned, open_queue
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

QUEUE_LENGTH = Gauge(
    "booking_rush_queue_length", "Users waiting in every open queue (at this worker's last tick)"
)
QUEUE_ADMITTED = Counter("booking_rush_queue_admitted_total", "Users admitted (passes minted)")
QUEUE_PASSES_OUTSTANDING = Gauge(
    "booking_rush_queue_passes_outstanding", "Passes issued and not yet used or expired"
)
QUEUE_ADMISSION_RATE = Gauge(
    "booking_rush_queue_admission_rate",
    "Measured outflow: sum over open queues of the EWMA of admitted users per second",
)
QUEUE_SHUFFLES = Counter("booking_rush_queue_shuffles_total", "Pre-queues shuffled at sale start")

FINISHED = ("SOLD_OUT", "CLOSED")


def signing_secret(settings: WorkerSettings, secret: str | None) -> str:
    """`secret`, else INTERNAL_SECRET; refused when shorter than 32 characters."""
    chosen = secret if secret is not None else settings.internal_secret
    if len(chosen) < 32:
        raise ValueError("queue-release needs INTERNAL_SECRET (32+ characters) to sign passes")
    return chosen


class QueueRelease:
    name = "queue-release"

    def __init__(
        self,
        settings: WorkerSettings,
        store: QueueStore,
        *,
        secret: str | None = None,
        clock: Callable[[], int] = epoch_ms,
    ) -> None:
        self.settings = settings
        self.secret = signing_secret(settings, secret)
        self.clock = clock
        self.tick_ms = max(1, int(settings.interval_s * 1000))
        self.store = store

    @classmethod
    def provisioned(
        cls,
        settings: WorkerSettings,
        *,
        secret: str | None = None,
        clock: Callable[[], int] = epoch_ms,
    ) -> Provisioned[QueueStore]:
        secret = signing_secret(settings, secret)  # refused before anything is opened
        return Provisioned(
            cls,
            lambda: open_queue(settings),
            lambda store: cls(settings, store, secret=secret, clock=clock),
        )

    async def start(self) -> None:
        """Nothing of its own to open: its store comes ready."""

    async def stop(self) -> None:
        """Nothing of its own to close."""

    async def tick(self) -> int:
        now = self.clock()
        admitted = waiting = outstanding = 0
        rate = 0.0
        for event_id in await self.store.open_queue_ids():
            result = await self.release_event(event_id, now)
            if result is None:
                continue
            admitted += result.admitted
            waiting += result.waiting
            outstanding += result.passes_active
            rate += result.rate
        QUEUE_LENGTH.set(waiting)
        QUEUE_PASSES_OUTSTANDING.set(outstanding)
        QUEUE_ADMISSION_RATE.set(rate)
        QUEUE_ADMITTED.inc(admitted)
        return admitted

    async def release_event(self, event_id: str, now: int) -> AdmitResult | None:
        """One tick of one event's queue; None when the queue is gone or finished."""
        plan = await self.store.plan_tick(event_id, now)
        if plan is None or not plan.open:
            await self.store.forget_queue(event_id)
            return None
        if plan.pre_count and now >= plan.sale_starts_ms:
            order = shuffled_order(plan.seed, await self.store.pre_queue(event_id))
            if await self.store.shuffle(event_id, order):
                QUEUE_SHUFFLES.inc()
        head = [] if plan.paused else await self.store.head(event_id, plan.candidates)
        expires = now + plan.pass_ttl_ms
        candidates = []
        for user_id in head:
            pass_id = new_pass_id()
            token = sign_pass(self.secret, QueuePass(event_id, user_id, pass_id, expires))
            candidates.append((user_id, pass_id, token))
        result = await self.store.admit(
            event_id, now_ms=now, tick_ms=self.tick_ms, expires_ms=expires, candidates=candidates
        )
        if result.status in FINISHED:
            await self.store.forget_queue(event_id)
        return result
