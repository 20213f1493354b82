"""GET /events/{id}/waitlist/stream over a real uvicorn: `place` at once, then the `offer` the
worker's tick makes, pushed through Redis pub/sub to the open response."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from booking.settings import Settings
from booking.waitlist.ticker import WaitlistTicker
from tests.serving import uvicorn_serving


@pytest.fixture(scope="module")
def settings(service_env: dict[str, str]) -> Settings:
    """Heartbeats every 0.2 s: a closed stream is noticed at once and uvicorn stops quickly."""
    return Settings.from_env({**service_env, "HOLD_TTL_S": "600", "QUEUE_HEARTBEAT_S": "0.2"})


async def _next_event(lines: Any) -> tuple[str, dict[str, Any]]:
    event = ""
    async for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event:
            return event, orjson.loads(line.removeprefix("data: "))
    raise AssertionError("the stream ended")


async def test_the_stream_shows_the_place_then_pushes_the_offer(
    app: Any,
    client: httpx.AsyncClient,
    make_user: Any,
    sold_out_event: Any,
    ticker: WaitlistTicker,
) -> None:
    event, _organizer, owner, (hold, _) = await sold_out_event()
    _, buyer = await make_user()
    url = f"/api/v1/events/{event['event_id']}/waitlist"
    assert (await client.post(url, json={"quantity": 2}, headers=buyer)).status_code == 202
    options: dict[str, Any] = {"lifespan": "off", "log_config": None, "access_log": False}
    options["ws"] = "none"
    async with (
        uvicorn_serving(app, **options) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
        http.stream("GET", f"{url}/stream", headers=buyer) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        name, place = await asyncio.wait_for(_next_event(lines), 5)
        assert (name, place["status"], place["position"]) == ("place", "waiting", 1)
        await client.post(f"/api/v1/bookings/{hold}/cancel", headers=owner)
        await ticker.tick()
        name, offer = await asyncio.wait_for(_next_event(lines), 5)
    assert name == "offer" and offer["quantity"] == 2
    shown = (await client.get(url, headers=buyer)).json()["offer"]
    assert shown == offer


async def test_no_stream_without_an_entry(
    client: httpx.AsyncClient, make_user: Any, sold_out_event: Any
) -> None:
    event, *_ = await sold_out_event()
    _, buyer = await make_user()
    answer = await client.get(f"/api/v1/events/{event['event_id']}/waitlist/stream", headers=buyer)
    assert answer.status_code == 404
