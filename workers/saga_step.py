"""saga-step: executes the saga's commands and replies with each outcome.

Steps: `confirm_booking` (Redis `confirm` first, then PostgreSQL: after a crash in between, the
redelivered command finds Redis already confirmed, a no-op, and finishes PostgreSQL, where the
booking's tickets are issued in the confirming transaction),
`refund_payment` (the provider refund is idempotent per payment), `release_booking` (seats back
on sale) and `notify` (the confirmation email); a refund recorded writes the buyer's refund
email in the same transaction. Each records its outcome, the processed message
id and the reply in one PostgreSQL transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from booking import errors
from booking.domain import CONFIRMED, RESERVED
from booking.inventory import ReleaseReason
from booking.messaging import Envelope, add_to_outbox, booking_status_envelope
from booking.metrics import SAGA_STEPS
from booking.payments import (
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_REFUNDED,
    PAYMENT_SUCCEEDED,
    STEP_CONFIRM,
    STEP_NOTIFY,
    STEP_REFUND,
    STEP_RELEASE,
    Notifier,
    OutboxNotifier,
    PaymentProvider,
    ProviderRefusedError,
    RefundRequest,
    SagaTopics,
    confirmation_email,
    create_provider,
    find_payment,
    record_saga_step,
    set_payment_status,
)
from booking.reconcile import restore_event
from booking.store import (
    claim_message,
    confirm_booking,
    end_bookings,
    find_booking,
    find_email_address,
    lock_booking_status,
    was_processed,
)
from booking.tickets import TicketSigner, booking_tickets, issue_tickets
from workers.consumer import POOL_CLOSE_S, ConsumerWorker, MalformedMessageError
from workers.resources import Provisioned, Resources, open_resources
from workers.saga_emails import send_refunded
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

Outcome = tuple[str, dict[str, Any]]
_REFUNDABLE = (PAYMENT_SUCCEEDED, PAYMENT_FAILED, PAYMENT_PENDING)
Work = Callable[[asyncpg.Connection], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class Command:
    saga_id: str
    step: str
    payment_id: str
    booking_id: str
    event_id: str
    release_reason: str

    @classmethod
    def of(cls, envelope: Envelope) -> Command:
        data = envelope.data
        try:
            return cls(
                saga_id=str(uuid.UUID(str(data["saga_id"]))),
                step=str(data["step"]),
                payment_id=str(uuid.UUID(str(data["payment_id"]))),
                booking_id=str(uuid.UUID(str(data["booking_id"]))),
                event_id=str(uuid.UUID(str(data["event_id"]))),
                release_reason=str(data.get("release_reason") or "FAILED"),
            )
        except (KeyError, ValueError) as exc:
            raise MalformedMessageError(f"not a saga command: {exc}") from None


class SagaStep(ConsumerWorker):
    name = "saga-step"

    def __init__(
        self,
        settings: WorkerSettings,
        resources: Resources,
        *,
        topics: SagaTopics | None = None,
        group_id: str = "",
        provider: PaymentProvider | None = None,
        notifier: Notifier | None = None,
        **options: Any,
    ) -> None:
        namespace = settings.kafka_namespace
        self.saga_topics = topics or SagaTopics.for_namespace(namespace)
        group_id = group_id or (f"{self.name}.{namespace}" if namespace else self.name)
        super().__init__(
            settings,
            resources.pool,
            topics=[self.saga_topics.commands],
            group_id=group_id,
            **options,
        )
        self.scripts = resources.scripts
        self.provider = (
            provider
            if provider is not None
            else create_provider(settings.payments, pool=resources.pool)
        )
        self.notifier = notifier or OutboxNotifier(self.saga_topics.notifications)
        self.ticket_signer = TicketSigner(settings.ticket_secret)
        self._steps: dict[str, Callable[[Envelope, Command], Awaitable[None]]] = {
            STEP_CONFIRM: self._confirm,
            STEP_REFUND: self._refund,
            STEP_RELEASE: self._release,
            STEP_NOTIFY: self._notify,
        }

    @classmethod
    def provisioned(cls, settings: WorkerSettings, **options: Any) -> Provisioned[Resources]:
        """`options`: those of the constructor (topics, group_id, provider, ...)."""
        return Provisioned(
            cls,
            lambda: open_resources(settings, pool_size=4, pool_close_timeout_s=POOL_CLOSE_S),
            lambda resources: cls(settings, resources, **options),
        )

    async def teardown(self) -> None:
        await self.provider.aclose()

    async def handle(self, envelope: Envelope) -> None:
        command = Command.of(envelope)
        step = self._steps.get(command.step)
        if step is None:
            raise MalformedMessageError(f"unknown saga step {command.step!r}")
        if await was_processed(self.pool, self.name, envelope.id):
            return
        await step(envelope, command)

    async def _finish(self, envelope: Envelope, command: Command, work: Work) -> None:
        """Runs `work` and records its outcome, the message as processed and the reply, in one
        transaction; does nothing if another copy got there first."""
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await claim_message(conn, self.name, envelope.id):
                return
            outcome, detail = await work(conn)
            await record_saga_step(conn, command.saga_id, command.step, outcome, detail)
            reply = Envelope.new(
                "saga.reply",
                command.booking_id,
                {
                    "saga_id": command.saga_id,
                    "step": command.step,
                    "outcome": outcome,
                    "detail": detail,
                },
                now,
            )
            await add_to_outbox(conn, self.saga_topics.replies, reply)
        SAGA_STEPS.labels(command.step, outcome).inc()

    async def _confirm(self, envelope: Envelope, command: Command) -> None:
        try:
            try:
                await self.scripts.confirm(command.event_id, command.booking_id)
            except errors.NotFoundError:
                # Redis may have lost the event (a restart without its data) before the
                # reconciler restored it: restore it now if PostgreSQL holds the booking live,
                # and ask again. A paid, live hold is never refunded because Redis forgot it.
                if not await self._restore_lost_event(command):
                    raise
                await self.scripts.confirm(command.event_id, command.booking_id)
        except (
            errors.ReservationExpiredError,
            errors.InvalidStateError,
            errors.NotFoundError,
        ) as exc:
            refusal = exc.code

            async def refused(conn: asyncpg.Connection) -> Outcome:
                return "refused", {"reason": refusal}

            await self._finish(envelope, command, refused)
            return
        ended_in_postgres: list[bool] = []

        async def confirm_in_postgres(conn: asyncpg.Connection) -> Outcome:
            row = await lock_booking_status(conn, command.booking_id)
            if row is None:
                return "refused", {"reason": "not_found"}
            if row["status"] == RESERVED:
                now = datetime.now(UTC)
                await confirm_booking(
                    conn, command.booking_id, now=now, payment_id=command.payment_id
                )
                confirmed = await find_booking(conn, command.booking_id)
                assert confirmed is not None
                # In the confirming transaction: no sale without its tickets, none without a sale.
                tickets = await issue_tickets(conn, confirmed, now=now, signer=self.ticket_signer)
                await self._announce(conn, command.booking_id, CONFIRMED, now)
                return "confirmed", {"tickets": len(tickets)}
            if row["status"] == CONFIRMED and str(row["payment_id"]) == command.payment_id:
                return "confirmed", {"replay": True}
            if row["status"] != CONFIRMED:
                ended_in_postgres.append(True)
            return "refused", {"reason": f"booking is {row['status']}"}

        await self._finish(envelope, command, confirm_in_postgres)
        if ended_in_postgres:
            # PostgreSQL (the truth) had already ended it: Redis must not keep the seats sold.
            await self.scripts.release(
                command.event_id, command.booking_id, reason="REFUNDED", allow_confirmed=True
            )

    async def _restore_lost_event(self, command: Command) -> bool:
        """True when PostgreSQL holds the booking live within its deadline and Redis had no
        inventory for its event (now restored from PostgreSQL, by us or someone faster)."""
        booking = await find_booking(self.pool, command.booking_id)
        if booking is None or booking.status != RESERVED:
            return False
        if booking.expires_at <= datetime.now(UTC):
            return False
        if await self.scripts.availability(command.event_id):
            return False  # Redis has the event: the hold itself is unknown there
        live = await restore_event(self.pool, self.scripts, command.event_id)
        log.warning(
            "confirm of %s found event %s missing in Redis: restored from PostgreSQL (%s)",
            command.booking_id,
            command.event_id,
            "by another process" if live is None else f"{live} live bookings",
        )
        return True

    async def _refund(self, envelope: Envelope, command: Command) -> None:
        payment = await find_payment(self.pool, command.payment_id)
        if payment is None:
            raise MalformedMessageError(f"unknown payment {command.payment_id}")
        refund_ref = ""
        refusal = ""
        if payment.status != PAYMENT_REFUNDED:
            try:
                refund_ref = await self.provider.refund(
                    RefundRequest(
                        payment_id=payment.payment_id,
                        provider_ref=payment.provider_ref,
                        amount_minor=payment.amount_minor,
                        currency=payment.currency,
                    )
                )
            except ProviderRefusedError as exc:
                refusal = exc.detail or exc.code

        async def record_refund(conn: asyncpg.Connection) -> Outcome:
            if refusal:
                return "failed", {"reason": refusal}
            now = datetime.now(UTC)
            if await set_payment_status(
                conn,
                payment.payment_id,
                PAYMENT_REFUNDED,
                now=now,
                from_statuses=(PAYMENT_SUCCEEDED, PAYMENT_FAILED, PAYMENT_PENDING),
            ):
                await send_refunded(conn, self.notifier, payment, refund_ref, now)
            return "refunded", {"refund_ref": refund_ref}

        await self._finish(envelope, command, record_refund)

    async def _release(self, envelope: Envelope, command: Command) -> None:
        refund = command.release_reason == "REFUNDED"
        reason: ReleaseReason = "REFUNDED" if refund else "FAILED"
        try:
            result = await self.scripts.release(
                command.event_id, command.booking_id, reason=reason, allow_confirmed=refund
            )
            final = result.hold.status
        except errors.NotFoundError:
            final = "REFUNDED" if refund else "CANCELLED"  # Redis lost it: PostgreSQL decides
        except errors.InvalidStateError:
            final = ""  # confirmed meanwhile (by a later payment): not ours to release

        async def release_in_postgres(conn: asyncpg.Connection) -> Outcome:
            if not final:
                return "released", {"skipped": "booking confirmed"}
            now = datetime.now(UTC)
            ended = await end_bookings(
                conn,
                [command.booking_id],
                status=final,
                now=now,
                from_statuses=(RESERVED, CONFIRMED) if refund else (RESERVED,),
            )
            if ended:
                await self._announce(conn, command.booking_id, final, now)
            return "released", {"status": final}

        await self._finish(envelope, command, release_in_postgres)

    async def _notify(self, envelope: Envelope, command: Command) -> None:
        async def send(conn: asyncpg.Connection) -> Outcome:
            booking = await find_booking(conn, command.booking_id)
            if booking is None:
                return "skipped", {"reason": "no booking"}
            address = await find_email_address(conn, booking.user_id)
            if address is None:
                return "skipped", {"reason": "no email address"}
            issued = await booking_tickets(conn, [booking.booking_id])
            email = confirmation_email(
                address,
                booking_id=booking.booking_id,
                quantity=booking.quantity,
                amount_minor=booking.amount_minor,
                currency=booking.currency,
                tickets=[
                    {"code": t.code, "zone_id": t.zone_id, "seat_id": t.seat_id}
                    for t in issued.get(booking.booking_id, [])
                ],
            )
            await self.notifier.send(conn, email, now=datetime.now(UTC))
            return "sent", {}

        await self._finish(envelope, command, send)

    async def _announce(
        self, conn: asyncpg.Connection, booking_id: str, status: str, now: datetime
    ) -> None:
        booking = await find_booking(conn, booking_id)
        assert booking is not None
        envelope = booking_status_envelope(
            booking_id=booking_id,
            event_id=booking.event_id,
            zone_id=booking.zone_id,
            quantity=booking.quantity,
            status=status,
            now=now,
        )
        await add_to_outbox(conn, self.saga_topics.bookings, envelope)
