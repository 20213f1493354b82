"""Fixtures of the queue tests: the in-process app of tests/api, a queue-release worker on the
real Redis with a steerable clock, and queue-enabled events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from booking.inventory.scripts import epoch_ms
from tests.api import conftest as api_fixtures
from tests.api.conftest import event_payload
from workers.queue_release import QueueRelease
from workers.resources import open_queue
from workers.settings import WorkerSettings

TICK_S = 0.2

# The in-process app and its helpers, shared with tests/api.
settings = api_fixtures.settings
app = api_fixtures.app
client = api_fixtures.client
token_for = api_fixtures.token_for
make_user = api_fixtures.make_user


class Clock:
    """Real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return epoch_ms() + self.offset_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def release(redis_url: str, service_env: dict[str, str], clock: Clock) -> AsyncIterator[Any]:
    settings = WorkerSettings(redis_url=redis_url, interval_s=TICK_S)
    async with open_queue(settings) as store:
        worker = QueueRelease(settings, store, secret=service_env["INTERNAL_SECRET"], clock=clock)
        await worker.start()
        try:
            yield worker
        finally:
            await worker.stop()


@pytest.fixture
def queued_event(client: httpx.AsyncClient, make_user: Any) -> Any:
    """Creates and publishes a queue-enabled event; returns (event body, organizer headers)."""

    async def make(**queue: Any) -> tuple[dict[str, Any], dict[str, str]]:
        overrides = dict(queue)
        sale_starts_at = overrides.pop("sale_starts_at", "2020-01-01T10:00:00Z")
        zones = overrides.pop("zones", None)
        queue_settings = {
            "enabled": True,
            "max_concurrent": 3,
            "release_per_tick": 2,
            "pass_ttl_s": 60,
        }
        queue_settings.update(overrides)
        payload = event_payload(queue=queue_settings, sale_starts_at=sale_starts_at)
        if zones is not None:
            payload["zones"] = zones
        _, organizer = await make_user("organizer")
        created = await client.post("/api/v1/events", json=payload, headers=organizer)
        assert created.status_code == 201, created.text
        event_id = created.json()["event_id"]
        published = await client.post(f"/api/v1/events/{event_id}/publish", headers=organizer)
        assert published.status_code == 200, published.text
        return published.json(), organizer

    return make
