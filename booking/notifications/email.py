"""One email to one buyer, and the outbox notifier that hands it to the mail sender.

An email carries its `kind` (one of `templates.KINDS`, or `message` for a hand-written one), the
structured `data` it was rendered from, and its rendered subject, text and HTML. The
`OutboxNotifier` writes it as an `email.send` envelope to the notifications topic, in the
caller's transaction, so it is sent once the step that caused it is committed, and only then;
the notifier worker (`workers/notifier.py`) delivers it over SMTP.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from booking.messaging import TOPIC_NOTIFICATIONS, Envelope, add_to_outbox

log = logging.getLogger(__name__)

EMAIL_SEND = "email.send"


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    text: str
    key: str  # what it is about (a booking id): orders the messages of one booking
    kind: str = "message"
    data: Mapping[str, Any] = field(default_factory=dict)
    html: str = ""

    def payload(self) -> dict[str, Any]:
        return {
            "to": self.to,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "kind": self.kind,
            "data": dict(self.data),
        }

    @classmethod
    def of_envelope(cls, envelope: Envelope) -> Email:
        """Raises ValueError when the envelope is not an email (or lacks its recipient)."""
        if envelope.type != EMAIL_SEND:
            raise ValueError(f"not an email: {envelope.type!r}")
        body = envelope.data
        for name in ("to", "subject", "text"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise ValueError(f"email lacks its {name}")
        data = body.get("data")
        return cls(
            to=body["to"],
            subject=body["subject"],
            text=body["text"],
            key=envelope.key,
            kind=str(body.get("kind") or "message"),
            data=data if isinstance(data, dict) else {},
            html=str(body.get("html") or ""),
        )


class Notifier(Protocol):
    async def send(self, conn: asyncpg.Connection, email: Email, *, now: datetime) -> None:
        """Called inside the transaction that records the step, so it happens once."""
        ...


class OutboxNotifier:
    def __init__(self, topic: str = TOPIC_NOTIFICATIONS) -> None:
        self.topic = topic

    async def send(self, conn: asyncpg.Connection, email: Email, *, now: datetime) -> None:
        envelope = Envelope.new(EMAIL_SEND, email.key, email.payload(), now)
        await add_to_outbox(conn, self.topic, envelope)
        log.info("email (%s) to %s: %s", email.kind, email.to, email.subject)
