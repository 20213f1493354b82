"""The shuffle verifier: after the sale opened, the page recomputes SHA-256 of the revealed seed
in the browser and says it matches the commitment, and recomputes the pre-queue's order exactly
as the service does (booking.queue.service.shuffled_order), the buyer's own rank included."""

from __future__ import annotations

import uuid

import httpx
from playwright.async_api import expect

from booking.queue.service import shuffled_order
from tests.web.conftest import PHONE, Web, admin_headers, login, new_buyer, published_event


async def test_the_verifier_checks_the_seed_and_recomputes_the_order(
    web: Web, api: httpx.AsyncClient
) -> None:
    admin = await admin_headers(api, web.live)
    event = await published_event(
        api,
        admin,
        name="Verified drop",
        zones=[{"name": "Floor", "price_minor": 2500, "capacity": 10}],
        queue={"enabled": True},
    )
    seed, commitment = event["queue"]["seed"], event["queue"]["seed_sha256"]
    email, refresh_token = await new_buyer(api)
    pair = await login(api, email, "correct horse")
    me = await api.get("/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    user_id = me.json()["user_id"]
    tab = await web.tab(PHONE, refresh_token=pair["refresh_token"])
    page = tab.page

    await page.goto(f"{web.url}/#/verify/{event['event_id']}")
    result = page.locator("#verify-result")
    await expect(result).to_contain_text("The seed matches its commitment")
    await expect(page.locator("#computed")).to_have_text(commitment)
    await expect(page.locator("#seed")).to_have_text(seed)

    joiners = [str(uuid.uuid4()) for _ in range(7)] + [user_id]
    expected = shuffled_order(bytes.fromhex(seed), joiners)
    await page.get_by_label("Joiners, one user id per line").fill("\n".join(joiners))
    await page.get_by_role("button", name="Compute the order").click()
    await expect(page.locator("#order-result")).to_contain_text(
        f"You are number {expected.index(user_id) + 1} of 8."
    )
    assert await page.locator("#order li").all_inner_texts() == expected
    await web.shot(tab, "verify-shuffle")
    assert refresh_token  # the buyer's first sign-in, unused here
