"""Before the sale opens the waiting room says so, with the commitment to the shuffle's seed and
a link to verify the shuffle (which says the seed is still secret); leaving the queue gives the
place up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import expect

from tests.web.conftest import PHONE, Web, admin_headers, login, new_buyer


async def test_pre_queue_notice_and_leaving(web: Web, api: httpx.AsyncClient) -> None:
    admin = await admin_headers(api, web.live)
    now = datetime.now(UTC)
    created = await api.post(
        "/events",
        json={
            "name": "Later drop",
            "venue": "Hall",
            "starts_at": (now + timedelta(days=10)).isoformat(),
            "sale_starts_at": (now + timedelta(hours=1)).isoformat(),
            "max_per_user": 2,
            "currency": "EUR",
            "zones": [{"name": "Floor", "capacity": 50, "price_minor": 3000}],
            "queue": {"enabled": True},
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    event_id = created.json()["event_id"]
    assert (await api.post(f"/events/{event_id}/publish", headers=admin)).status_code == 200
    seed_sha256 = (await api.get(f"/events/{event_id}")).json()["queue"]["seed_sha256"]

    email, refresh_token = await new_buyer(api)
    tab = await web.tab(PHONE, refresh_token=refresh_token)
    page = tab.page
    await page.goto(f"{web.url}/#/queue/{event_id}")
    await expect(page.locator("#queue-status")).to_contain_text("You are in the pre-queue")
    await expect(page.get_by_text("placed in a random order at the opening")).to_be_visible()
    await expect(page.get_by_text(seed_sha256)).to_be_visible()
    await web.shot(tab, "waiting-room-pre-queue")

    await page.get_by_role("button", name="Leave the waiting room").click()
    await expect(page.locator("#queue-status")).to_contain_text("You left the waiting room.")
    buyer = await login(api, email, "correct horse")
    place = await api.get(
        f"/queue/position/{event_id}",
        headers={"Authorization": f"Bearer {buyer['access_token']}"},
    )
    assert place.status_code == 404  # the place is given up
    # The page rotated the refresh token it was handed when it loaded: that one is spent.
    spent = await api.post("/auth/refresh", json={"refresh_token": refresh_token})
    assert spent.status_code == 401

    # The notice's link: the verifier shows the commitment and says the seed is still secret.
    await page.get_by_role("link", name="verify the shuffle").click()
    await expect(page.locator("#verify-result")).to_contain_text("the seed is still secret")
    await expect(page.locator("#commitment")).to_have_text(seed_sha256)
    await web.shot(tab, "verify-shuffle-before-sale")
