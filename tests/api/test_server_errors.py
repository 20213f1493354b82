"""An unexpected error answers 500 problem+json and says `Connection: close`: the server drops
the connection after it, and a keep-alive client must not send its next request into it."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def _raises(request: Request) -> Response:
    raise RuntimeError("a bug in a route")


async def test_a_500_says_the_connection_closes(app: Any) -> None:
    # No input reaches a 500 any more; a route added for this test plays the bug.
    app.router.routes.insert(0, Route("/test-raises", _raises, methods=["GET"]))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://booking") as client:
        answer = await client.get("/test-raises")
        assert answer.status_code == 500, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "internal_error"
        assert answer.headers["connection"] == "close"
        fine = await client.get("/api/v1/events")
        assert fine.status_code == 200
        assert "connection" not in fine.headers
