"""Maps every exception to application/problem+json. One handler for the whole BookingError tree;
one for a dependency that cannot be reached (503 with Retry-After, never 500)."""

from __future__ import annotations

import logging
import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from booking.errors import (
    DEPENDENCY_ERRORS,
    BookingError,
    ServiceUnavailableError,
    unavailable_dependency,
)
from common.problems import problem_response

log = logging.getLogger(__name__)

_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
# How long a client should wait before retrying while Redis or PostgreSQL is unreachable.
DEPENDENCY_RETRY_AFTER_S = 1
# One warning per dependency per this many seconds: an outage must not flood the log.
_LOG_EVERY_S = 10.0
_last_logged: dict[str, float] = {}


async def booking_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BookingError)
    return problem_response(exc.code, exc.detail, errors=exc.errors, headers=exc.headers)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "invalid_request")
    return problem_response(code, exc.detail if isinstance(exc.detail, str) else None)


def _unavailable(dependency: str, exc: BaseException) -> Response:
    now = time.monotonic()
    if now - _last_logged.get(dependency, -_LOG_EVERY_S) >= _LOG_EVERY_S:
        _last_logged[dependency] = now
        log.warning("%s unreachable, answering 503: %r", dependency, exc)
    error = ServiceUnavailableError(
        f"{dependency} is unreachable; try again shortly", retry_after_s=DEPENDENCY_RETRY_AFTER_S
    )
    return problem_response(error.code, error.detail, headers=error.headers)


async def dependency_error_handler(request: Request, exc: Exception) -> Response:
    dependency = unavailable_dependency(exc)
    if dependency is None:  # e.g. an asyncpg InterfaceError that is a bug, not an outage
        return await unexpected_error_handler(request, exc)
    return _unavailable(dependency, exc)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    # Starlette re-raises an unhandled error after this answer, and uvicorn then drops the
    # connection: say so, or a keep-alive client (the gateway's pool) sends its next, unrelated
    # request into a connection about to close and that request fails too.
    dependency = unavailable_dependency(exc)  # wrapped in another exception on its way up
    if dependency is not None:
        response = _unavailable(dependency, exc)
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        response = problem_response("internal_error", "unexpected error; it has been logged")
    response.headers["Connection"] = "close"
    return response


EXCEPTION_HANDLERS = {
    BookingError: booking_error_handler,
    HTTPException: http_error_handler,
    **dict.fromkeys(DEPENDENCY_ERRORS, dependency_error_handler),
    Exception: unexpected_error_handler,
}
