"""The pages (web/) at `/`: served with a strict CSP and cache headers, nothing else changes (the
API is proxied as before, unknown paths stay problem+json 404s)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.web import ASSET_CACHE, CONTENT_SECURITY_POLICY, DEFAULT_WEB_ROOT, PAGE_CACHE


async def test_pages_are_served_with_a_strict_policy(start_gateway: Callable[..., Any]) -> None:
    async with start_gateway(web_root=str(DEFAULT_WEB_ROOT)) as gateway:
        page = await gateway.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == PAGE_CACHE
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "script-src 'self'" in CONTENT_SECURITY_POLICY
        assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
        assert page.headers["x-content-type-options"] == "nosniff"
        assert '<script type="module" src="/js/app.js"></script>' in page.text
        assert "<script>" not in page.text  # no inline script anywhere

        module = await gateway.get("/js/app.js")
        assert module.status_code == 200
        assert "javascript" in module.headers["content-type"]
        assert module.headers["cache-control"] == ASSET_CACHE
        again = await gateway.get("/js/app.js", headers={"If-None-Match": module.headers["etag"]})
        assert again.status_code == 304

        missing = await gateway.get("/js/nothing.js")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert (await gateway.post("/")).status_code == 405
        # The API is still the proxy's: the stand-in upstream answers.
        assert (await gateway.get("/api/v1/events")).status_code == 200
        assert (await gateway.get("/api/v1/health")).json()["status"] == "ok"


async def test_no_pages_without_a_web_root(start_gateway: Callable[..., Any]) -> None:
    async with start_gateway() as gateway:
        assert (await gateway.get("/")).status_code == 404
