"""A bug in a booking route, served by uvicorn as in production: its 500 carries the request id,
it is logged once (one ERROR line, with the traceback and the request id) and it is counted."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from prometheus_client import REGISTRY
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from common.http_server import HTTP_PROTOCOL
from tests.error_log import error_lines
from tests.serving import uvicorn_serving


async def _raises(request: Request) -> Response:
    raise RuntimeError("a bug in a route")


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """uvicorn with production's HTTP protocol; the `app` fixture has run the lifespan."""
    options: dict[str, Any] = {
        "http": HTTP_PROTOCOL,
        "lifespan": "off",
        "log_config": None,
        "access_log": False,
    }
    async with uvicorn_serving(app, **options) as port:
        yield f"http://127.0.0.1:{port}"


async def test_an_unexpected_500_names_its_request_and_is_logged_once(app: Any) -> None:
    app.router.routes.insert(0, Route("/test-raises", _raises, methods=["GET"]))
    counted = {"route": "/test-raises", "method": "GET", "status_class": "5xx"}
    before = REGISTRY.get_sample_value("booking_rush_http_requests_total", counted) or 0.0
    with error_lines() as errors:
        async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
            answer = await client.get("/test-raises", headers={"X-Request-ID": "bug-report.7"})
        # The server has stopped: whatever it was going to log about the request, it has.
    assert answer.status_code == 500, answer.text
    assert answer.json()["code"] == "internal_error"
    assert answer.headers["x-request-id"] == "bug-report.7"
    assert answer.headers["connection"] == "close"
    assert len(errors.entries) == 1, [entry["msg"] for entry in errors.entries]
    [logged] = errors.entries
    assert logged["msg"] == "unhandled error on GET /test-raises"
    assert "RuntimeError: a bug in a route" in logged["exc"]
    assert logged["request_id"] == "bug-report.7"
    after = REGISTRY.get_sample_value("booking_rush_http_requests_total", counted)
    assert after == before + 1


async def test_a_bug_on_a_hot_route_is_answered_logged_and_counted_the_same(
    app: Any, monkeypatch: Any, token_for: Any
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in reserve")

    monkeypatch.setattr(app.state.services.bookings, "reserve", broken)
    counted = {"route": "/bookings/reserve", "method": "POST", "status_class": "5xx"}
    before = REGISTRY.get_sample_value("booking_rush_http_requests_total", counted) or 0.0
    body = {"event_id": str(uuid.uuid4()), "zone_id": str(uuid.uuid4()), "quantity": 1}
    headers = {
        "X-Request-ID": "hot-bug.1",
        "Authorization": f"Bearer {token_for(str(uuid.uuid4()))}",
    }
    with error_lines() as errors:
        async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
            answer = await client.post("/api/v1/bookings/reserve", json=body, headers=headers)
    assert answer.status_code == 500, answer.text
    assert answer.json()["code"] == "internal_error"
    assert answer.headers["x-request-id"] == "hot-bug.1"
    assert answer.headers["connection"] == "close"
    assert len(errors.entries) == 1, [entry["msg"] for entry in errors.entries]
    [logged] = errors.entries
    assert logged["msg"] == "unhandled error on POST /api/v1/bookings/reserve"
    assert "RuntimeError: a bug in reserve" in logged["exc"]
    assert logged["request_id"] == "hot-bug.1"
    after = REGISTRY.get_sample_value("booking_rush_http_requests_total", counted)
    assert after == before + 1
