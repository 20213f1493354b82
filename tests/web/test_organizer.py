"""A plain organizer (not an admin) sees its own drafts in the console and publishes one from the
list; creates and publishes an event; runs the drop: pauses and resumes the queue, watches the
live figures (watchers, waiting-room streams, the pushed pass's delivery p99, feed events per
second) and suspends a seat that a buyer's open map then shows as unavailable."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.async_api import expect

from tests.web.conftest import Web, draft_event, new_buyer, new_organizer


async def test_organizer_creates_publishes_and_runs_a_drop(
    web: Web, api: httpx.AsyncClient
) -> None:
    email, password, organizer_headers = await new_organizer(api, web.live)
    listed = await draft_event(api, organizer_headers, f"Listed draft {uuid.uuid4().hex[:6]}")
    _, _, someone_else = await new_organizer(api, web.live)
    hidden = await draft_event(api, someone_else, f"Their draft {uuid.uuid4().hex[:6]}")

    organizer = await web.tab()
    page = organizer.page
    await page.goto(f"{web.url}/#/signin?next=%23%2Forganizer")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Organizer console")).to_be_visible()

    # Its own draft is listed with a Publish button; another organizer's is not.
    mine = page.locator("#my-events")
    await expect(mine.get_by_role("listitem")).to_have_count(1)
    await expect(mine).to_contain_text(f"{listed['name']} · draft (not on sale)")
    await expect(page.get_by_text(hidden["name"])).to_have_count(0)

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
    event_id = event["event_id"]
    assert event["zones"][0]["seats"][:2] == ["A-1", "A-2"] and event["queue"]["enabled"]
    await page.get_by_role("button", name=f"Publish {name}").click()

    await expect(page.get_by_role("heading", name=f"Live drop: {name}")).to_be_visible()
    await expect(page.locator("#stat-available")).to_have_text("18")
    await expect(page.locator("#stat-waiting")).to_have_text("0")
    await expect(page.locator("#stat-passes")).to_have_text("0")
    await expect(page.locator("#stat-p99")).to_have_text("no pass yet")
    # The drop view's own seat map watches the feed.
    await expect(page.locator("#stat-watchers")).to_have_text("1")
    await expect(page.locator("#live-coverage")).to_contain_text("from 1 booking process")
    await page.get_by_role("button", name="Pause the queue").click()
    await expect(page.locator("#queue-state")).to_have_text("Queue paused: nobody is admitted.")
    assert (await api.get(f"/events/{event_id}")).json()["queue"]["paused"] is True

    # A buyer waits in the paused queue: its stream counts on the drop view.
    buyer = await web.tab(refresh_token=(await new_buyer(api))[1])
    await buyer.page.goto(f"{web.url}/#/queue/{event_id}")
    await expect(buyer.page.locator("#queue-status")).to_contain_text("You are number 1 in line")
    await expect(page.locator("#stat-streams")).to_have_text("1")
    await expect(page.locator("#stat-waiting")).to_have_text("1")

    await page.get_by_role("button", name="Resume the queue").click()
    await expect(page.locator("#queue-state")).to_have_text("Queue running.")
    assert (await api.get(f"/events/{event_id}")).json()["queue"]["paused"] is False
    # The pass is pushed; its delivery delay shows as the p99; the buyer's map now watches too.
    await expect(buyer.page.get_by_role("button", name="Seat B-3, available")).to_be_visible(
        timeout=10_000
    )
    await expect(page.locator("#stat-p99")).to_have_text(re.compile(r"^(≤ \d+ ms|< 1 ms)$"))
    await expect(page.locator("#stat-watchers")).to_have_text("2")

    await page.get_by_role("button", name="Seat B-3, available").click()
    await expect(
        page.get_by_role("button", name="Seat B-3, unavailable (suspended)")
    ).to_be_visible()
    await expect(
        buyer.page.get_by_role("button", name="Seat B-3, unavailable (suspended)")
    ).to_be_visible(timeout=2000)
    await expect(page.locator("#stat-available")).to_have_text("17")
    # The suspension went out on the feed: the events-per-second figure moves off zero.
    await expect(page.locator("#stat-events")).not_to_have_text("0.0", timeout=5000)
    await web.shot(organizer, "organizer-drop")
    await web.shot(buyer, "seat-map-suspended")

    # And back on sale.
    await page.get_by_role("button", name="Seat B-3, unavailable (suspended)").click()
    await expect(buyer.page.get_by_role("button", name="Seat B-3, available")).to_be_visible()

    # The listed draft is published from the console's list.
    await page.goto(f"{web.url}/#/organizer")
    await page.get_by_role("button", name=f"Publish {listed['name']}").click()
    await expect(page.get_by_role("heading", name=f"Live drop: {listed['name']}")).to_be_visible()
    assert (await api.get(f"/events/{listed['event_id']}")).json()["status"] == "on_sale"
