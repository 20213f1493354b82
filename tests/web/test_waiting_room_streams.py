"""The acceptance behind `make streams`: a waiting room costs the gateway one stream and nothing
else. While a buyer waits, the page has exactly one stream request open and sends no other
request at all (no polling), across a heartbeat of the stream."""

from __future__ import annotations

import asyncio

import httpx
from playwright.async_api import Request, expect

from tests.web.conftest import PHONE, Web, admin_headers, new_buyer, published_event

WAIT_S = 6.0  # longer than the web stack's QUEUE_HEARTBEAT_S (5 s)


async def test_the_waiting_room_opens_one_stream_and_never_polls(
    web: Web, api: httpx.AsyncClient
) -> None:
    admin = await admin_headers(api, web.live)
    event = await published_event(
        api,
        admin,
        zones=[{"name": "Floor", "price_minor": 2500, "capacity": 10}],
        queue={"enabled": True, "max_concurrent": 1, "release_per_tick": 1, "pass_ttl_s": 60},
        paused=True,
    )
    event_id = event["event_id"]
    tab = await web.tab(PHONE, refresh_token=(await new_buyer(api))[1])
    requests: list[str] = []

    def record(request: Request) -> None:
        requests.append(f"{request.method} {request.url.removeprefix(web.url)}")

    tab.page.on("request", record)
    stream = f"GET /api/v1/queue/position/{event_id}/stream"
    async with tab.page.expect_request(lambda request: request.url.endswith("/stream")):
        await tab.page.goto(f"{web.url}/#/queue/{event_id}")
    await expect(tab.page.locator("#queue-status")).to_contain_text("You are number 1 in line")
    assert requests.count(stream) == 1, requests
    settled = len(requests)

    await asyncio.sleep(WAIT_S)
    assert requests[settled:] == [], "the waiting room sent requests while waiting"
    assert requests.count(stream) == 1
    # Every API call of the page's whole life: signing in, the event, the join, the stream.
    api_calls = [r for r in requests if " /api/v1/" in r]
    assert api_calls == [
        "POST /api/v1/auth/refresh",
        "GET /api/v1/auth/me",
        f"GET /api/v1/events/{event_id}",
        "POST /api/v1/queue/join",
        stream,
    ], api_calls
    await expect(tab.page.locator("#queue-status")).to_contain_text("You are number 1 in line")
