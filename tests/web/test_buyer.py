"""A buyer from sign-up through the waiting room (the pass pushed on the stream), a seat on the
map, the mock payment, to the confirmed ticket in "My tickets"; on a 390 px wide phone."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.async_api import expect

from tests.web.conftest import PHONE, REFRESH_KEY, Web, admin_headers, published_event, seats


async def test_buyer_from_sign_up_to_a_confirmed_ticket(web: Web, api: httpx.AsyncClient) -> None:
    admin = await admin_headers(api, web.live)
    name = f"Phone drop {uuid.uuid4().hex[:6]}"
    event = await published_event(
        api,
        admin,
        name=name,
        zones=[{"name": "Stalls", "price_minor": 4500, "seats": seats("AB", 6)}],
        queue={"enabled": True, "max_concurrent": 10, "release_per_tick": 5, "pass_ttl_s": 120},
        paused=True,
    )
    event_id = event["event_id"]
    tab = await web.tab(PHONE)
    page = tab.page

    await page.goto(f"{web.url}/#/signup")
    email = f"phone-{uuid.uuid4().hex[:8]}@example.test"
    await page.get_by_label("Name").fill("Phone Buyer")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill("correct horse")
    await web.shot(tab, "sign-up")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Events", exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    await web.shot(tab, "events")

    await page.get_by_role("link", name=name).click()
    await expect(page.get_by_role("cell", name="12 of 12")).to_be_visible()
    await web.shot(tab, "event")

    # The queue is paused: the buyer waits at number 1, live over the stream.
    await page.get_by_role("link", name="Join the waiting room").click()
    status = page.get_by_role("status").filter(has_text="in line")
    await expect(status).to_contain_text("You are number 1 in line")
    await expect(page.locator("progress")).to_be_visible()
    await web.shot(tab, "waiting-room")

    resumed = await api.patch(f"/events/{event_id}/queue", json={"paused": False}, headers=admin)
    assert resumed.status_code == 200
    # The pass arrives on the stream; the page moves on to the seat map with its time shown.
    await expect(page.get_by_text(re.compile("Your queue pass is valid for"))).to_be_visible(
        timeout=10_000
    )
    seat = page.get_by_role("button", name="Seat A-3, available")
    await seat.click()
    await expect(page.get_by_role("button", name="Seat A-3, selected")).to_be_visible()
    await web.shot(tab, "seat-map")
    await page.get_by_role("button", name="Reserve 1 seat").dblclick()

    await expect(page.get_by_role("heading", name="Checkout")).to_be_visible()
    await expect(page.get_by_text(re.compile(r"Your hold ends in \d+ min"))).to_be_visible()
    await page.get_by_label("Test outcome").select_option("succeed")
    await web.shot(tab, "checkout")
    await page.get_by_role("button", name=re.compile("^Pay ")).click()
    await expect(page.get_by_text("your booking is confirmed")).to_be_visible(timeout=20_000)

    await page.get_by_role("link", name="Go to My tickets").click()
    bookings = page.locator("article.booking")
    await expect(bookings).to_have_count(1)  # the double click made one hold
    await expect(bookings.first).to_have_attribute("data-status", "CONFIRMED")
    await expect(bookings.first).to_contain_text("Seats A-3")
    ticket = bookings.first.get_by_role("listitem")
    await expect(ticket).to_contain_text("Seat A-3 · valid · code")
    code = (await ticket.locator("code").inner_text()).strip()
    await web.shot(tab, "my-tickets")

    # The ticket document shows the same signed code, and the door admits it once.
    await bookings.first.get_by_role("link", name="Show tickets to print").click()
    await expect(page.get_by_role("heading", name=f"Tickets: {name}")).to_be_visible()
    await expect(page.locator(".ticket code")).to_have_text(code)
    await web.shot(tab, "ticket")
    scanned = await api.post("/checkin", json={"code": code}, headers=admin)
    assert scanned.status_code == 200, scanned.text
    assert scanned.json()["seat_id"] == "A-3"
    await page.get_by_role("link", name="Back to My tickets").click()
    await expect(page.locator("article.booking").first.get_by_role("listitem")).to_contain_text(
        "Seat A-3 · checked in"
    )

    # Cancel asks once more, then refunds the paid booking.
    cancel = bookings.first.get_by_role("button", name="Cancel and refund")
    await cancel.click()
    await bookings.first.get_by_role("button", name=re.compile("click again to confirm")).click()
    await expect(page.locator("article.booking").first).to_have_attribute(
        "data-status", "REFUNDED", timeout=15_000
    )

    # Sign-out ends the sign-in on the service: the tab's refresh token no longer works.
    refresh_token = await page.evaluate(f"sessionStorage.getItem({REFRESH_KEY!r})")
    assert refresh_token
    async with page.expect_response("**/api/v1/auth/logout") as logout:
        await page.get_by_role("button", name="Sign out").click()
    assert (await logout.value).status == 204
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await page.evaluate(f"sessionStorage.getItem({REFRESH_KEY!r})") is None
    spent = await api.post("/auth/refresh", json={"refresh_token": refresh_token})
    assert spent.status_code == 401
