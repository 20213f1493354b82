"""Plain ASGI middleware (not BaseHTTPMiddleware, which breaks context variables): request ids,
request metrics and (when tracing is on) the request span. All sit outside Starlette's error
handling, so even a 500 carries the id, is counted and is traced.
"""

from __future__ import annotations

import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common import tracing
from common.logs import request_id_var
from gateway.metrics import GatewayMetrics
from gateway.routes import UNMATCHED

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")

# Set by the endpoint that handled the request: the route template, for the metric label.
ROUTE_SCOPE_KEY = "gateway.route"
REQUEST_ID_SCOPE_KEY = "gateway.request_id"


def incoming_request_id(scope: Scope) -> bytes:
    """The client's X-Request-ID if it is sane (<= 128 of [A-Za-z0-9._-]), else a fresh one."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            if _SANE_REQUEST_ID.fullmatch(value):
                return bytes(value)
            break
    return uuid.uuid4().hex.encode()


class RequestMiddleware:
    """Picks the request id (exposed to logs and the proxy, echoed on every response) and counts
    and times every HTTP request by route template, method and status class. One middleware, one
    `send` wrapper: this runs on every request of a drop."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics, own_paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.own_paths = own_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope)
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        token = request_id_var.set(request_id.decode())
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] in ("http.response.start", "websocket.accept"):
                status = message.get("status", status)
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            if kind == "http":
                route = scope.get(ROUTE_SCOPE_KEY)
                if route is None:
                    path = scope["path"]
                    route = path if path in self.own_paths else UNMATCHED
                self.metrics.observe_request(
                    route, scope["method"], status, time.perf_counter() - started
                )


class TracingMiddleware:
    """One SERVER span per request, continuing the client's W3C trace context if it sent one.

    Installed only when tracing is configured; the proxy then sends this span's context upstream.
    """

    def __init__(self, app: ASGIApp, own_paths: frozenset[str]) -> None:
        self.app = app
        self.own_paths = own_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not tracing.enabled():
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracing.start_span(
            method,
            kind=tracing.SpanKind.SERVER,
            carrier=tracing.carrier_from_asgi(scope["headers"]),
            attributes={"http.request.method": method, "booking_rush.service": "gateway"},
        ) as span:
            try:
                await self.app(scope, receive, send_with_status)
            finally:
                route = scope.get(ROUTE_SCOPE_KEY)
                if route is None:
                    route = scope["path"] if scope["path"] in self.own_paths else UNMATCHED
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                request_id = scope.get(REQUEST_ID_SCOPE_KEY)
                if request_id:
                    span.set_attribute("booking_rush.request_id", request_id.decode())
