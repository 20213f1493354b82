"""Payments use-cases: pay for a hold, read a payment, take in provider webhooks, and start the
refund of a confirmed booking. The saga's vocabulary is `booking/payments/saga.py`.

Nothing here confirms a booking: a webhook only records the provider event and writes the
resulting message to the outbox in the same transaction; the saga workers do the rest. A
success that is not the payment's own (PaymentIntent, amount, currency) writes no message at
all (`booking/payments/checks.py`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from booking import errors
from booking.domain import (
    CONFIRMED,
    EXPIRED,
    RESERVED,
    Booking,
    fingerprint,
    from_ms,
    require_idempotency_key,
    to_ms,
)
from booking.inventory.scripts import Scripts
from booking.messaging import (
    Envelope,
    add_to_outbox,
)
from booking.metrics import PAYMENTS_CREATED, PAYMENTS_WEBHOOKS
from booking.payments import checks as payment_checks
from booking.payments import saga_store
from booking.payments import store as payment_store
from booking.payments.checks import Arrived
from booking.payments.providers.base import (
    PaymentProvider,
    PaymentRequest,
    ProviderRefusedError,
    ProviderUnavailableError,
    WebhookEvent,
)
from booking.payments.saga import STATE_OF_STEP, STEP_REFUND, SagaTopics, advance_saga
from booking.payments.saga_store import Saga
from booking.payments.store import FAILED, PENDING, Payment
from booking.schemas import PaymentBody
from booking.store import bookings as booking_store
from common.tokens import Identity

log = logging.getLogger(__name__)


@dataclass
class Payments:
    pool: asyncpg.Pool
    provider: PaymentProvider
    topics: SagaTopics = field(default_factory=SagaTopics)
    cancel_wait_s: float = 5.0
    scripts: Scripts | None = None
    hold_grace_s: float = 0.0

    async def create(
        self, identity: Identity, body: PaymentBody, *, idempotency_key: str | None
    ) -> dict[str, Any]:
        """The 201 body (the first one again for a replay of the same key and body)."""
        idempotency_key = require_idempotency_key(idempotency_key)
        request_fingerprint = fingerprint(body.model_dump(mode="json", exclude_none=True))
        earlier = await self._keyed(identity, idempotency_key, request_fingerprint)
        if earlier is not None:
            return await self._replay(identity, earlier)
        if body.test_outcome is not None and not self.provider.supports_test_outcome:
            raise errors.InvalidRequestError.field(
                "test_outcome", "only accepted with the mock provider"
            )
        booking = await self._live_hold(identity, str(body.booking_id))
        now = datetime.now(UTC)
        await self._keep_hold_while_paying(booking, now)
        payment = Payment(
            payment_id=str(uuid.uuid4()),
            booking_id=booking.booking_id,
            event_id=booking.event_id,
            user_id=identity.user_id,
            amount_minor=booking.amount_minor,
            currency=booking.currency,
            provider=self.provider.name,
            provider_ref=None,
            status=PENDING,
            created_at=now,
            updated_at=now,
        )
        response = {key: value for key, value in payment.body().items() if key != "updated_at"}
        try:
            await payment_store.insert_payment(
                self.pool,
                payment,
                idempotency_key=idempotency_key,
                fingerprint=request_fingerprint,
                test_outcome=body.test_outcome,
                first_response=response,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "payments_one_per_idempotency_key":
                # The same key raced us: answer what the first request stored.
                again = await self._keyed(identity, idempotency_key, request_fingerprint)
                if again is not None:
                    return again.first_response
            raise errors.InvalidStateError("a payment for this booking is already running") from exc
        await self._open_at_provider(payment, body.test_outcome)
        return response

    async def _keyed(
        self, identity: Identity, idempotency_key: str, request_fingerprint: str
    ) -> payment_store.KeyedPayment | None:
        keyed = await payment_store.find_by_idempotency_key(
            self.pool, identity.user_id, idempotency_key
        )
        if keyed is not None and keyed.fingerprint != request_fingerprint:
            raise errors.IdempotencyKeyReusedError()
        return keyed

    async def _replay(
        self, identity: Identity, keyed: payment_store.KeyedPayment
    ) -> dict[str, Any]:
        """The first answer again; but a payment the provider never accepted (it was not
        answering) is opened there now, as long as its hold is live."""
        payment = keyed.payment
        if payment.status == PENDING and payment.provider_ref is None:
            booking = await self._live_hold(identity, payment.booking_id)
            await self._keep_hold_while_paying(booking, datetime.now(UTC))
            await self._open_at_provider(payment, keyed.test_outcome)
        return keyed.first_response

    async def _live_hold(self, identity: Identity, booking_id: str) -> Booking:
        booking = await booking_store.find_booking(self.pool, booking_id)
        if booking is None or booking.user_id != identity.user_id:
            raise errors.NotFoundError("no such booking")
        if booking.status == EXPIRED or (
            booking.status == RESERVED and booking.expires_at <= datetime.now(UTC)
        ):
            raise errors.ReservationExpiredError("the hold has lapsed")
        if booking.status != RESERVED:
            raise errors.InvalidStateError(f"the booking is {booking.status}")
        return booking

    async def _keep_hold_while_paying(self, booking: Booking, now: datetime) -> None:
        """Moves the hold's deadline to at least now + `hold_grace_s`, in Redis (which decides
        whether a hold is live) and then PostgreSQL, before any money can move. A failed or
        unanswered payment releases the hold through the saga, so no seat waits longer than
        the payment takes to settle."""
        if self.scripts is None or self.hold_grace_s <= 0:
            return
        until = now + timedelta(seconds=self.hold_grace_s)
        try:
            deadline_ms = await self.scripts.extend_hold(
                booking.event_id, booking.booking_id, until_ms=to_ms(until)
            )
        except errors.NotFoundError:
            # PostgreSQL holds it live but Redis does not know it: Redis lost its data and the
            # reconciler has not restored the event yet.
            raise errors.ServiceUnavailableError("inventory is being restored; try again") from None
        await booking_store.extend_deadline(self.pool, booking.booking_id, from_ms(deadline_ms))

    async def _open_at_provider(self, payment: Payment, test_outcome: str | None) -> None:
        request = PaymentRequest(
            payment_id=payment.payment_id,
            booking_id=payment.booking_id,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            test_outcome=test_outcome,
        )
        try:
            created = await self.provider.create_payment(request)
        except ProviderRefusedError:
            await payment_store.set_status(
                self.pool,
                payment.payment_id,
                FAILED,
                now=datetime.now(UTC),
                from_statuses=(PENDING,),
            )
            raise
        except ProviderUnavailableError as exc:
            # The payment stays PENDING and its hold lives on: a retry with the same key opens
            # it; the orchestrator asks the provider meanwhile and fails it only on the
            # provider's answer or at the hold's deadline.
            log.warning("payment %s: provider not answering: %s", payment.payment_id, exc.reason)
            raise
        await payment_store.set_provider_ref(
            self.pool, payment.payment_id, created.provider_ref, now=datetime.now(UTC)
        )
        PAYMENTS_CREATED.labels(self.provider.name).inc()

    async def get(self, identity: Identity, payment_id: str) -> Payment:
        payment = await payment_store.find_payment(self.pool, payment_id)
        if payment is None or (payment.user_id != identity.user_id and not identity.is_admin):
            raise errors.NotFoundError("no such payment")
        return payment

    async def receive_webhook(self, body: bytes, headers: Mapping[str, str]) -> str:
        """`recorded`, `duplicate`, `ignored` or `mismatched` (a success that is not the
        payment's own: on record, never confirming); raises InvalidSignatureError or
        InvalidRequestError (nothing stored)."""
        try:
            event = self.provider.parse_webhook(body, headers, now_s=time.time())
        except errors.BookingError as exc:
            PAYMENTS_WEBHOOKS.labels(self.provider.name, exc.code).inc()
            raise
        now = datetime.now(UTC)
        flagged: tuple[Payment, Arrived, list[str]] | None = None
        async with self.pool.acquire() as conn, conn.transaction():
            payment = None
            if event.payment_id:
                payment = await payment_store.find_payment(conn, event.payment_id)
            if payment is None and event.provider_ref:
                payment = await payment_store.find_by_provider_ref(
                    conn, self.provider.name, event.provider_ref
                )
            arrived = Arrived.of_event(event)
            outcome: str = event.outcome
            reasons: list[str] = []
            if payment is not None and outcome == "succeeded":
                reasons = await payment_checks.mismatches(conn, payment, arrived)
                outcome = "mismatched" if reasons else outcome
            elif payment is not None and outcome == "failed":
                if not await payment_checks.own_intent(conn, payment, arrived):
                    outcome = "ignored"  # another PaymentIntent's failure is not this payment's
            fresh = await payment_store.record_provider_event(
                conn,
                provider=self.provider.name,
                event_id=event.event_id,
                event_type=event.type,
                outcome=outcome,
                payment_id=payment.payment_id if payment else None,
                payload=event.payload,
            )
            if not fresh:
                result = "duplicate"
            elif payment is None or outcome not in ("succeeded", "failed", "mismatched"):
                result = "ignored"
            elif outcome == "mismatched":
                source = f"webhook {event.event_id}"
                await payment_checks.record(conn, payment, arrived, reasons, source=source)
                flagged = (payment, arrived, reasons)
                result = "mismatched"
            else:
                await self._settled_by_webhook(conn, payment, event, outcome, now)
                result = "recorded"
        if flagged is not None:
            payment_checks.flag(*flagged, seen_in="webhook")
        PAYMENTS_WEBHOOKS.labels(self.provider.name, result).inc()
        return result

    async def _settled_by_webhook(
        self,
        conn: asyncpg.Connection,
        payment: Payment,
        event: WebhookEvent,
        outcome: str,
        now: datetime,
    ) -> None:
        if payment.provider_ref is None and event.provider_ref:
            # Verified as the payment's own: the answer to our create was lost.
            await payment_store.adopt_provider_ref(
                conn, payment.payment_id, event.provider_ref, now=now
            )
        envelope = Envelope.new(
            f"payment.{outcome}",
            payment.booking_id,
            {
                "payment_id": payment.payment_id,
                "booking_id": payment.booking_id,
                "event_id": payment.event_id,
                "provider_event_id": event.event_id,
            },
            now,
        )
        await add_to_outbox(conn, self.topics.payments, envelope)

    async def refund_confirmed(self, booking: Booking) -> Booking:
        """Cancel of a confirmed booking: a `cancel` saga refunds the payment, then releases the
        seats (final status REFUNDED). Waits up to `cancel_wait_s` for it to finish."""
        if booking.status != CONFIRMED:
            raise errors.InvalidStateError(f"the booking is {booking.status}")
        payment = await payment_store.paid_payment_of(self.pool, booking.booking_id)
        if payment is None:
            raise errors.InvalidStateError("the booking has no settled payment to refund")
        now = datetime.now(UTC)
        saga = Saga.begin(
            saga_id=str(uuid.uuid4()),
            kind="cancel",
            payment_id=payment.payment_id,
            booking_id=booking.booking_id,
            event_id=booking.event_id,
            step=STEP_REFUND,
            state=STATE_OF_STEP[STEP_REFUND],
            now=now,
        )
        async with self.pool.acquire() as conn, conn.transaction():
            if await saga_store.insert_saga(conn, saga):
                await saga_store.record_step(conn, saga.saga_id, "cancel", "requested")
                await advance_saga(conn, saga, step=STEP_REFUND, now=now, topics=self.topics)
        deadline = time.monotonic() + self.cancel_wait_s
        current = booking
        while current.status == CONFIRMED and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            found = await booking_store.find_booking(self.pool, booking.booking_id)
            current = found or current
        return current
