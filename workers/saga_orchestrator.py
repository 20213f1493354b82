"""saga-orchestrator: drives each post-payment saga from the payment's outcome to its end.

Payment saga (one per payment, saga id = payment id):
  succeeded -> confirm_booking -> notify -> COMPLETED
            \\-> refused (hold lapsed or cancelled) -> refund_payment -> COMPENSATED
  failed -> release_booking -> COMPENSATED
  succeeded after it was given up on -> refund_payment -> COMPENSATED
Cancel saga (a confirmed booking cancelled): refund_payment -> release_booking -> COMPLETED

Each message is handled in one PostgreSQL transaction that claims its id, moves the saga and
writes the next command to the outbox. A reply only counts for the step the saga waits on, so
duplicates and late replies change nothing.

Nothing depends on a message arriving: PostgreSQL is re-read every `housekeeping_interval_s`.
- A saga untouched for SAGA_TIMEOUT_S has its command sent again (steps are idempotent), with
  a growing pause between tries; it never gives up on its own (after MAX_RETRIES it is logged
  and counted for a human, and still retried).
- A payment still PENDING without a saga a few seconds after it was opened (its webhook, or the
  message the webhook became, was lost) is settled by asking the provider where it stands:
  succeeded with the payment's own PaymentIntent, amount and currency -> the payment saga as for
  a webhook; succeeded with other money -> that money refunded, the payment failed; declined or
  cancelled -> released. Still unsettled SAGA_TIMEOUT_S after the provider accepted it, or once
  its hold is over -> cancelled at the provider first, and failed only once the provider says
  it took no money. One the provider never accepted (it was not answering when the buyer paid)
  waits for the buyer's retry until its hold is over. A provider that cannot answer leaves the
  payment PENDING until it can. (A hold is over SAGA_TIMEOUT_S after its deadline: seat-release
  ends it first, as EXPIRED.)
- Money a refused success named is refunded (`workers/saga_mismatch_refunds.py`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from booking.messaging import Envelope
from booking.metrics import SAGA_TIMEOUTS, SAGA_TRANSITIONS
from booking.payments import (
    COMPENSATED,
    COMPLETED,
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_SUCCEEDED,
    SAGA_FAILED,
    SETTLED_WITHOUT_MONEY,
    STATE_OF_STEP,
    STEP_CONFIRM,
    STEP_NOTIFY,
    STEP_REFUND,
    STEP_RELEASE,
    Arrived,
    Charge,
    Notifier,
    OutboxNotifier,
    Payment,
    PaymentProvider,
    Saga,
    SagaTopics,
    UnansweredPayment,
    adopt_provider_ref,
    advance_saga,
    claim_stuck_sagas,
    create_provider,
    find_payment,
    find_saga,
    flag_payment_mismatch,
    insert_saga,
    payment_mismatches,
    record_payment_mismatch,
    record_saga_step,
    set_payment_status,
    unanswered_payments,
)
from booking.store import claim_message
from workers.consumer import POOL_CLOSE_S, ConsumerWorker, MalformedMessageError
from workers.resources import Provisioned, open_pool
from workers.saga_emails import send_declined
from workers.saga_mismatch_refunds import refund_mismatches
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

MAX_RETRIES = 10
RETRY_BACKOFF_CAP = 8  # re-sends come SAGA_TIMEOUT_S apart at first, at most 8x that later
PAYMENT_OUTCOMES = ("payment.succeeded", "payment.failed")
MAX_RESOLVE_AFTER_S = 5.0


class SagaOrchestrator(ConsumerWorker):
    name = "saga-orchestrator"

    def __init__(
        self,
        settings: WorkerSettings,
        pool: asyncpg.Pool,
        *,
        topics: SagaTopics | None = None,
        group_id: str = "",
        provider: PaymentProvider | None = None,
        notifier: Notifier | None = None,
        **options: Any,
    ) -> None:
        namespace = settings.kafka_namespace
        self.saga_topics = topics or SagaTopics.for_namespace(namespace)
        self.notifier = notifier or OutboxNotifier(self.saga_topics.notifications)
        group_id = group_id or (f"{self.name}.{namespace}" if namespace else self.name)
        super().__init__(
            settings,
            pool,
            topics=[self.saga_topics.payments, self.saga_topics.replies],
            group_id=group_id,
            **options,
        )
        self._own_provider = provider is None
        self.provider = (
            provider if provider is not None else create_provider(settings.payments, pool=pool)
        )
        # How long a payment may wait for its webhook before the provider is asked.
        self.resolve_after_s = min(MAX_RESOLVE_AFTER_S, settings.saga_timeout_s / 2)

    @classmethod
    def provisioned(cls, settings: WorkerSettings, **options: Any) -> Provisioned[asyncpg.Pool]:
        """`options`: those of the constructor (topics, group_id, provider, ...)."""
        return Provisioned(
            cls,
            lambda: open_pool(settings, max_size=4, close_timeout_s=POOL_CLOSE_S),
            lambda pool: cls(settings, pool, **options),
        )

    async def teardown(self) -> None:
        if self._own_provider:
            await self.provider.aclose()

    async def handle(self, envelope: Envelope) -> None:
        if envelope.type in PAYMENT_OUTCOMES:
            await self._on_payment(envelope)
        elif envelope.type == "saga.reply":
            await self._on_reply(envelope)
        else:
            raise MalformedMessageError(f"unexpected message type {envelope.type!r}")

    async def _advance(
        self,
        conn: asyncpg.Connection,
        saga: Saga,
        *,
        step: str | None,
        state: str | None = None,
        now: datetime,
        retry: bool = False,
        last_error: str | None = None,
    ) -> None:
        await advance_saga(
            conn,
            saga,
            step=step,
            state=state,
            now=now,
            topics=self.saga_topics,
            retry=retry,
            last_error=last_error,
        )
        SAGA_TRANSITIONS.labels(saga.kind, state or STATE_OF_STEP[step or ""]).inc()

    async def _on_payment(self, envelope: Envelope) -> None:
        payment_id = str(envelope.data.get("payment_id") or "")
        succeeded = envelope.type == "payment.succeeded"
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await claim_message(conn, self.name, envelope.id):
                return
            payment = await find_payment(conn, payment_id, lock=True)
            if payment is None:
                raise MalformedMessageError(f"unknown payment {payment_id!r}")
            saga = await find_saga(conn, payment.payment_id, lock=True)
            if saga is None:
                await self._start(conn, payment, succeeded=succeeded, now=now)
            elif succeeded and payment.status == PAYMENT_FAILED:
                # The money came after we had given up on it: give it back.
                await record_saga_step(conn, saga.saga_id, "payment", "succeeded_late")
                await self._advance(conn, saga, step=STEP_REFUND, now=now)

    async def _start(
        self,
        conn: asyncpg.Connection,
        payment: Payment,
        *,
        succeeded: bool,
        now: datetime,
        outcome: str | None = None,
    ) -> None:
        step = STEP_CONFIRM if succeeded else STEP_RELEASE
        saga = Saga.begin(
            saga_id=payment.payment_id,
            kind="payment",
            payment_id=payment.payment_id,
            booking_id=payment.booking_id,
            event_id=payment.event_id,
            step=step,
            state=STATE_OF_STEP[step],
            now=now,
        )
        await insert_saga(conn, saga)
        await record_saga_step(
            conn, saga.saga_id, "payment", outcome or ("succeeded" if succeeded else "failed")
        )
        status = PAYMENT_SUCCEEDED if succeeded else PAYMENT_FAILED
        moved = await set_payment_status(
            conn, payment.payment_id, status, now=now, from_statuses=(PAYMENT_PENDING,)
        )
        if moved and not succeeded:  # the buyer hears of it in the same commit
            await send_declined(conn, self.notifier, payment, outcome or "failed", now)
        await self._advance(conn, saga, step=step, now=now)

    async def _on_reply(self, envelope: Envelope) -> None:
        data = envelope.data
        step, outcome = str(data.get("step")), str(data.get("outcome"))
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await claim_message(conn, self.name, envelope.id):
                return
            try:
                saga = await find_saga(conn, str(data["saga_id"]), lock=True)
            except (KeyError, ValueError) as exc:
                raise MalformedMessageError(f"not a saga reply: {exc}") from None
            if saga is None:
                raise MalformedMessageError(f"unknown saga {data['saga_id']!r}")
            if saga.finished or saga.step != step:
                return  # a duplicate or a late reply: the saga has moved on
            await self._after(conn, saga, step, outcome, data.get("detail"), now)

    async def _after(
        self,
        conn: asyncpg.Connection,
        saga: Saga,
        step: str,
        outcome: str,
        detail: Any,
        now: datetime,
    ) -> None:
        cancel = saga.kind == "cancel"
        if outcome == "failed":
            await self._advance(
                conn, saga, step=None, state=SAGA_FAILED, now=now, last_error=str(detail)
            )
            log.error("saga %s failed at %s: %s", saga.saga_id, step, detail)
        elif step == STEP_CONFIRM:
            await self._advance(
                conn, saga, step=STEP_NOTIFY if outcome == "confirmed" else STEP_REFUND, now=now
            )
        elif step == STEP_NOTIFY:
            await self._advance(conn, saga, step=None, state=COMPLETED, now=now)
        elif step == STEP_REFUND and cancel:
            await self._advance(conn, saga, step=STEP_RELEASE, now=now)
        elif step in (STEP_REFUND, STEP_RELEASE):
            done = COMPLETED if cancel else COMPENSATED
            await self._advance(conn, saga, step=None, state=done, now=now)
        else:
            raise MalformedMessageError(f"unknown saga step {step!r}")

    async def housekeeping(self) -> int:
        return (
            await self._resend_stuck_sagas()
            + await self._settle_unanswered_payments()
            + await refund_mismatches(self.pool, self.provider)
        )

    async def _resend_stuck_sagas(self) -> int:
        now = datetime.now(UTC)
        handled = 0
        async with self.pool.acquire() as conn, conn.transaction():
            stuck = await claim_stuck_sagas(
                conn,
                now=now,
                timeout_s=self.settings.saga_timeout_s,
                backoff_cap=RETRY_BACKOFF_CAP,
                limit=100,
            )
            for saga in stuck:
                handled += 1
                if saga.attempts + 1 == MAX_RETRIES:
                    SAGA_TIMEOUTS.labels("gave_up").inc()
                    log.error(
                        "saga %s: no answer to %s after %d tries; still retrying (check "
                        "saga-step, the broker and the provider)",
                        saga.saga_id,
                        saga.step,
                        saga.attempts + 1,
                    )
                await record_saga_step(conn, saga.saga_id, saga.step or "", "retried")
                await self._advance(conn, saga, step=saga.step, now=now, retry=True)
                SAGA_TIMEOUTS.labels("retry").inc()
        return handled

    async def _settle_unanswered_payments(self) -> int:
        """Asks the provider about each payment nobody told us about (see the module doc)."""
        now = datetime.now(UTC)
        handled = 0
        for unanswered in await unanswered_payments(
            self.pool, before=now - timedelta(seconds=self.resolve_after_s), limit=100
        ):
            payment = unanswered.payment
            if unanswered.recorded_outcome is not None:
                # A signed webhook said so but its message never got here: re-drive it.
                succeeded = unanswered.recorded_outcome == "succeeded"
                outcome = f"{unanswered.recorded_outcome}_on_record"
                if await self._settle(payment.payment_id, succeeded, outcome):
                    SAGA_TIMEOUTS.labels("redriven").inc()
                    handled += 1
                continue
            try:
                charge = await self.provider.retrieve(payment.payment_id, payment.provider_ref)
                if charge.status in ("pending", "not_found") and self._overdue(unanswered, now):
                    charge = await self.provider.cancel(payment.payment_id, payment.provider_ref)
            except Exception as exc:  # the provider cannot tell now: ask again next time
                log.warning("payment %s: provider not answering: %s", payment.payment_id, exc)
                continue
            settled = await self._outcome(unanswered, charge, now)
            if settled is None:
                continue  # not settled yet
            succeeded = settled == "succeeded_by_provider"
            adopt = charge.provider_ref if succeeded else None
            if await self._settle(payment.payment_id, succeeded, settled, adopt=adopt):
                SAGA_TIMEOUTS.labels(_TIMEOUT_ACTIONS[settled]).inc()
                handled += 1
        return handled

    def _overdue(self, unanswered: UnansweredPayment, now: datetime) -> bool:
        """Time to cancel: the provider accepted the payment SAGA_TIMEOUT_S ago, or its hold is
        over. A payment the provider never accepted waits for the latter: the buyer retrying
        with the same key opens it (failing it sooner would cost them the seats)."""
        timeout = timedelta(seconds=self.settings.saga_timeout_s)
        opened = unanswered.opened_at
        return self._hold_over(unanswered, now) or (opened is not None and opened < now - timeout)

    def _hold_over(self, unanswered: UnansweredPayment, now: datetime) -> bool:
        """The hold's deadline passed SAGA_TIMEOUT_S ago: by then seat-release has ended the
        hold itself (EXPIRED), and a payment settling late meets a lapsed hold (refunded)."""
        timeout = timedelta(seconds=self.settings.saga_timeout_s)
        return unanswered.hold_deadline < now - timeout

    async def _outcome(
        self, unanswered: UnansweredPayment, charge: Charge, now: datetime
    ) -> str | None:
        """How the provider's answer settles the payment; None while it does not."""
        payment = unanswered.payment
        if charge.status == "succeeded":
            arrived = Arrived.of_charge(charge)
            reasons = await payment_mismatches(self.pool, payment, arrived)
            if not reasons:
                return "succeeded_by_provider"
            if await record_payment_mismatch(
                self.pool, payment, arrived, reasons, source="provider"
            ):
                flag_payment_mismatch(payment, arrived, reasons, seen_in="provider")
            if "payment_intent" in reasons and not self._overdue(unanswered, now):
                return None  # not this payment's PaymentIntent: its own may still pay
            # Its own PaymentIntent took other money (it can never take the right sum now), or
            # the hold is over: failed; what that PaymentIntent took is refunded on its own.
            return "mismatched_by_provider"
        if charge.status in SETTLED_WITHOUT_MONEY:
            return "timed_out" if charge.status == "canceled" else "declined_by_provider"
        if charge.status == "not_found" and self._hold_over(unanswered, now):
            return "unknown_to_provider"
        return None  # pending or processing

    async def _settle(
        self, payment_id: str, succeeded: bool, outcome: str, *, adopt: str | None = None
    ) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            payment = await find_payment(conn, payment_id, lock=True)
            if payment is None or payment.status != PAYMENT_PENDING:
                return False
            if await find_saga(conn, payment_id) is not None:
                return False  # its webhook got there first
            now = datetime.now(UTC)
            if adopt and payment.provider_ref is None:
                # Found by our payment id: a refund must be able to name its PaymentIntent.
                await adopt_provider_ref(conn, payment_id, adopt, now=now)
            await self._start(conn, payment, succeeded=succeeded, now=now, outcome=outcome)
            log.info("payment %s settled from the provider: %s", payment_id, outcome)
        return True


_TIMEOUT_ACTIONS: dict[str, str] = {
    "succeeded_by_provider": "provider_succeeded",
    "declined_by_provider": "provider_failed",
    "mismatched_by_provider": "provider_mismatch",
    "timed_out": "payment_timeout",
    "unknown_to_provider": "payment_timeout",
}
