"""A bug in one of the gateway's own endpoints: its 500 carries the request id, it is logged
once (one ERROR line, with the traceback and the request id) and it is counted."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.app import create_app
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from tests.error_log import error_lines
from tests.gateway.conftest import ServerThread


async def _raises(request: Request) -> Response:
    raise RuntimeError("a bug in an own endpoint")


def _starlette(app: Any) -> Starlette:
    """The Starlette app inside the gateway's ASGI wrappers."""
    while not isinstance(app, Starlette):
        app = app.app
    return app


async def test_an_unexpected_500_names_its_request_and_is_logged_once(
    gateway_settings: GatewaySettings,
) -> None:
    metrics = GatewayMetrics()
    app = create_app(gateway_settings, metrics)
    _starlette(app).router.routes.insert(0, Route("/test-raises", _raises, methods=["GET"]))
    server = ServerThread(app)  # configures uvicorn's logging: before the capture starts
    with error_lines() as errors:
        await asyncio.to_thread(server.start)
        try:
            async with httpx.AsyncClient(base_url=server.url) as client:
                answer = await client.get("/test-raises", headers={"X-Request-ID": "gw-bug.1"})
        finally:
            await asyncio.to_thread(server.stop)
    assert answer.status_code == 500, answer.text
    assert answer.json()["code"] == "internal_error"
    assert answer.headers["x-request-id"] == "gw-bug.1"
    assert len(errors.entries) == 1, [entry["msg"] for entry in errors.entries]
    [logged] = errors.entries
    assert logged["msg"] == "unhandled error on GET /test-raises"
    assert "RuntimeError: a bug in an own endpoint" in logged["exc"]
    assert logged["request_id"] == "gw-bug.1"
    counted = {"route": "{unmatched}", "method": "GET", "status_class": "5xx"}
    assert metrics.registry.get_sample_value("booking_rush_gateway_requests_total", counted) == 1
