"""Kafka topics, the JSON envelope every message carries, and the outbox that publishes them
after the transaction that made them true."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from booking.store import messages
from common.tracing import current_headers

TOPIC_USERS = "booking-rush.users"
TOPIC_BOOKINGS = "booking-rush.bookings"
TOPIC_PAYMENTS = "booking-rush.payments"
TOPIC_SAGA = "booking-rush.saga"
TOPIC_SAGA_REPLIES = "booking-rush.saga.replies"
TOPIC_NOTIFICATIONS = "booking-rush.notifications"


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


@dataclass(frozen=True)
class Envelope:
    id: str
    type: str
    occurred_at: str
    key: str
    data: dict[str, Any]

    @classmethod
    def new(cls, type_: str, key: str, data: dict[str, Any], now: datetime) -> Envelope:
        return cls(str(uuid.uuid4()), type_, now.isoformat(), key, data)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "type": self.type,
                "occurred_at": self.occurred_at,
                "key": self.key,
                "data": self.data,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> Envelope:
        """Raises ValueError for anything that is not a well-formed envelope."""
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ValueError("envelope is not an object")
        missing = [k for k in ("id", "type", "occurred_at", "key", "data") if k not in body]
        if missing:
            raise ValueError(f"envelope lacks {', '.join(missing)}")
        if not isinstance(body["data"], dict):
            raise ValueError("envelope data is not an object")
        return cls(
            str(body["id"]),
            str(body["type"]),
            str(body["occurred_at"]),
            str(body["key"]),
            body["data"],
        )


def booking_status_envelope(
    *, booking_id: str, event_id: str, zone_id: str, quantity: int, status: str, now: datetime
) -> Envelope:
    """`booking.<status>` on the bookings topic: the one shape of a booking's status change."""
    return Envelope.new(
        f"booking.{status.lower()}",
        booking_id,
        {
            "booking_id": booking_id,
            "event_id": event_id,
            "zone_id": zone_id,
            "quantity": quantity,
            "status": status,
        },
        now,
    )


async def add_to_outbox(
    conn: asyncpg.Connection | asyncpg.Pool,
    topic: str,
    envelope: Envelope,
    headers: dict[str, str] | None = None,
) -> None:
    """Call inside the transaction of the state change the message announces.

    The active trace context (when tracing is on) travels in the headers, so the consumers'
    spans join the request's trace."""
    traced = current_headers()
    if traced:
        headers = {**traced, **(headers or {})}
    await messages.insert_outbox(
        conn,
        message_id=envelope.id,
        topic=topic,
        key=envelope.key,
        payload=orjson.loads(envelope.encode()),
        headers=headers or {},
    )
