"""A bug in a booking route, served by uvicorn as in production: its 500 carries the request id,
it is logged once (one ERROR line, with the traceback and the request id) and it is counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from prometheus_client import REGISTRY
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from common.http_server import HTTP_PROTOCOL
from stack.processes import free_port
from tests.error_log import error_lines


async def _raises(request: Request) -> Response:
    raise RuntimeError("a bug in a route")


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """uvicorn with production's HTTP protocol; the `app` fixture has run the lifespan."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=HTTP_PROTOCOL, lifespan="off", log_config=None,
        access_log=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


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
