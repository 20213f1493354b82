"""An organizer creates and publishes an event in the console, pauses and resumes its queue, and
suspends a seat that a buyer's open map then shows as unavailable."""

from __future__ import annotations

import uuid

import httpx
from playwright.async_api import expect

from tests.web.conftest import Web, new_buyer


async def test_organizer_creates_publishes_and_runs_a_drop(
    web: Web, api: httpx.AsyncClient
) -> None:
    organizer = await web.tab()
    page = organizer.page
    await page.goto(f"{web.url}/#/signin?next=%23%2Forganizer")
    await page.get_by_label("Email").fill(web.live.env["ADMIN_EMAIL"])
    await page.get_by_label("Password").fill(web.live.env["ADMIN_PASSWORD"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Organizer console")).to_be_visible()

    name = f"Console drop {uuid.uuid4().hex[:6]}"
    await page.get_by_label("Event name").fill(name)
    await page.get_by_label("Rows").fill("3")
    await page.get_by_label("Seats per row").fill("6")
    await page.get_by_label("Price").fill("39.50")
    await expect(page.get_by_text("18 seats, labelled A-1")).to_be_visible()
    await web.shot(organizer, "organizer-create")
    async with page.expect_response("**/api/v1/events") as created:
        await page.get_by_role("button", name="Create event").click()
    event = await (await created.value).json()
    assert event["zones"][0]["seats"][:2] == ["A-1", "A-2"] and event["queue"]["enabled"]
    await page.get_by_role("button", name="Publish").click()

    await expect(page.get_by_role("heading", name=f"Live drop: {name}")).to_be_visible()
    await expect(page.locator("#stat-available")).to_have_text("18")
    await expect(page.locator("#stat-waiting")).to_have_text("0")
    await expect(page.locator("#stat-passes")).to_have_text("0")
    await page.get_by_role("button", name="Pause the queue").click()
    await expect(page.locator("#queue-state")).to_have_text("Queue paused: nobody is admitted.")
    assert (await api.get(f"/events/{event['event_id']}")).json()["queue"]["paused"] is True
    await page.get_by_role("button", name="Resume the queue").click()
    await expect(page.locator("#queue-state")).to_have_text("Queue running.")
    assert (await api.get(f"/events/{event['event_id']}")).json()["queue"]["paused"] is False

    buyer = await web.tab(refresh_token=(await new_buyer(api))[1])
    zone = event["zones"][0]["zone_id"]
    await buyer.page.goto(f"{web.url}/#/buy/{event['event_id']}/{zone}")
    await expect(buyer.page.get_by_role("button", name="Seat B-3, available")).to_be_visible()

    await page.get_by_role("button", name="Seat B-3, available").click()
    await expect(
        page.get_by_role("button", name="Seat B-3, unavailable (suspended)")
    ).to_be_visible()
    await expect(
        buyer.page.get_by_role("button", name="Seat B-3, unavailable (suspended)")
    ).to_be_visible(timeout=2000)
    await expect(page.locator("#stat-available")).to_have_text("17")
    await web.shot(organizer, "organizer-drop")
    await web.shot(buyer, "seat-map-suspended")

    # And back on sale.
    await page.get_by_role("button", name="Seat B-3, unavailable (suspended)").click()
    await expect(buyer.page.get_by_role("button", name="Seat B-3, available")).to_be_visible()
