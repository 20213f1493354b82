"""Payments and provider events in PostgreSQL (call the writers inside the caller's transaction).

The unique constraints carry the exactly-once rules: one payment per (user, Idempotency-Key),
one running-or-paid payment per booking, one row per provider event id.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from booking.domain import rfc3339
from booking.store import Conn

PENDING = "PENDING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
REFUNDED = "REFUNDED"

_SELECT = """SELECT p.*, b.event_id FROM payments p JOIN bookings b USING (booking_id)"""


@dataclass(frozen=True, slots=True)
class Payment:
    payment_id: str
    booking_id: str
    event_id: str
    user_id: str
    amount_minor: int
    currency: str
    provider: str
    provider_ref: str | None
    status: str
    created_at: datetime
    updated_at: datetime

    def body(self) -> dict[str, Any]:
        return {
            "payment_id": self.payment_id,
            "booking_id": self.booking_id,
            "status": self.status,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "provider": self.provider,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class KeyedPayment:
    payment: Payment
    fingerprint: str
    first_response: dict[str, Any]
    test_outcome: str | None


def _payment(row: asyncpg.Record) -> Payment:
    return Payment(
        payment_id=str(row["payment_id"]),
        booking_id=str(row["booking_id"]),
        event_id=str(row["event_id"]),
        user_id=str(row["user_id"]),
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        provider=row["provider"],
        provider_ref=row["provider_ref"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def insert_payment(
    conn: Conn,
    payment: Payment,
    *,
    idempotency_key: str,
    fingerprint: str,
    test_outcome: str | None,
    first_response: dict[str, Any],
) -> None:
    """Raises asyncpg.UniqueViolationError naming the constraint that refused it."""
    await conn.execute(
        """INSERT INTO payments (payment_id, booking_id, user_id, amount_minor, currency,
               provider, status, test_outcome, idempotency_key, request_fingerprint,
               first_response, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)""",
        uuid.UUID(payment.payment_id),
        uuid.UUID(payment.booking_id),
        uuid.UUID(payment.user_id),
        payment.amount_minor,
        payment.currency,
        payment.provider,
        payment.status,
        test_outcome,
        idempotency_key,
        fingerprint,
        first_response,
        payment.created_at,
    )


async def find_payment(conn: Conn, payment_id: str, *, lock: bool = False) -> Payment | None:
    key = _uuid(payment_id)
    if key is None:
        return None
    suffix = " FOR UPDATE OF p" if lock else ""
    row = await conn.fetchrow(f"{_SELECT} WHERE p.payment_id = $1{suffix}", key)
    return None if row is None else _payment(row)


async def find_by_provider_ref(conn: Conn, provider: str, provider_ref: str) -> Payment | None:
    row = await conn.fetchrow(
        f"{_SELECT} WHERE p.provider = $1 AND p.provider_ref = $2", provider, provider_ref
    )
    return None if row is None else _payment(row)


async def find_by_idempotency_key(conn: Conn, user_id: str, key: str) -> KeyedPayment | None:
    row = await conn.fetchrow(
        f"{_SELECT} WHERE p.user_id = $1 AND p.idempotency_key = $2", uuid.UUID(user_id), key
    )
    if row is None:
        return None
    return KeyedPayment(
        _payment(row), row["request_fingerprint"], row["first_response"], row["test_outcome"]
    )


async def paid_payment_of(conn: Conn, booking_id: str) -> Payment | None:
    """The payment that took the money for this booking (SUCCEEDED), if any."""
    row = await conn.fetchrow(
        f"{_SELECT} WHERE p.booking_id = $1 AND p.status = 'SUCCEEDED'", uuid.UUID(booking_id)
    )
    return None if row is None else _payment(row)


async def set_provider_ref(
    conn: Conn, payment_id: str, provider_ref: str, *, now: datetime
) -> None:
    """The provider accepted the payment under `provider_ref` (its answer to our create)."""
    await conn.execute(
        """UPDATE payments SET provider_ref = $2, opened_at = coalesce(opened_at, $3)
           WHERE payment_id = $1""",
        uuid.UUID(payment_id),
        provider_ref,
        now,
    )


async def adopt_provider_ref(
    conn: Conn, payment_id: str, provider_ref: str, *, now: datetime
) -> None:
    """Stores the PaymentIntent a verified provider answer names, when we never learnt it
    (the answer to our create was lost)."""
    await conn.execute(
        """UPDATE payments SET provider_ref = $2, opened_at = coalesce(opened_at, $3)
           WHERE payment_id = $1 AND provider_ref IS NULL""",
        uuid.UUID(payment_id),
        provider_ref,
        now,
    )


async def set_status(
    conn: Conn, payment_id: str, status: str, *, now: datetime, from_statuses: Sequence[str]
) -> bool:
    """Moves the payment to `status` if it is in one of `from_statuses`; False otherwise."""
    changed = await conn.fetchval(
        """UPDATE payments SET status = $2, updated_at = $3
           WHERE payment_id = $1 AND status = ANY($4::text[]) RETURNING true""",
        uuid.UUID(payment_id),
        status,
        now,
        list(from_statuses),
    )
    return bool(changed)


async def record_provider_event(
    conn: Conn,
    *,
    provider: str,
    event_id: str,
    event_type: str,
    outcome: str,
    payment_id: str | None,
    payload: Any,
) -> bool:
    """True the first time this provider event id is seen; False for a redelivery."""
    inserted = await conn.fetchval(
        """INSERT INTO payment_events (provider, event_id, payment_id, type, outcome, payload)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true""",
        provider,
        event_id,
        uuid.UUID(payment_id) if payment_id else None,
        event_type,
        outcome,
        payload,
    )
    return bool(inserted)


@dataclass(frozen=True, slots=True)
class UnansweredPayment:
    payment: Payment
    recorded_outcome: str | None  # `succeeded` or `failed` when a webhook said so
    opened_at: datetime | None  # when the provider accepted it (None: it never answered us)
    hold_deadline: datetime  # the booking's


async def unanswered_payments(
    conn: Conn, *, before: datetime, limit: int
) -> list[UnansweredPayment]:
    """PENDING payments opened before `before` that no saga has taken up: no webhook came, or
    the message a recorded webhook became was lost. A recorded success wins over a failure."""
    rows = await conn.fetch(
        """SELECT p.*, b.event_id, b.expires_at, e.outcome AS recorded_outcome
            FROM payments p JOIN bookings b USING (booking_id)
            LEFT JOIN LATERAL (
                SELECT outcome FROM payment_events
                WHERE payment_id = p.payment_id AND outcome IN ('succeeded', 'failed')
                ORDER BY outcome = 'succeeded' DESC LIMIT 1) e ON true
            WHERE p.status = 'PENDING' AND p.created_at < $1
              AND NOT EXISTS (SELECT 1 FROM sagas s WHERE s.payment_id = p.payment_id)
            ORDER BY p.created_at LIMIT $2""",
        before,
        limit,
    )
    return [
        UnansweredPayment(
            _payment(row), row["recorded_outcome"], row["opened_at"], row["expires_at"]
        )
        for row in rows
    ]
