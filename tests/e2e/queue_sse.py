"""A small SSE client over aiohttp for the queue e2e tests (many streams from one process), and
the steps of a queued sale through the gateway those tests share."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx
import orjson


@dataclass
class Frame:
    event: str
    data: Any
    id: str | None


async def frames(response: aiohttp.ClientResponse) -> AsyncIterator[Frame]:
    """The events of a text/event-stream response (comment heartbeats skipped)."""
    data: list[str] = []
    event_id: str | None = None
    event = "message"
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                yield Frame(event, orjson.loads("\n".join(data)), event_id)
            event, data, event_id = "message", [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value


def epoch_ms_of(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


async def queued_event(
    gateway: httpx.AsyncClient,
    organizer: dict[str, str],
    *,
    capacity: int,
    sale_starts_at: datetime | None = None,
    **queue: Any,
) -> dict[str, Any]:
    starts = sale_starts_at or datetime(2021, 1, 1, tzinfo=UTC)
    created = await gateway.post(
        "/events",
        headers=organizer,
        json={
            "name": f"queue-{uuid.uuid4().hex[:6]}",
            "venue": "Loopback",
            "starts_at": "2031-01-01T20:00:00Z",
            "sale_starts_at": starts.isoformat(),
            "max_per_user": 4,
            "currency": "EUR",
            "zones": [{"name": "Floor", "capacity": capacity, "price_minor": 2500}],
            "queue": {"enabled": True, **queue},
        },
    )
    assert created.status_code == 201, created.text
    event = created.json()
    published = await gateway.post(f"/events/{event['event_id']}/publish", headers=organizer)
    assert published.status_code == 200, published.text
    return published.json()


async def patch_queue(
    gateway: httpx.AsyncClient, organizer: Any, event_id: str, **body: Any
) -> None:
    answer = await gateway.patch(f"/events/{event_id}/queue", json=body, headers=organizer)
    assert answer.status_code == 200, answer.text


async def reserve_with_pass(
    gateway: httpx.AsyncClient, headers: dict[str, str], event: dict[str, Any], queue_pass: Any
) -> httpx.Response:
    extra = {"X-Queue-Pass": queue_pass} if queue_pass else {}
    return await gateway.post(
        "/bookings/reserve",
        headers={**headers, **extra, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "event_id": event["event_id"],
            "zone_id": event["zones"][0]["zone_id"],
            "quantity": 1,
        },
    )


async def join_all(
    gateway: httpx.AsyncClient, buyers: list[dict[str, str]], event_id: str
) -> list[int]:
    limit = asyncio.Semaphore(50)

    async def join(headers: dict[str, str]) -> int:
        async with limit:
            answer = await gateway.post("/queue/join", json={"event_id": event_id}, headers=headers)
        assert answer.status_code == 202, answer.text
        return int(answer.json()["position"])

    return list(await asyncio.gather(*(join(headers) for headers in buyers)))


async def await_pass(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    opened: asyncio.Semaphore | None = None,
) -> tuple[Frame, float, list[Frame]]:
    """Streams until the pass arrives; returns it, its arrival (epoch s) and what came before."""
    seen: list[Frame] = []
    async with session.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for frame in frames(response):
            if frame.event == "pass":
                return frame, time.time(), seen
            seen.append(frame)
            if opened is not None and len(seen) == 1:
                opened.release()
    raise AssertionError(f"stream ended without a pass: {seen}")
