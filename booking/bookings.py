"""Bookings use-cases: reserve (the hot path), read, list, cancel."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from booking import errors
from booking.domain import (
    CANCELLED,
    CONFIRMED,
    EXPIRED,
    REFUNDED,
    RESERVED,
    Booking,
    fingerprint,
    from_ms,
    require_idempotency_key,
)
from booking.hold_writer import HoldWriter
from booking.inventory.lua_errors import ERRORS, EventNotLoadedError
from booking.inventory.records import Hold
from booking.inventory.scripts import Scripts
from booking.messaging import TOPIC_BOOKINGS, add_to_outbox, booking_status_envelope
from booking.metrics import RESERVATIONS, WAITLIST_OFFERS
from booking.queue.passes import verify_pass
from booking.schemas import ReserveBody
from booking.store import bookings as booking_store
from booking.store import events as event_store
from booking.store import waitlist as waitlist_store
from booking.store.bookings import NewHold
from common.tokens import Identity

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from booking.payments.service import Payments
    from booking.sold_out import SoldOutWall


@functools.cache
def _outcome(label: str) -> Any:
    """The outcome's counter child, looked up once (a reserve's hot path counts every answer)."""
    return RESERVATIONS.labels(label)


# Lua/domain error -> the reservation outcome label of booking_rush_reservations_total
_OUTCOMES: dict[type[errors.BookingError], str] = {
    errors.SoldOutError: "sold_out",
    errors.SeatUnavailableError: "seat_unavailable",
    errors.UserLimitExceededError: "user_limit",
    errors.SaleNotOpenError: "sale_not_open",
    errors.QueuePassRequiredError: "pass_required",
    errors.QueuePassInvalidError: "pass_invalid",
    errors.IdempotencyKeyReusedError: "idempotency_key_reused",
    errors.IdempotencyInFlightError: "idempotency_in_flight",
    errors.InvalidRequestError: "invalid_request",
    errors.OfferInvalidError: "offer_invalid",
    errors.OfferExpiredError: "offer_expired",
    errors.OfferMismatchError: "offer_mismatch",
}


@dataclass(frozen=True, slots=True)
class _EventTerms:
    currency: str
    max_per_user: int


def booking_from_hold(hold: Hold, event_id: str, currency: str) -> Booking:
    return Booking(
        booking_id=hold.booking_id,
        event_id=event_id,
        zone_id=hold.zone_id,
        user_id=hold.user_id,
        quantity=hold.quantity,
        seats=hold.seats or None,
        status=RESERVED,
        amount_minor=hold.amount_minor,
        currency=currency,
        created_at=from_ms(hold.created_ms),
        expires_at=from_ms(hold.deadline_ms),
    )


@dataclass
class Bookings:
    pool: asyncpg.Pool
    scripts: Scripts
    writer: HoldWriter
    hold_ttl_s: int
    pass_secret: str
    payments: Payments | None = None  # refunds a confirmed booking on cancel
    wall: SoldOutWall | None = None  # answers a sold-out event's reserves without Redis
    _terms: dict[str, _EventTerms] = field(default_factory=dict)

    async def reserve(
        self,
        identity: Identity,
        body: ReserveBody,
        *,
        idempotency_key: str | None,
        queue_pass: str | None,
        now_ms: int,
        waitlist_offer: str | None = None,
    ) -> tuple[Booking, bool]:
        """The booking and whether this was an idempotent replay of an earlier request."""
        try:
            booking, replay = await self._reserve(
                identity, body, idempotency_key, queue_pass, now_ms, waitlist_offer
            )
        except errors.BookingError as exc:
            _outcome(_OUTCOMES.get(type(exc), "error")).inc()
            raise
        _outcome("idempotent_replay" if replay else "reserved").inc()
        return booking, replay

    async def _reserve(
        self,
        identity: Identity,
        body: ReserveBody,
        idempotency_key: str | None,
        queue_pass: str | None,
        now_ms: int,
        waitlist_offer: str | None,
    ) -> tuple[Booking, bool]:
        idempotency_key = require_idempotency_key(idempotency_key)
        event_id = str(body.event_id)
        zone_id = str(body.zone_id)
        offer = offer_id(waitlist_offer)
        walled = self.wall if body.seats is None and not offer else None
        if walled is not None and walled.refuses(
            event_id, zone_id, f"{identity.user_id}:{idempotency_key}", now_ms
        ):
            raise ERRORS["SOLD_OUT"]("0")
        request_fingerprint = fingerprint(body.model_dump(mode="json"))
        pass_id = ""
        if queue_pass:
            pass_id = verify_pass(
                self.pass_secret,
                queue_pass,
                event_id=event_id,
                user_id=identity.user_id,
                now_ms=now_ms,
            )
        try:
            result = await self.scripts.reserve(
                event_id,
                booking_id=str(uuid.uuid4()),
                user_id=identity.user_id,
                zone_id=zone_id,
                quantity=body.quantity or 0,
                seats=body.seats,
                idempotency_key=idempotency_key,
                fingerprint=request_fingerprint,
                pass_id=pass_id,
                offer_id=offer,
                ttl_ms=self.hold_ttl_s * 1000,
                now_ms=now_ms,
            )
        except EventNotLoadedError:
            raise await self._not_loaded(event_id) from None
        except errors.SoldOutError:
            if walled is not None:
                walled.sold_out_seen(event_id)
            raise
        terms = await self._event_terms(event_id)
        booking = booking_from_hold(result.hold, event_id, terms.currency)
        if result.replay:
            return booking, True
        hold = booking_store.NewHold(
            booking=booking,
            idempotency_key=idempotency_key,
            fingerprint=request_fingerprint,
            max_per_user=terms.max_per_user,
        )
        try:
            await self.writer.write(hold)
        except errors.BookingError:
            # Not durable, so never acknowledged: give the seats back at once.
            await self.scripts.release(event_id, booking.booking_id, reason="CANCELLED")
            raise
        if waitlist_offer:
            await record_offer_taken(self.pool, offer_id(waitlist_offer), booking.booking_id)
        return booking, False

    async def _not_loaded(self, event_id: str) -> errors.BookingError:
        event = await event_store.find_event(self.pool, event_id)
        if event is None:
            return errors.InvalidRequestError.field("event_id", "unknown event")
        if event.status != "on_sale":
            return errors.SaleNotOpenError(f"the event is {event.status}")
        return errors.ServiceUnavailableError("inventory is being restored; try again")

    async def _event_terms(self, event_id: str) -> _EventTerms:
        terms = self._terms.get(event_id)
        if terms is None:
            event = await event_store.find_event(self.pool, event_id)
            if event is None:
                raise errors.InvalidRequestError.field("event_id", "unknown event")
            terms = _EventTerms(event.currency, event.max_per_user)
            self._terms[event_id] = terms
        return terms

    async def get(self, identity: Identity, booking_id: str) -> Booking:
        booking = await booking_store.find_booking(self.pool, booking_id)
        if booking is None or (booking.user_id != identity.user_id and not identity.is_admin):
            raise errors.NotFoundError("no such booking")
        return booking

    async def list_mine(self, identity: Identity) -> list[Booking]:
        return await booking_store.list_bookings(self.pool, identity.user_id)

    async def cancel(self, identity: Identity, booking_id: str) -> Booking:
        booking = await self.get(identity, booking_id)
        if booking.status in (CANCELLED, REFUNDED):
            return booking
        if booking.status == CONFIRMED:
            if self.payments is None:
                raise errors.InvalidStateError("refunds are not available here")
            return await self.payments.refund_confirmed(booking)
        if booking.status != RESERVED:
            raise errors.InvalidStateError(f"the booking is {booking.status}")
        ended_as = CANCELLED
        try:
            result = await self.scripts.release(booking.event_id, booking_id, reason="CANCELLED")
            if not result.released and result.hold.status == EXPIRED:
                ended_as = EXPIRED
        except errors.NotFoundError:
            pass  # Redis lost it (restart): the database ends it below
        await record_ended(self.pool, [booking_id], status=ended_as)
        if ended_as == EXPIRED:
            raise errors.ReservationExpiredError("the hold had already lapsed")
        return await self.get(identity, booking_id)


async def record_offer_taken(pool: asyncpg.Pool, taken: str, booking_id: str) -> None:
    """Tells PostgreSQL at once, so a Redis lost before the worker's next tick cannot restore
    the offer. Best effort: the hold is durable already, and the worker records the take from
    Redis anyway."""
    try:
        async with pool.acquire() as conn, conn.transaction():
            if await waitlist_store.record_taken(conn, taken, booking_id, datetime.now(UTC)):
                WAITLIST_OFFERS.labels("taken").inc()
    except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
        log.warning(
            "offer %s taken by %s: left for the waitlist worker to record", taken, booking_id
        )


def offer_id(header: str | None) -> str:
    """The X-Waitlist-Offer header as reserve.lua takes it ("" = none)."""
    if not header:
        return ""
    try:
        return str(uuid.UUID(header))
    except ValueError:
        raise errors.OfferInvalidError("X-Waitlist-Offer is not an offer id") from None


def mark_durable_after_commit(scripts: Scripts) -> Callable[[list[NewHold]], Awaitable[None]]:
    """The HoldWriter hook: once committed, holds leave Redis's `pending` (one round trip)."""

    async def mark(holds: list[NewHold]) -> None:
        await scripts.mark_all_durable(
            [(hold.booking.event_id, hold.booking.booking_id) for hold in holds]
        )

    return mark


async def record_ended(pool: asyncpg.Pool, booking_ids: list[str], *, status: str) -> list[str]:
    """Records in PostgreSQL that Redis ended these holds, and announces each change (outbox).
    Bookings already ended are skipped, so repeating it is harmless."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        ended = await booking_store.end_bookings(conn, booking_ids, status=status, now=now)
        for item in ended:
            envelope = booking_status_envelope(
                booking_id=item.booking_id,
                event_id=item.event_id,
                zone_id=item.zone_id,
                quantity=item.quantity,
                status=status,
                now=now,
            )
            await add_to_outbox(conn, TOPIC_BOOKINGS, envelope)
    return [item.booking_id for item in ended]
