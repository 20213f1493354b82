"""Maps every exception to application/problem+json. One handler for the whole BookingError tree;
one for a dependency that cannot be reached (503 with Retry-After, never 500)."""

from __future__ import annotations

import logging
import time

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

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
    return problem_response(
        exc.code, exc.detail, errors=exc.errors, headers=exc.headers, extra=exc.extra
    )


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> set[str]:
    """Every method some route serves at this path (Starlette's own 405 names only the first
    route that matched the path, and GET and POST /events are two routes)."""
    methods: set[str] = set()
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            methods |= allowed_methods(route.routes, {**scope, **child_scope})
        elif isinstance(route, Route) and route.methods:
            methods |= route.methods
    return methods


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "invalid_request")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # From the top: the scope at hand is the one the Mount made for its inner routes.
        scope = {"type": "http", "path": request.scope["path"], "root_path": "", "method": "GET"}
        methods = allowed_methods(request.app.router.routes, scope)
        headers["Allow"] = ", ".join(sorted(methods))
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem_response(code, detail, headers=headers or None)


# Not in the problem table: nobody reads it. Like nginx's 499, it tells the request metrics
# that the client went away before it had sent its whole request.
CLIENT_CLOSED_REQUEST = 499


async def client_disconnect_handler(request: Request, exc: Exception) -> Response:
    log.debug("client went away during %s %s", request.method, request.url.path)
    return Response(status_code=CLIENT_CLOSED_REQUEST)


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
    # Logged here, once: the request middleware (common/asgi.py), outside the layer calling this,
    # gives the line its request id and keeps the re-raised error from the server. The connection
    # closes after an unexpected error; the header makes uvicorn close it after this answer and
    # tells a keep-alive client (the gateway's pool) not to send its next request into it.
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
    ClientDisconnect: client_disconnect_handler,
    **dict.fromkeys(DEPENDENCY_ERRORS, dependency_error_handler),
    Exception: unexpected_error_handler,
}
