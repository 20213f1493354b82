"""The domain error tree. Each class carries its API code (see common.problems.CODES),
and whether a retry may succeed. One exception handler renders them all as problem+json."""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import asyncpg
from redis import exceptions as redis_exceptions


class BookingError(Exception):
    code: ClassVar[str] = "internal_error"
    retriable: ClassVar[bool] = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.code)
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.extra = extra  # fields of the problem body besides the standard ones


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


class UnsupportedMediaTypeError(BookingError):
    code = "unsupported_media_type"


class PayloadTooLargeError(BookingError):
    code = "payload_too_large"


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


class TicketInvalidError(BookingError):
    code = "ticket_invalid"


class AlreadyCheckedInError(BookingError):
    code = "already_checked_in"


class TicketVoidError(BookingError):
    code = "ticket_void"


class NotSoldOutError(BookingError):
    code = "not_sold_out"


class AlreadyWaitlistedError(BookingError):
    code = "already_waitlisted"


class WaitlistClosedError(BookingError):
    code = "waitlist_closed"


class OfferInvalidError(BookingError):
    code = "waitlist_offer_invalid"


class OfferExpiredError(BookingError):
    code = "waitlist_offer_expired"


class OfferMismatchError(BookingError):
    code = "waitlist_offer_mismatch"


class ServiceUnavailableError(BookingError):
    code = "service_unavailable"
    retriable = True

    def __init__(self, detail: str | None = None, *, retry_after_s: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


# --- a dependency that cannot be reached ------------------------------------------------------
# Redis or PostgreSQL being down (or restarting, or loading its data) is not a bug: every
# endpoint answers 503 service_unavailable with Retry-After until it is back (booking/problems.py).

_REDIS_DOWN: tuple[type[BaseException], ...] = (
    redis_exceptions.ConnectionError,  # also BusyLoadingError: Redis loading its AOF
    redis_exceptions.TimeoutError,
    # A Redis Cluster in the middle of a failover or a resharding, once the client's own
    # retries ran out (common/script_batch.py): the slot is being served again within seconds.
    redis_exceptions.ClusterDownError,
    redis_exceptions.TryAgainError,
    redis_exceptions.MovedError,
    redis_exceptions.AskError,
    redis_exceptions.SlotNotCoveredError,
    redis_exceptions.RedisClusterException,
)
_POSTGRES_DOWN: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # also ConnectionDoesNotExistError
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)
# A socket to a dependency: refused, reset, timed out, name not resolved, host unreachable. Other
# OSErrors (a missing file, say) are bugs and stay 500.
_SOCKET_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, socket.gaierror)
_UNREACHABLE_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN})
# Exception classes whose handler asks `unavailable_dependency` (booking/problems.py).
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (
    *_REDIS_DOWN,
    *_POSTGRES_DOWN,
    asyncpg.InterfaceError,
    OSError,  # only the socket errors above count; the handler renders the rest as 500
)


def unavailable_dependency(exc: BaseException) -> str | None:
    """'redis' or 'postgres' (or 'a dependency' for a bare socket error) when `exc`, or what
    caused it, says a dependency cannot be reached right now; None otherwise."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, _REDIS_DOWN):
            return "redis"
        if isinstance(current, _POSTGRES_DOWN):
            return "postgres"
        if isinstance(current, asyncpg.InterfaceError) and _about_a_lost_connection(current):
            return "postgres"
        if isinstance(current, _SOCKET_ERRORS) or (
            isinstance(current, OSError) and current.errno in _UNREACHABLE_ERRNOS
        ):
            return "a dependency"
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def _about_a_lost_connection(exc: asyncpg.InterfaceError) -> bool:
    text = str(exc).lower()
    lost = "connection" in text and "lost" in text
    return lost or "closed" in text or "pool is closing" in text
