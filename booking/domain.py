"""Pure domain values: booking statuses, the booking record, request fingerprints, time in ms.
No I/O and no drivers here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from booking import errors

__all__ = [
    "CANCELLED",
    "CONFIRMED",
    "EXPIRED",
    "MAX_IDEMPOTENCY_KEY",
    "MAX_TICKETS_PER_REQUEST",
    "REFUNDED",
    "RESERVED",
    "Booking",
    "fingerprint",
    "from_ms",
    "require_idempotency_key",
    "rfc3339",
    "rfc3339_of_ms",
    "to_ms",
]

RESERVED = "RESERVED"
CONFIRMED = "CONFIRMED"
CANCELLED = "CANCELLED"
EXPIRED = "EXPIRED"
REFUNDED = "REFUNDED"

# The widest request we take: per-user limits are at most 100 anyway.
MAX_TICKETS_PER_REQUEST = 100


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _rfc3339(moment: datetime) -> str:
    """The one timestamp format of the API, the feed and the messages: UTC, milliseconds, Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else _rfc3339(moment)


def rfc3339_of_ms(ms: int) -> str:
    return _rfc3339(from_ms(ms))


# An Idempotency-Key is the client's, stored with the hold or payment it keyed; bounded so a
# client cannot make us store (and index) kilobytes per request.
MAX_IDEMPOTENCY_KEY = 128


def require_idempotency_key(key: str | None) -> str:
    """The request's Idempotency-Key, or the error that says what is wrong with it."""
    if not key:
        raise errors.IdempotencyKeyRequiredError("send an Idempotency-Key header")
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise errors.InvalidRequestError.field(
            "Idempotency-Key", f"at most {MAX_IDEMPOTENCY_KEY} characters"
        )
    return key


def fingerprint(body: dict[str, Any]) -> str:
    """Same request body -> same fingerprint (key order and whitespace do not matter)."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Booking:
    booking_id: str
    event_id: str
    zone_id: str
    user_id: str
    quantity: int
    seats: tuple[str, ...] | None
    status: str
    amount_minor: int
    currency: str
    created_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None = None
    payment_id: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "booking_id": self.booking_id,
            "event_id": self.event_id,
            "zone_id": self.zone_id,
            "quantity": self.quantity,
            "status": self.status,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "created_at": rfc3339(self.created_at),
            "expires_at": rfc3339(self.expires_at),
        }
        if self.seats is not None:
            out["seats"] = list(self.seats)
        if self.confirmed_at is not None:
            out["confirmed_at"] = rfc3339(self.confirmed_at)
        if self.payment_id is not None:
            out["payment_id"] = self.payment_id
        return out
