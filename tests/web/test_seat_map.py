"""Two buyers on one seat map: a reservation in one browser shows in the other within a second,
and the second, who had chosen the same seat, is refused and told why."""

from __future__ import annotations

import time

import httpx
from playwright.async_api import expect

from tests.web.conftest import Web, admin_headers, new_buyer, published_event, seats


async def test_a_reservation_shows_in_the_other_browser_within_a_second(
    web: Web, api: httpx.AsyncClient
) -> None:
    admin = await admin_headers(api, web.live)
    event = await published_event(
        api, admin, zones=[{"name": "Circle", "price_minor": 6000, "seats": seats("ABC", 8)}]
    )
    zone = event["zones"][0]["zone_id"]
    url = f"{web.url}/#/buy/{event['event_id']}/{zone}"
    first, second = [await web.tab(refresh_token=(await new_buyer(api))[1]) for _ in range(2)]
    for tab in (first, second):
        await tab.page.goto(url)
        await expect(tab.page.get_by_role("button", name="Seat B-4, available")).to_be_visible()

    # Both choose B-4; the first reserves it.
    await second.page.get_by_role("button", name="Seat B-4, available").click()
    # The first by keyboard alone: a seat and the reserve button are ordinary buttons.
    await first.page.get_by_role("button", name="Seat B-4, available").focus()
    await first.page.keyboard.press("Space")
    await expect(first.page.get_by_role("button", name="Seat B-4, selected")).to_be_focused()
    await first.page.get_by_role("button", name="Reserve 1 seat").focus()
    async with first.page.expect_response("**/api/v1/bookings/reserve") as reserved:
        await first.page.keyboard.press("Enter")
    assert (await reserved.value).status == 201
    held_at = time.monotonic()
    seat_in_second = second.page.locator('button[data-seat="B-4"]')
    await expect(seat_in_second).to_have_attribute("data-state", "held", timeout=1000)
    assert time.monotonic() - held_at < 1.0
    await expect(first.page.get_by_role("heading", name="Checkout")).to_be_visible()

    # The second still has it selected and tries: refused, told why, the seat deselected.
    second.allow(r"status of 409")  # the browser logs the refused request
    async with second.page.expect_response("**/api/v1/bookings/reserve") as refused:
        await second.page.get_by_role("button", name="Reserve 1 seat").click()
    assert (await refused.value).status == 409
    await expect(second.page.get_by_role("alert")).to_contain_text(
        "Someone else has just taken one of these seats"
    )
    await expect(
        second.page.get_by_role("button", name="Seat B-4, held by someone")
    ).to_be_visible()
    await web.shot(second, "seat-map-taken")
