"""The domain error tree. Each class carries its API code (see common.problems.CODES),
and whether a retry may succeed. One exception handler renders them all as problem+json."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class BookingError(Exception):
    code: ClassVar[str] = "internal_error"
    retriable: ClassVar[bool] = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.code)
        self.detail = detail
        self.errors = errors
        self.headers = headers


class UnauthorizedError(BookingError):
    code = "unauthorized"


class ForbiddenError(BookingError):
    code = "forbidden"


class NotFoundError(BookingError):
    code = "not_found"


class InvalidRequestError(BookingError):
    code = "invalid_request"

    @classmethod
    def field(cls, field: str, message: str) -> InvalidRequestError:
        return cls(f"{field}: {message}", errors=[{"field": field, "message": message}])


class IdempotencyKeyRequiredError(BookingError):
    code = "idempotency_key_required"


class IdempotencyKeyReusedError(BookingError):
    code = "idempotency_key_reused"


class IdempotencyInFlightError(BookingError):
    code = "idempotency_in_flight"
    retriable = True


class EmailTakenError(BookingError):
    code = "email_taken"


class InvalidCredentialsError(BookingError):
    code = "invalid_credentials"


class SoldOutError(BookingError):
    code = "sold_out"


class SeatUnavailableError(BookingError):
    code = "seat_unavailable"


class UserLimitExceededError(BookingError):
    code = "user_limit_exceeded"


class SaleNotOpenError(BookingError):
    code = "sale_not_open"


class QueuePassRequiredError(BookingError):
    code = "queue_pass_required"


class QueuePassInvalidError(BookingError):
    code = "queue_pass_invalid"


class InvalidStateError(BookingError):
    code = "invalid_state"


class ReservationExpiredError(BookingError):
    code = "reservation_expired"


class ServiceUnavailableError(BookingError):
    code = "service_unavailable"
    retriable = True

    def __init__(self, detail: str | None = None, *, retry_after_s: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})
