"""Browser tests of the pages (web/): Playwright driving Debian's chromium (installed by
`make tools`, never downloaded) headless against a live stack through its gateway.

Every page a test opens records its console errors and uncaught exceptions; a test fails on any
it did not expect. Screenshots go to the test's tmp dir (and, with `WEB_SCREENSHOTS_DIR` set, are
copied there: that is how docs/screenshots/ is refreshed)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

from tests.live import LiveStack, Shape, live_stack_fixture

# One booking process is enough for pages (and lighter on a shared 2-core machine).
web_stack = live_stack_fixture(
    "web",
    fixture="web_stack",
    env={"HOLD_TTL_S": "300", "RATE_LIMIT_AUTH_PER_IP": "1000", "QUEUE_HEARTBEAT_S": "5"},
    shape=Shape(bookings=1),
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
REFRESH_KEY = "booking-rush.refresh"


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.fail("chromium is not installed: run `make tools` (observability/ensure-tools.sh)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Tab:
    """One page in its own browser context (its own sessionStorage: one buyer)."""

    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """An error this test expects (e.g. the browser's log line of a refused request)."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@dataclass
class Web:
    live: LiveStack
    browser: Browser
    shots: Path
    tabs: list[Tab] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.live.gateway_url

    async def tab(self, viewport: ViewportSize = DESKTOP, refresh_token: str | None = None) -> Tab:
        context = await self.browser.new_context(viewport=viewport)
        if refresh_token is not None:
            # A signed-in tab, without typing: the session a sign-in leaves behind.
            await context.add_init_script(
                f"sessionStorage.setItem('{REFRESH_KEY}', {refresh_token!r})"
            )
        page = await context.new_page()
        tab = Tab(context, page)
        page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: tab.errors.append(f"uncaught: {exc}"))
        self.tabs.append(tab)
        return tab

    async def shot(self, tab: Tab, name: str) -> None:
        path = self.shots / f"{name}.png"
        await tab.page.screenshot(path=str(path), full_page=True)
        copy_to = os.environ.get("WEB_SCREENSHOTS_DIR")
        if copy_to:
            await asyncio.to_thread(_copy, path, Path(copy_to))


def _copy(path: Path, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, directory / path.name)


@pytest.fixture
async def web(web_stack: LiveStack, browser: Browser, tmp_path: Path) -> AsyncIterator[Web]:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    site = Web(web_stack, browser, shots)
    try:
        yield site
    finally:
        for tab in site.tabs:
            await tab.context.close()
    problems = [(i, e) for i, tab in enumerate(site.tabs) for e in tab.unexpected()]
    assert not problems, f"console errors on the pages: {problems}"


@pytest.fixture
async def api(web_stack: LiveStack) -> AsyncIterator[httpx.AsyncClient]:
    async with web_stack.client() as client:
        yield client


Headers = dict[str, str]


async def login(api: httpx.AsyncClient, email: str, password: str) -> dict[str, Any]:
    answer = await api.post("/auth/login", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    pair: dict[str, Any] = answer.json()
    return pair


async def admin_headers(api: httpx.AsyncClient, live: LiveStack) -> Headers:
    pair = await login(api, live.env["ADMIN_EMAIL"], live.env["ADMIN_PASSWORD"])
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def new_buyer(api: httpx.AsyncClient) -> tuple[str, str]:
    """A registered buyer: (email, refresh token of a fresh sign-in)."""
    email = f"buyer-{uuid.uuid4().hex[:10]}@example.test"
    answer = await api.post(
        "/auth/register", json={"email": email, "password": "correct horse", "name": "Buyer"}
    )
    assert answer.status_code == 201, answer.text
    pair = await login(api, email, "correct horse")
    return email, str(pair["refresh_token"])


def seats(rows: str, per_row: int) -> list[str]:
    return [f"{row}-{n}" for row in rows for n in range(1, per_row + 1)]


async def published_event(
    api: httpx.AsyncClient,
    headers: Headers,
    *,
    zones: list[dict[str, Any]],
    queue: dict[str, Any] | None = None,
    name: str = "Browser drop",
    paused: bool = False,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    body = {
        "name": name,
        "venue": "Test Arena",
        "starts_at": (now + timedelta(days=30)).isoformat(),
        "sale_starts_at": (now - timedelta(minutes=1)).isoformat(),
        "max_per_user": 4,
        "currency": "EUR",
        "zones": zones,
        "queue": queue or {"enabled": False},
    }
    created = await api.post("/events", json=body, headers=headers)
    assert created.status_code == 201, created.text
    event_id = created.json()["event_id"]
    if paused:
        patched = await api.patch(
            f"/events/{event_id}/queue", json={"paused": True}, headers=headers
        )
        assert patched.status_code == 200, patched.text
    published = await api.post(f"/events/{event_id}/publish", headers=headers)
    assert published.status_code == 200, published.text
    event: dict[str, Any] = published.json()
    return event


WaitFor = Callable[[], Awaitable[bool]]


async def new_organizer(api: httpx.AsyncClient, live: LiveStack) -> tuple[str, str, Headers]:
    """A plain organizer account (not an admin): (email, password, its auth headers). Made the
    way `python -m booking users add --role organizer` makes one."""
    from booking.auth import hash_password
    from booking.store.users import upsert_user

    email = f"organizer-{uuid.uuid4().hex[:10]}@example.test"
    password = "organizer horse"
    async with live.database() as pool:
        await upsert_user(
            pool,
            email=email,
            name="Organizer",
            role="organizer",
            password_hash=await hash_password(password),
        )
    pair = await login(api, email, password)
    return email, password, {"Authorization": f"Bearer {pair['access_token']}"}


async def draft_event(api: httpx.AsyncClient, headers: Headers, name: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    created = await api.post(
        "/events",
        json={
            "name": name,
            "venue": "Test Arena",
            "starts_at": (now + timedelta(days=30)).isoformat(),
            "sale_starts_at": (now - timedelta(minutes=1)).isoformat(),
            "max_per_user": 4,
            "currency": "EUR",
            "zones": [{"name": "Floor", "capacity": 20, "price_minor": 2000}],
            "queue": {"enabled": False},
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    event: dict[str, Any] = created.json()
    return event
