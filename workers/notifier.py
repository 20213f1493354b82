"""notifier: sends the emails of the notifications topic over SMTP, each one once.

Per message: skipped if processed already; else one attempt is counted and marked `sending` in
`email_deliveries` (committed), the email goes to the SMTP server with a Message-ID derived from
the notification id (`<id@booking-rush>`), and the 250 is recorded: the message processed and
the delivery `sent`, in one transaction. A 4xx answer, a refused connection or a timeout is
tried again with exponential backoff (`NOTIFIER_BACKOFF_S` doubling, `NOTIFIER_MAX_ATTEMPTS` in
all, counted across restarts); a 5xx answer, an address that is not one, or the attempts running
out sends the message to `<topic>.dlq` with the reason.

The crash window: a notifier killed after the server's 250 and before its commit leaves the
delivery `sending`; the redelivered message sends the email again, with the same Message-ID (a
recipient's mail system may drop it as a duplicate; the sink under `make run` overwrites the
same file). It is counted as `resent` and logged, never lost. Two copies never send one email
at once: a try holds a PostgreSQL advisory lock on it, which dies with the try's connection.
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from typing import Any, NoReturn

import asyncpg

from booking.messaging import Envelope
from booking.metrics import EMAIL_RETRIES, EMAILS
from booking.notifications import Email
from booking.payments import SagaTopics
from booking.store import EMAIL_DEAD as DEAD
from booking.store import EMAIL_SENDING as SENDING
from booking.store import EMAIL_SENT as SENT
from booking.store import begin_email_attempt as begin_attempt
from booking.store import claim_message, was_processed
from booking.store import lock_email_delivery as lock_delivery
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
        **options: Any,
    ) -> None:
        namespace = settings.kafka_namespace
        topic = topic or SagaTopics.for_namespace(namespace).notifications
        group_id = group_id or (f"{self.name}.{namespace}" if namespace else self.name)
        super().__init__(settings, pool, topics=[topic], group_id=group_id, **options)
        self.smtp = smtp or settings.smtp
        self.sender = SmtpSender(self.smtp)
        self.max_sends = settings.notifier_max_attempts
        self.send_backoff_s = settings.notifier_backoff_s

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
        try:
            message = build_message(email, notification_id=envelope.id, sender=self.smtp.sender)
        except SmtpPermanentError as exc:
            await self._give_up(self.pool, envelope, email, str(exc), 0)
        while True:
            if await self._try_once(envelope, email, message):
                return

    async def _try_once(self, envelope: Envelope, email: Email, message: EmailMessage) -> bool:
        """One SMTP attempt; True once the email is sent (or was before), False to try again
        after the backoff (slept here, holding nothing)."""
        async with self.pool.acquire() as conn:
            if not await lock_delivery(conn, envelope.id):
                raise DeliveryInFlightError(f"email {envelope.id} is being sent by another copy")
            try:
                outcome = await self._attempt(conn, envelope, email, message)
            finally:
                await unlock_delivery(conn, envelope.id)
        if isinstance(outcome, float):
            await asyncio.sleep(outcome)
            return False
        EMAILS.labels(email.kind, outcome).inc()
        return True

    async def _attempt(
        self, conn: asyncpg.Connection, envelope: Envelope, email: Email, message: EmailMessage
    ) -> str | float:
        """The outcome label once done, or the delay before the next attempt."""
        attempt = await begin_attempt(conn, envelope.id, kind=email.kind, recipient=email.to)
        if attempt.state == SENT:
            await self._finish(conn, envelope)
            return "duplicate"
        if attempt.state == DEAD:
            raise UndeliverableError(attempt.last_error or "given up on before")
        if attempt.number > self.max_sends:
            await self._give_up(conn, envelope, email, attempt.last_error, attempt.number - 1)
        resent = attempt.state == SENDING
        if resent:
            log.warning(
                "notifier: email %s (%s) may have been sent already (a try ended without an "
                "answer); sending it again with the same Message-ID",
                envelope.id,
                email.kind,
            )
        try:
            await self.sender.send(message)
        except SmtpPermanentError as exc:
            await self._give_up(conn, envelope, email, str(exc), attempt.number)
        except SmtpTransientError as exc:
            if attempt.number >= self.max_sends:
                await self._give_up(conn, envelope, email, str(exc), attempt.number)
            await record_failure(conn, envelope.id, str(exc), dead=False)
            EMAIL_RETRIES.labels(email.kind).inc()
            delay = min(self.send_backoff_s * 2 ** (attempt.number - 1), MAX_BACKOFF_S)
            log.warning(
                "notifier: email %s (%s) attempt %d failed (%s); next in %.1f s",
                envelope.id,
                email.kind,
                attempt.number,
                exc,
                delay,
            )
            return delay
        await self._finish(conn, envelope)
        return "resent" if resent else "sent"

    async def _finish(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        async with conn.transaction():
            await claim_message(conn, self.name, envelope.id)
            await record_sent(conn, envelope.id)

    async def _give_up(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        envelope: Envelope,
        email: Email,
        reason: str,
        attempts: int,
    ) -> NoReturn:
        """Records the email as undeliverable and raises UndeliverableError (the consumer then
        sends the message to the DLQ with `reason`)."""
        if attempts > 1:
            reason = f"gave up after {attempts} attempts: {reason}"
        await record_failure(conn, envelope.id, reason, dead=True)
        EMAILS.labels(email.kind, "failed").inc()
        log.warning("notifier: email %s (%s) to the DLQ: %s", envelope.id, email.kind, reason)
        raise UndeliverableError(reason)
