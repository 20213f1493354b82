"""The waitlist's periodic work (run by the seat-release worker each tick, beside the sweep of
lapsed holds): per event, one atomic `waitlist_tick.lua`, then PostgreSQL is told what became of
every offer, then Redis's line is repaired from PostgreSQL's entries.

Per event:
1. `waitlist_tick.lua` lapses due offers, offers withheld seats to the head of the line and puts
   back on sale what nobody waits for. Several copies may run: each call is atomic.
2. Every offer Redis keeps (outstanding, or ended and not yet recorded) is written to
   PostgreSQL in one transaction: a new one inserted (its entry OFFERED) with its email in the
   outbox, an ended one recorded TAKEN / LAPSED / WITHDRAWN (its entry TAKEN / LAPSED / LEFT).
   Inserts and ends happen once (ON CONFLICT, `WHERE status = 'OUTSTANDING'`), so a crash
   before or after the commit only means doing it again on the next tick, and the email goes
   out exactly once. After the commit the ended offers leave Redis and each new offer is pushed
   on its buyer's channel (a lost push costs nothing: GET and the email have it).
3. Repair: an entry PostgreSQL answered (202) but Redis does not have (a crash between the
   commit and the Redis join, or writes Redis lost) is put back in line at its position; an
   entry Redis has but PostgreSQL ended (a leave whose Redis step failed) is removed.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from booking import errors
from booking.inventory.keys import WAITLIST_EVENTS, queue_keys
from booking.inventory.lua_errors import EventNotLoadedError, as_text
from booking.inventory.scripts import Scripts
from booking.inventory.waitlist import ENDED_OFFER, Offer, TickResult
from booking.metrics import (
    WAITLIST_LENGTH,
    WAITLIST_OFFERS,
    WAITLIST_OFFERS_OUTSTANDING,
    WAITLIST_WITHHELD,
)
from booking.notifications import Email, Notifier, OutboxNotifier, waitlist_offer_email
from booking.store import waitlist as waitlist_store
from booking.store.users import find_email_address
from booking.waitlist.service import offer_body
from booking.waitlist.stream import offer_message
from common.redis_client import RedisClient, publish_all

log = logging.getLogger(__name__)

OFFERS_PER_TICK = 50  # per event: bounds how long one script call blocks Redis
OUTCOMES = ("made", "taken", "lapsed", "withdrawn")
for _outcome in OUTCOMES:  # exported at 0 from the start, so the dashboard has a series
    WAITLIST_OFFERS.labels(_outcome)


def offer_email(to: str, offer: Offer, *, event_id: str, event_name: str) -> Email:
    return waitlist_offer_email(
        to,
        event_id=event_id,
        event_name=event_name,
        zone_id=offer.zone_id,
        quantity=offer.quantity,
        expires_at=datetime.fromtimestamp(offer.expires_ms / 1000, UTC),
        key=offer.offer_id,
        offer_id=offer.offer_id,
        seats=list(offer.seats),
    )


@dataclass
class Recorded:
    made: list[Offer]
    ended: dict[str, int]  # status -> offers that ended so, recorded now


class WaitlistTicker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: RedisClient,
        scripts: Scripts,
        *,
        notifier: Notifier | None = None,
        offers_per_tick: int = OFFERS_PER_TICK,
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.scripts = scripts
        self.notifier = notifier or OutboxNotifier()
        self.offers_per_tick = max(1, offers_per_tick)

    async def tick(self) -> int:
        """Every event whose waitlist may have work; returns offers made + ended."""
        listed = {as_text(raw) for raw in await self.redis.zrange(WAITLIST_EVENTS, 0, -1)}
        known = await waitlist_store.known_events(self.pool, [e for e in listed if _is_id(e)])
        for stray in listed - known:  # deleted, or another database's: not ours to tick
            await self.redis.zrem(WAITLIST_EVENTS, stray)
        event_ids = known | set(await waitlist_store.events_with_live_entries(self.pool))
        handled = waiting = outstanding = withheld = 0
        for event_id in sorted(event_ids):
            try:
                result, done = await self.tick_event(event_id)
            except EventNotLoadedError:
                continue  # the reconciler restores it, entries and offers included
            except errors.BookingError:
                # one event's trouble must not stop the others, nor seat-release's sweep
                log.exception("waitlist tick of event %s failed", event_id)
                continue
            handled += done
            waiting += result.waiting
            outstanding += result.outstanding
            withheld += result.withheld
        WAITLIST_LENGTH.set(waiting)
        WAITLIST_OFFERS_OUTSTANDING.set(outstanding)
        WAITLIST_WITHHELD.set(withheld)
        return handled

    async def tick_event(self, event_id: str) -> tuple[TickResult, int]:
        ids = [str(uuid.uuid4()) for _ in range(self.offers_per_tick)]
        result = await self.scripts.waitlist.tick(event_id, ids)
        recorded = await self.record(event_id)
        await self.repair(event_id)
        if result.idle and not recorded.made:
            live = await waitlist_store.live_entries(self.pool, event_id)
            if not live:
                await self.redis.zrem(WAITLIST_EVENTS, event_id)
        return result, len(recorded.made) + sum(recorded.ended.values())

    async def record(self, event_id: str) -> Recorded:
        offers = await self.scripts.waitlist.offers(event_id)
        recorded = Recorded(made=[], ended={})
        if not offers:
            return recorded
        now = datetime.now(UTC)
        event_name: str | None = None
        async with self.pool.acquire() as conn, conn.transaction():
            for offer in offers:
                inserted, ended = await waitlist_store.record_offer(conn, event_id, offer, now)
                if inserted:
                    WAITLIST_OFFERS.labels("made").inc()
                    if offer.status == "OUTSTANDING":
                        recorded.made.append(offer)
                        address = await find_email_address(conn, offer.user_id)
                        if address:
                            if event_name is None:
                                event_name = await waitlist_store.event_name(conn, event_id)
                            email = offer_email(
                                address, offer, event_id=event_id, event_name=event_name
                            )
                            await self.notifier.send(conn, email, now=now)
                if ended:
                    recorded.ended[ended] = recorded.ended.get(ended, 0) + 1
        for status, count in recorded.ended.items():
            WAITLIST_OFFERS.labels(status.lower()).inc(count)
        await self.scripts.waitlist.forget_offers(
            event_id, [offer.offer_id for offer in offers if offer.status in ENDED_OFFER]
        )
        if recorded.made:
            keys = queue_keys(event_id)
            await publish_all(
                self.redis,
                [
                    (keys.user_channel(offer.user_id), offer_message(offer_body(offer)))
                    for offer in recorded.made
                ],
            )
        return recorded

    async def repair(self, event_id: str) -> None:
        in_redis = await self.scripts.waitlist.entries(event_id)
        referenced = {offer.entry_id for offer in await self.scripts.waitlist.offers(event_id)}
        for row in await waitlist_store.live_entries(self.pool, event_id):
            user_id, entry_id = str(row["user_id"]), str(row["entry_id"])
            if (
                row["status"] == "WAITING"
                and user_id not in in_redis
                and entry_id not in referenced
            ):
                log.info("waitlist entry %s put back in Redis", entry_id)
                await self.scripts.waitlist.join(
                    event_id,
                    user_id=user_id,
                    entry_id=entry_id,
                    zone_id="" if row["zone_id"] is None else str(row["zone_id"]),
                    quantity=row["quantity"],
                    position=row["position"],
                )
        ended = await waitlist_store.entries_ended(
            self.pool, [entry.entry_id for entry in in_redis.values()]
        )
        for entry in in_redis.values():
            if entry.entry_id in ended:
                await self.scripts.waitlist.leave(event_id, entry.user_id, entry_id=entry.entry_id)


def _is_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
