"""saga-orchestrator: drives each post-payment saga from the payment's outcome to its end.

Payment saga (one per payment, saga id = payment id):
  succeeded -> confirm_booking -> notify -> COMPLETED
            \\-> refused (hold lapsed or cancelled) -> refund_payment -> COMPENSATED
  failed (or no answer within SAGA_TIMEOUT_S) -> release_booking -> COMPENSATED
  succeeded after it was given up on -> refund_payment -> COMPENSATED
Cancel saga (a confirmed booking cancelled): refund_payment -> release_booking -> COMPLETED

Each message is handled in one PostgreSQL transaction that claims its id, moves the saga and
writes the next command to the outbox. A reply only counts for the step the saga waits on, so
duplicates and late replies change nothing. Every `housekeeping_interval_s` it sends the command
of sagas stuck longer than SAGA_TIMEOUT_S again (steps are idempotent) and gives up on payments
that never got an answer.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from booking.events import Envelope
from booking.metrics import SAGA_TIMEOUTS, SAGA_TRANSITIONS
from booking.payments import (
    COMPENSATED,
    COMPLETED,
    SAGA_FAILED,
    STATE_OF_STEP,
    STEP_CONFIRM,
    STEP_NOTIFY,
    STEP_REFUND,
    STEP_RELEASE,
    SagaTopics,
    advance_saga,
)
from booking.store import payments as payment_store
from booking.store import sagas as saga_store
from booking.store.sagas import Saga
from workers.consumer import ConsumerWorker, MalformedMessageError, claim_message
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

MAX_RETRIES = 10
PAYMENT_OUTCOMES = ("payment.succeeded", "payment.failed")


class SagaOrchestrator(ConsumerWorker):
    name = "saga-orchestrator"

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        topics: SagaTopics | None = None,
        group_id: str = "",
        **options: Any,
    ) -> None:
        namespace = settings.kafka_namespace
        self.saga_topics = topics or SagaTopics.for_namespace(namespace)
        group_id = group_id or (f"{self.name}.{namespace}" if namespace else self.name)
        super().__init__(
            settings,
            topics=[self.saga_topics.payments, self.saga_topics.replies],
            group_id=group_id,
            **options,
        )

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
        assert self.pool is not None
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await claim_message(conn, self.name, envelope.id):
                return
            payment = await payment_store.find_payment(conn, payment_id, lock=True)
            if payment is None:
                raise MalformedMessageError(f"unknown payment {payment_id!r}")
            saga = await saga_store.find_saga(conn, payment.payment_id, lock=True)
            if saga is None:
                await self._start(conn, payment, succeeded=succeeded, now=now)
            elif succeeded and payment.status == payment_store.FAILED:
                # The money came after we had given up on it: give it back.
                await saga_store.record_step(conn, saga.saga_id, "payment", "succeeded_late")
                await self._advance(conn, saga, step=STEP_REFUND, now=now)

    async def _start(
        self,
        conn: asyncpg.Connection,
        payment: payment_store.Payment,
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
        await saga_store.insert_saga(conn, saga)
        await saga_store.record_step(
            conn, saga.saga_id, "payment", outcome or ("succeeded" if succeeded else "failed")
        )
        await payment_store.set_status(
            conn,
            payment.payment_id,
            payment_store.SUCCEEDED if succeeded else payment_store.FAILED,
            now=now,
            from_statuses=(payment_store.PENDING,),
        )
        await self._advance(conn, saga, step=step, now=now)

    async def _on_reply(self, envelope: Envelope) -> None:
        data = envelope.data
        step, outcome = str(data.get("step")), str(data.get("outcome"))
        assert self.pool is not None
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await claim_message(conn, self.name, envelope.id):
                return
            try:
                saga = await saga_store.find_saga(conn, str(data["saga_id"]), lock=True)
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
        assert self.pool is not None
        now = datetime.now(UTC)
        before = now - timedelta(seconds=self.settings.saga_timeout_s)
        handled = 0
        async with self.pool.acquire() as conn, conn.transaction():
            for saga in await saga_store.claim_stuck_sagas(conn, before=before, limit=100):
                handled += 1
                if saga.attempts >= MAX_RETRIES:
                    error = f"no answer to {saga.step} after {saga.attempts} retries"
                    await self._advance(
                        conn, saga, step=None, state=SAGA_FAILED, now=now, last_error=error
                    )
                    SAGA_TIMEOUTS.labels("gave_up").inc()
                    log.error("saga %s: %s", saga.saga_id, error)
                    continue
                await saga_store.record_step(conn, saga.saga_id, saga.step or "", "retried")
                await self._advance(conn, saga, step=saga.step, now=now, retry=True)
                SAGA_TIMEOUTS.labels("retry").inc()
        async with self.pool.acquire() as conn, conn.transaction():
            for payment_id in await payment_store.unanswered_payments(
                conn, before=before, limit=100
            ):
                payment = await payment_store.find_payment(conn, payment_id, lock=True)
                if payment is None or payment.status != payment_store.PENDING:
                    continue
                if await saga_store.find_saga(conn, payment_id) is not None:
                    continue
                await self._start(conn, payment, succeeded=False, now=now, outcome="timed_out")
                SAGA_TIMEOUTS.labels("payment_timeout").inc()
                handled += 1
        return handled
