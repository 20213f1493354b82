"""What a script's `{0, CODE[, detail]}` answer means: one table from Lua code to domain error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from booking import errors


class EventNotLoadedError(errors.ServiceUnavailableError):
    """Redis has no inventory for the event: unknown, unpublished, or lost (rebuild it)."""


class QueueNotLoadedError(errors.ServiceUnavailableError):
    """Redis has no queue for the event yet (or lost it): set it up from PostgreSQL."""


def _sold_out(detail: str | None) -> errors.BookingError:
    left = int(detail or 0)
    return errors.SoldOutError("sold out" if left == 0 else f"only {left} left")


# Why a pass was refused, in the words of the answer's `detail` (the code stays one).
_PASS_INVALID = {
    "unknown": "The queue pass is unknown: never issued, already used for a hold, or lapsed",
    "not_ours": "The queue pass is not one this service issued",
    "other_event": "The queue pass is for another event",
    "other_user": "The queue pass was issued to another user",
    "expired": "The queue pass has expired: join the queue again",
}


ERRORS: dict[str, Callable[[str | None], errors.BookingError]] = {
    "SOLD_OUT": _sold_out,
    "SEAT_UNAVAILABLE": lambda d: errors.SeatUnavailableError(
        f"seat {d} is not available" if d else None
    ),
    "USER_LIMIT": lambda d: errors.UserLimitExceededError(
        f"you may take {d} more ticket(s) for this event" if d is not None else None
    ),
    "SALE_NOT_OPEN": lambda d: errors.SaleNotOpenError(),
    "UNKNOWN_ZONE": lambda d: errors.InvalidRequestError.field("zone_id", "unknown zone"),
    "UNKNOWN_SEAT": lambda d: errors.InvalidRequestError.field("seats", f"unknown seat {d}"),
    "INVALID_SEATS": lambda d: errors.InvalidRequestError.field("seats", d or "invalid seats"),
    "INVALID_QUANTITY": lambda d: errors.InvalidRequestError.field(
        "quantity", "must be an integer >= 1"
    ),
    "PASS_REQUIRED": lambda d: errors.QueuePassRequiredError(),
    "PASS_INVALID": lambda d: errors.QueuePassInvalidError(_PASS_INVALID.get(d or "")),
    "IDEMPOTENCY_KEY_REUSED": lambda d: errors.IdempotencyKeyReusedError(),
    "IDEMPOTENCY_IN_FLIGHT": lambda d: errors.IdempotencyInFlightError(),
    "RESERVATION_EXPIRED": lambda d: errors.ReservationExpiredError(),
    "INVALID_STATE": lambda d: errors.InvalidStateError(d),
    "NOT_FOUND": lambda d: errors.NotFoundError("booking not found"),
    "EVENT_NOT_LOADED": lambda d: EventNotLoadedError("event inventory not loaded"),
    "BOOKING_EXISTS": lambda d: errors.InvalidStateError("booking id already used"),
    "INVALID_REASON": lambda d: errors.InvalidStateError("invalid release reason"),
    "INVALID_DOCUMENT": lambda d: errors.InvalidRequestError(f"inventory document: {d}"),
    "QUEUE_NOT_LOADED": lambda d: QueueNotLoadedError("queue not loaded"),
    "QUEUE_CLOSED": lambda d: errors.InvalidStateError("the queue of this event is closed"),
    "OVERSOLD": lambda d: errors.InvalidStateError(f"inventory would be oversold: {d}"),
    "OFFER_INVALID": lambda d: errors.OfferInvalidError(
        "unknown offer, another buyer's, or already used, lapsed or withdrawn"
    ),
    "OFFER_EXPIRED": lambda d: errors.OfferExpiredError(),
    "OFFER_MISMATCH": lambda d: errors.OfferMismatchError(f"the {d} differ from the offer's"),
}


def as_text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def check_reply(reply: list[Any]) -> list[Any]:
    """The reply of a successful script; raises the mapped domain error otherwise."""
    if int(reply[0]) == 1:
        return reply
    code = as_text(reply[1])
    detail = as_text(reply[2]) if len(reply) > 2 else None
    factory = ERRORS.get(code)
    if factory is None:
        raise errors.BookingError(f"script error {code}")
    raise factory(detail)
