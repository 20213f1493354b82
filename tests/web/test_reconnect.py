"""A waiting room whose stream is cut (its booking process killed) reconnects by itself and
resumes after the last message it had (`Last-Event-ID`); the pass still reaches it."""

from __future__ import annotations

import asyncio
import functools
import time

import httpx
from playwright.async_api import Request, expect

from tests.web.conftest import Web, admin_headers, new_buyer, published_event


def _record_stream(requests: list[dict[str, str]], request: Request) -> None:
    if request.url.endswith("/stream") and "/queue/position/" in request.url:
        requests.append(request.headers)


async def test_the_waiting_room_resumes_after_a_lost_connection(
    web: Web, api: httpx.AsyncClient
) -> None:
    admin = await admin_headers(api, web.live)
    event = await published_event(
        api,
        admin,
        zones=[{"name": "Hall", "price_minor": 2000, "capacity": 20}],
        queue={"enabled": True, "max_concurrent": 5, "release_per_tick": 5, "pass_ttl_s": 60},
        paused=True,
    )
    event_id = event["event_id"]
    tab = await web.tab(refresh_token=(await new_buyer(api))[1])
    # What the browser logs while the booking process is down: the cut stream, then refusals.
    tab.allow(r"ERR_INCOMPLETE_CHUNKED_ENCODING|status of 50[23]")
    streams: list[dict[str, str]] = []
    tab.page.on("request", functools.partial(_record_stream, streams))
    await tab.page.goto(f"{web.url}/#/queue/{event_id}")
    status = tab.page.locator("#queue-status")
    await expect(status).to_contain_text("You are number 1 in line")

    # The booking process that serves the stream dies (the supervisor starts it again).
    assert web.live.stack.kill_process("booking") is not None
    await expect(status).to_contain_text("reconnecting", timeout=5000)
    # Once the process is back, the queue runs again and the pass reaches the same page.
    deadline = time.monotonic() + 30
    while True:
        resumed = await api.patch(
            f"/events/{event_id}/queue", json={"paused": False}, headers=admin
        )
        if resumed.status_code == 200:
            break
        assert time.monotonic() < deadline, resumed.text
        await asyncio.sleep(0.3)
    await expect(tab.page.get_by_text("Your queue pass is valid for")).to_be_visible(timeout=20_000)
    assert len(streams) >= 2
    assert "last-event-id" not in streams[0]
    # Every reconnect resumes after the first message (the position, id 1).
    assert {headers.get("last-event-id") for headers in streams[1:]} == {"1"}
