"""Errors from the API are shown in words: the problem's title and detail, never a stack or a
blank page; a 429 says when to retry. Also: the pages' own security headers as a browser gets
them, and nothing reaches the page as markup."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from tests.web.conftest import PHONE, Web


async def test_problems_are_shown_in_words(web: Web, api: httpx.AsyncClient) -> None:
    tab = await web.tab(PHONE)
    page = tab.page
    tab.allow(r"status of 401")  # the browser logs the refused sign-in
    response = await page.goto(f"{web.url}/#/signin")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    await page.get_by_label("Email").fill("nobody@example.test")
    await page.get_by_label("Password").fill("wrong password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert").filter(has_text="Invalid credentials")).to_be_visible()
    await web.shot(tab, "sign-in-error")

    words = await page.evaluate(
        """async () => {
            const { ApiError } = await import('/js/api.js');
            return [
                new ApiError(429, {title: 'Too many requests', code: 'rate_limited'}, 7).message,
                new ApiError(422, {title: 'The request is not valid', detail: 'bad body',
                    errors: [{field: 'zones.0.price_minor', message: 'must be >= 0'}]},
                    null).message,
                new ApiError(0, null, null).message,
            ];
        }"""
    )
    assert words[0] == "Too many requests right now. Please try again in 7 seconds."
    assert words[1] == ("The request is not valid: bad body (zones.0.price_minor: must be >= 0)")
    assert "cannot be reached" in words[2]

    # An event name with markup is text on the page, not markup.
    escaped = await page.evaluate(
        """async () => {
            const { h } = await import('/js/dom.js');
            const el = h('p', {}, '<img src=x onerror=alert(1)>');
            return [el.innerHTML, el.children.length];
        }"""
    )
    assert escaped == ["&lt;img src=x onerror=alert(1)&gt;", 0]
