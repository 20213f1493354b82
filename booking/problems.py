"""Maps every exception to application/problem+json. One handler for the whole BookingError tree."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from booking.errors import BookingError
from common.problems import problem_response

log = logging.getLogger(__name__)

_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


async def booking_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BookingError)
    return problem_response(exc.code, exc.detail, errors=exc.errors, headers=exc.headers)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "invalid_request")
    return problem_response(code, exc.detail if isinstance(exc.detail, str) else None)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response("internal_error", "unexpected error; it has been logged")


EXCEPTION_HANDLERS = {
    BookingError: booking_error_handler,
    HTTPException: http_error_handler,
    Exception: unexpected_error_handler,
}
