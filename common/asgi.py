"""The request middleware of both services: request id, request metrics and (when tracing is on)
the request span. Plain ASGI with one `send` wrapper (BaseHTTPMiddleware breaks context
variables and costs a task per request; this runs on every request of a drop).

Each service installs it outside Starlette's error layer, so a 500 carries the request id, is
counted and traced, and the error handler's log line names the request. That layer answers,
calls the handler (which logs the error) and then re-raises for the server to log; the error
stops here instead, or uvicorn would log its traceback a second time.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager

from opentelemetry.trace import Span
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common import tracing
from common.logs import request_id_var
from common.loop_watch import answered, in_flight

REQUEST_ID_HEADER = b"x-request-id"
REQUEST_ID_SCOPE_KEY = "booking_rush.request_id"
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")
_ANSWER_STARTS = frozenset({"http.response.start", "websocket.accept"})

# The label of a request in the metrics and on its span: a route template, never an id.
RouteOf = Callable[[Scope], str]
# Counts and times one HTTP request: route, method, status, seconds.
ObserveRequest = Callable[[str, str, int, float], None]


def random_request_id() -> bytes:
    return uuid.uuid4().hex.encode()


def incoming_request_id(scope: Scope, fresh: Callable[[], bytes] = random_request_id) -> bytes:
    """The client's X-Request-ID if it is sane (<= 128 of [A-Za-z0-9._-]), else `fresh()`."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            if _SANE_REQUEST_ID.fullmatch(value):
                return bytes(value)
            break
    return fresh()


class RequestMiddleware:
    """Picks the request id (on the scope as `REQUEST_ID_SCOPE_KEY`, in the logs' context,
    echoed on every answer), and for HTTP requests runs the span and counts and times them."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        route_of: RouteOf,
        observe: ObserveRequest,
        fresh_id: Callable[[], bytes] = random_request_id,
    ) -> None:
        self.app = app
        self.service = service
        self.route_of = route_of
        self.observe = observe
        self.fresh_id = fresh_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope, self.fresh_id)
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        token = request_id_var.set(request_id.decode())
        started = time.perf_counter()
        status = 0  # until the answer starts
        header = (REQUEST_ID_HEADER, request_id)
        waiting = in_flight(scope["method"], scope["path"], request_id) if kind == "http" else None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] in _ANSWER_STARTS:
                status = message.get("status", 101)
                message["headers"] = [*message.get("headers", ()), header]
                if waiting is not None:
                    answered(waiting)
            await send(message)

        try:
            if kind != "http" or not tracing.enabled():
                await self.app(scope, receive, send_with_id)
            else:
                with self._span(scope) as span:
                    try:
                        await self.app(scope, receive, send_with_id)
                    finally:
                        self._describe(span, scope, status or 500)
        except Exception:
            # Answered, so the error layer has logged it (see above). Unanswered, it is the
            # server's to log and answer.
            if kind != "http" or not status:
                raise
        finally:
            if waiting is not None:
                answered(waiting)
            request_id_var.reset(token)
            if kind == "http":
                route = self.route_of(scope)
                seconds = time.perf_counter() - started
                self.observe(route, scope["method"], status or 500, seconds)

    def _span(self, scope: Scope) -> AbstractContextManager[Span]:
        """A SERVER span continuing the client's W3C trace context, if it sent one."""
        method = scope["method"]
        return tracing.start_span(
            method,
            kind=tracing.SpanKind.SERVER,
            carrier=tracing.carrier_from_asgi(scope["headers"]),
            attributes={
                "http.request.method": method,
                "booking_rush.service": self.service,
                "booking_rush.request_id": scope[REQUEST_ID_SCOPE_KEY].decode(),
            },
        )

    def _describe(self, span: Span, scope: Scope, status: int) -> None:
        route = self.route_of(scope)
        span.update_name(f"{scope['method']} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
