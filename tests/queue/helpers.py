"""Shared steps of the queue tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


async def join(client: httpx.AsyncClient, headers: dict[str, str], event_id: str) -> Any:
    answer = await client.post("/api/v1/queue/join", json={"event_id": event_id}, headers=headers)
    assert answer.status_code == 202, answer.text
    return answer.json()


async def position(client: httpx.AsyncClient, headers: dict[str, str], event_id: str) -> Any:
    return await client.get(f"/api/v1/queue/position/{event_id}", headers=headers)


async def reserve(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    event: dict[str, Any],
    queue_pass: str | None,
    quantity: int = 1,
) -> httpx.Response:
    extra = {"X-Queue-Pass": queue_pass} if queue_pass is not None else {}
    return await client.post(
        "/api/v1/bookings/reserve",
        headers={**headers, **extra, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "event_id": event["event_id"],
            "zone_id": event["zones"][0]["zone_id"],
            "quantity": quantity,
        },
    )
