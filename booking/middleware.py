"""Plain ASGI middleware (not BaseHTTPMiddleware, which breaks context variables): request id,
per-route request metrics, and (when tracing is on) the request span."""

from __future__ import annotations

import functools
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from booking.metrics import HTTP_LATENCY, HTTP_REQUESTS, POOLS
from common import tracing
from common.logs import request_id_var

_CONVERTOR = re.compile(r":\w+}")
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SANE_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


@functools.cache
def _without_convertors(path: str) -> str:
    return _CONVERTOR.sub("}", path)


def route_template(scope: Scope) -> str:
    """The matched route's path template (set on the scope by Starlette's router), never an id;
    `{booking_id:id}` is written `{booking_id}`, as the OpenAPI document names it."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return _without_convertors(path) if path else "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and "app" in scope:
                # The pools appear on the app state during startup; the collector reads them
                # at scrape time.
                POOLS.watch(scope["app"].state)
            await self.app(scope, receive, send)
            return
        if not tracing.enabled():
            await self._serve(scope, receive, send)
            return
        method = scope["method"]
        with tracing.start_span(
            method,
            kind=tracing.SpanKind.SERVER,
            carrier=tracing.carrier_from_asgi(scope["headers"]),
            attributes={"http.request.method": method, "booking_rush.service": "booking"},
        ) as span:
            status = 500
            try:
                status = await self._serve(scope, receive, send)
            finally:
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Runs the request with its id; counts and times it. Returns the response status."""
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            route = route_template(scope)
            status_class = f"{status // 100}xx"
            HTTP_REQUESTS.labels(route, scope["method"], status_class).inc()
            HTTP_LATENCY.labels(route, status_class).observe(time.perf_counter() - started)
        return status
