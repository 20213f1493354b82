"""notifier: sends the emails of the notifications topic over SMTP, each one once.

Per message: skipped if processed already; else one attempt is counted and marked `sending` in
`email_deliveries` (committed, with the notification itself), the email goes to the SMTP server
with a Message-ID derived from the notification id (`<id@booking-rush>`), and the 250 is
recorded: the message processed and the delivery `sent`, in one transaction.

A refused connection, a timeout or a 4xx answer parks the email in PostgreSQL (`failed`, its
next try `NOTIFIER_BACKOFF_S` doubling later, at most 60 s) and the message counts as
processed: the retry pass (housekeeping, every `retry_interval_s`) tries due emails again, so
one deferred recipient never holds up the topic and no tick waits out a backoff. While the
server keeps failing (a circuit, open for one backoff after each such failure) new messages are
parked untried. A 5xx answer, an address that is not one, or `NOTIFIER_MAX_ATTEMPTS` tries in
all (counted across restarts) send the notification to `<topic>.dlq` with the reason (from the
topic the consumer's way; from the retry pass published first, then recorded `dead`).

The crash window: a notifier killed after the server's 250 and before its commit leaves the
delivery `sending`; the redelivered message (or the retry pass, once the try's lease is over)
sends the email again, with the same Message-ID (a recipient's mail system may drop it as a
duplicate; the `make run` sink keeps it beside the first). It is counted as `resent` and
logged, never lost. Two copies never send one email at once: a try holds a PostgreSQL advisory
lock on it, which dies with the try's connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import Any

import asyncpg
import orjson

from booking.messaging import Envelope, dlq_topic
from booking.metrics import EMAIL_RETRIES, EMAILS, KAFKA_DLQ, KAFKA_PRODUCED
from booking.notifications import Email
from booking.payments import SagaTopics
from booking.store import EMAIL_DEAD as DEAD
from booking.store import EMAIL_SENDING as SENDING
from booking.store import EMAIL_SENT as SENT
from booking.store import begin_email_attempt as begin_attempt
from booking.store import claim_message, was_processed
from booking.store import due_email_deliveries as due_deliveries
from booking.store import lock_email_delivery as lock_delivery
from booking.store import park_email as park
from booking.store import record_email_failure as record_failure
from booking.store import record_email_sent as record_sent
from booking.store import unlock_email_delivery as unlock_delivery
from workers.consumer import POOL_CLOSE_S, ConsumerWorker, MalformedMessageError
from workers.resources import Provisioned, open_pool
from workers.settings import WorkerSettings
from workers.smtp import (
    SmtpConfig,
    SmtpPermanentError,
    SmtpSender,
    SmtpTransientError,
    build_message,
)

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
RETRY_BATCH = 20  # due emails one retry pass takes (it stops at the first deferral)
RETRY_PASS_BUDGET_S = 10.0  # nor does it start another try after this long (the tick's liveness)

GiveUp = Callable[[asyncpg.Connection, str], Awaitable[None]]


class DeliveryInFlightError(Exception):
    """Another copy is sending this email right now: come back to it later."""

    retriable = True


class UndeliverableError(Exception):
    """The email cannot be delivered (a permanent refusal or no attempts left): to the DLQ."""


class Notifier(ConsumerWorker):
    name = "notifier"

    def __init__(
        self,
        settings: WorkerSettings,
        pool: asyncpg.Pool,
        *,
        topic: str = "",
        group_id: str = "",
        smtp: SmtpConfig | None = None,
        retry_interval_s: float = 1.0,
        **options: Any,
    ) -> None:
        namespace = settings.kafka_namespace
        topic = topic or SagaTopics.for_namespace(namespace).notifications
        group_id = group_id or (f"{self.name}.{namespace}" if namespace else self.name)
        super().__init__(settings, pool, topics=[topic], group_id=group_id, **options)
        self.topic = topic
        self.smtp = smtp or settings.smtp
        self.sender = SmtpSender(self.smtp)
        self.max_sends = settings.notifier_max_attempts
        self.send_backoff_s = settings.notifier_backoff_s
        self.housekeeping_interval_s = retry_interval_s
        # A try counts as under way (the retry pass leaves it) for as long as it can take.
        self.lease_s = self.smtp.timeout_s * 4 + 5.0
        self._failing_until = 0.0  # loop time until which the server counts as failing

    @classmethod
    def provisioned(cls, settings: WorkerSettings, **options: Any) -> Provisioned[asyncpg.Pool]:
        """`options`: those of the constructor (topic, group_id, smtp, ...)."""
        return Provisioned(
            cls,
            lambda: open_pool(settings, max_size=2, close_timeout_s=POOL_CLOSE_S),
            lambda pool: cls(settings, pool, **options),
        )

    async def setup(self) -> None:
        log.info("notifier: sending over SMTP to %s", self.smtp.describe())

    async def teardown(self) -> None:
        await self.sender.aclose()

    async def handle(self, envelope: Envelope) -> None:
        try:
            email = Email.of_envelope(envelope)
        except ValueError as exc:
            raise MalformedMessageError(str(exc)) from None
        if await was_processed(self.pool, self.name, envelope.id):
            EMAILS.labels(email.kind, "duplicate").inc()
            return
        if self._server_failing():
            await self._park(envelope, email)
            return

        async def to_the_dlq(conn: asyncpg.Connection, reason: str) -> None:
            await record_failure(conn, envelope.id, reason, dead=True)
            EMAILS.labels(email.kind, "failed").inc()
            raise UndeliverableError(reason)  # the consumer dead-letters the message

        outcome = await self._deliver(envelope, email, to_the_dlq)
        EMAILS.labels(email.kind, outcome).inc()

    async def housekeeping(self) -> int:
        """The retry pass: due emails, earliest first, until one is deferred again (or its time
        budget is spent)."""
        handled = 0
        if self._server_failing():
            return 0
        loop = asyncio.get_running_loop()
        ends = loop.time() + RETRY_PASS_BUDGET_S
        for body in await due_deliveries(self.pool, RETRY_BATCH):
            if self._server_failing() or loop.time() > ends:
                break
            try:
                envelope = Envelope.decode(orjson.dumps(body))
                email = Email.of_envelope(envelope)
            except ValueError as exc:
                log.error("notifier: a stored notification does not read: %s", exc)
                continue

            async def to_the_dlq(
                conn: asyncpg.Connection, reason: str, envelope: Envelope = envelope
            ) -> None:
                await self._publish_dead_letter(envelope, reason)
                await record_failure(conn, envelope.id, reason, dead=True)

            try:
                outcome = await self._deliver(envelope, email, to_the_dlq)
            except DeliveryInFlightError:
                continue  # another copy has it
            EMAILS.labels(email.kind, outcome).inc()
            handled += 1
        return handled

    def _server_failing(self) -> bool:
        return asyncio.get_running_loop().time() < self._failing_until

    async def _park(self, envelope: Envelope, email: Email) -> None:
        delay = self.send_backoff_s
        async with self.pool.acquire() as conn, conn.transaction():
            await park(
                conn,
                envelope.id,
                kind=email.kind,
                recipient=email.to,
                envelope=_body(envelope),
                retry_in_s=delay,
                reason="parked: the SMTP server was failing",
            )
            await claim_message(conn, self.name, envelope.id)
        EMAILS.labels(email.kind, "deferred").inc()

    async def _deliver(self, envelope: Envelope, email: Email, give_up: GiveUp) -> str:
        """One attempt, holding the email's lock; the outcome label (`sent`, `resent`,
        `duplicate`, `deferred`, `failed`)."""
        async with self.pool.acquire() as conn:
            if not await lock_delivery(conn, envelope.id):
                raise DeliveryInFlightError(f"email {envelope.id} is being sent by another copy")
            try:
                return await self._attempt(conn, envelope, email, give_up)
            finally:
                await unlock_delivery(conn, envelope.id)

    async def _attempt(
        self, conn: asyncpg.Connection, envelope: Envelope, email: Email, give_up: GiveUp
    ) -> str:
        try:
            message = build_message(email, notification_id=envelope.id, sender=self.smtp.sender)
        except SmtpPermanentError as exc:
            await self._give_up(conn, email, str(exc), 0, give_up)
            return "failed"
        attempt = await begin_attempt(
            conn,
            envelope.id,
            kind=email.kind,
            recipient=email.to,
            envelope=_body(envelope),
            lease_s=self.lease_s,
        )
        if attempt.state == SENT:
            await self._finish(conn, envelope)
            return "duplicate"
        if attempt.state == DEAD:
            await give_up(conn, attempt.last_error or "given up on before")
            return "failed"
        if attempt.number > self.max_sends:
            await self._give_up(conn, email, attempt.last_error, attempt.number - 1, give_up)
            return "failed"
        resent = attempt.state == SENDING
        if resent:
            log.warning(
                "notifier: email %s (%s) may have been sent already (a try ended without an "
                "answer); sending it again with the same Message-ID",
                envelope.id,
                email.kind,
            )
        return await self._send(conn, envelope, email, message, attempt.number, resent, give_up)

    async def _send(
        self,
        conn: asyncpg.Connection,
        envelope: Envelope,
        email: Email,
        message: EmailMessage,
        number: int,
        resent: bool,
        give_up: GiveUp,
    ) -> str:
        try:
            await self.sender.send(message)
        except SmtpPermanentError as exc:
            await self._give_up(conn, email, str(exc), number, give_up)
            return "failed"
        except SmtpTransientError as exc:
            if number >= self.max_sends:
                await self._give_up(conn, email, str(exc), number, give_up)
                return "failed"
            delay = min(self.send_backoff_s * 2 ** (number - 1), MAX_BACKOFF_S)
            self._failing_until = asyncio.get_running_loop().time() + self.send_backoff_s
            async with conn.transaction():
                await record_failure(conn, envelope.id, str(exc), dead=False, retry_in_s=delay)
                await claim_message(conn, self.name, envelope.id)
            EMAIL_RETRIES.labels(email.kind).inc()
            log.warning(
                "notifier: email %s (%s) attempt %d failed (%s); next in %.1f s",
                envelope.id,
                email.kind,
                number,
                exc,
                delay,
            )
            return "deferred"
        await self._finish(conn, envelope)
        return "resent" if resent else "sent"

    async def _finish(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        async with conn.transaction():
            await claim_message(conn, self.name, envelope.id)
            await record_sent(conn, envelope.id)

    async def _give_up(
        self, conn: asyncpg.Connection, email: Email, reason: str, attempts: int, give_up: GiveUp
    ) -> None:
        if attempts > 1:
            reason = f"gave up after {attempts} attempts: {reason}"
        log.warning("notifier: email (%s) to %s to the DLQ: %s", email.kind, email.to, reason)
        await give_up(conn, reason)

    async def _publish_dead_letter(self, envelope: Envelope, reason: str) -> None:
        """The retry pass's dead letter, as the consumer writes one (the reason in the headers)."""
        kafka = self.kafka
        if kafka is None:
            raise RuntimeError("notifier: no Kafka producer to dead-letter with")
        target = dlq_topic(self.topic)
        headers = [
            ("dlq-reason", f"{UndeliverableError.__name__}: {reason}"[:2000].encode()),
            ("dlq-consumer", self.name.encode()),
            ("dlq-source", f"email_deliveries/{envelope.id}".encode()),
        ]
        await kafka.producer.send_and_wait(
            target, value=envelope.encode(), key=envelope.key.encode(), headers=headers
        )
        KAFKA_PRODUCED.labels(target).inc()
        KAFKA_DLQ.labels(self.topic).inc()


def _body(envelope: Envelope) -> dict[str, Any]:
    return {
        "id": envelope.id,
        "type": envelope.type,
        "occurred_at": envelope.occurred_at,
        "key": envelope.key,
        "data": envelope.data,
    }
