"""Notifications to buyers. The default notifier writes each email to the log and to the outbox
(topic `booking-rush.notifications`), in the caller's transaction, so a mail sender downstream
gets each one exactly once; a real email provider would plug in behind the same interface."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import asyncpg

from booking.messaging import TOPIC_NOTIFICATIONS, Envelope, add_to_outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    text: str
    key: str  # what it is about (a booking id): orders the messages of one booking


class Notifier(Protocol):
    async def send(self, conn: asyncpg.Connection, email: Email, *, now: datetime) -> None:
        """Called inside the transaction that records the step, so it happens once."""
        ...


class OutboxNotifier:
    def __init__(self, topic: str = TOPIC_NOTIFICATIONS) -> None:
        self.topic = topic

    async def send(self, conn: asyncpg.Connection, email: Email, *, now: datetime) -> None:
        envelope = Envelope.new(
            "email.send",
            email.key,
            {"to": email.to, "subject": email.subject, "text": email.text},
            now,
        )
        await add_to_outbox(conn, self.topic, envelope)
        log.info("email to %s: %s", email.to, email.subject)


def confirmation_email(
    to: str, *, booking_id: str, quantity: int, amount_minor: int, currency: str
) -> Email:
    amount = f"{amount_minor / 100:.2f} {currency}"
    return Email(
        to=to,
        subject=f"Your booking {booking_id[:8]} is confirmed",
        text=f"{quantity} ticket(s) confirmed for {amount}. Booking id: {booking_id}.",
        key=booking_id,
    )
