"""Sold out ends every open waiting room with the message."""

from __future__ import annotations

import functools

import httpx
from playwright.async_api import Request, expect

from tests.web.conftest import PHONE, Web, admin_headers, new_buyer, published_event


async def test_sold_out_ends_every_open_waiting_room(web: Web, api: httpx.AsyncClient) -> None:
    admin = await admin_headers(api, web.live)
    event = await published_event(
        api,
        admin,
        zones=[{"name": "Pit", "price_minor": 2500, "capacity": 1}],
        queue={"enabled": True, "max_concurrent": 1, "release_per_tick": 1, "pass_ttl_s": 60},
        paused=True,
    )
    event_id = event["event_id"]
    rooms = [await web.tab(PHONE, refresh_token=(await new_buyer(api))[1]) for _ in range(2)]
    queue_calls: list[list[str]] = [[], []]
    for calls, tab in zip(queue_calls, rooms, strict=True):
        tab.page.on("request", functools.partial(_record_queue_call, calls))
    for number, tab in enumerate(rooms, start=1):
        await tab.page.goto(f"{web.url}/#/queue/{event_id}")
        await expect(tab.page.locator("#queue-status")).to_contain_text(
            f"You are number {number} in line"
        )

    # The last place goes (here: taken out of sale): the queue closes, every stream ends.
    suspended = await api.post(
        f"/events/{event_id}/seats/suspend",
        json={"zone_id": event["zones"][0]["zone_id"], "quantity": 1, "reason": "sold elsewhere"},
        headers=admin,
    )
    assert suspended.status_code == 200, suspended.text
    for tab in rooms:
        await expect(tab.page.locator("#queue-status")).to_contain_text("Sold out.", timeout=10_000)
        await expect(tab.page.locator("#queue-status")).to_contain_text(
            "the waiting room has closed"
        )
        await expect(tab.page.get_by_role("button", name="Leave the waiting room")).to_be_hidden()
    await web.shot(rooms[0], "waiting-room-sold-out")
    # Each page opened exactly one stream and never polled.
    for calls in queue_calls:
        assert calls == [
            "POST /queue/join",
            f"GET /queue/position/{event_id}/stream",
        ], calls


def _record_queue_call(calls: list[str], request: Request) -> None:
    if "/api/v1/queue/" in request.url:
        calls.append(f"{request.method} {request.url.split('/api/v1', 1)[1]}")
