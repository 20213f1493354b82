"""A small SSE client over aiohttp for the queue e2e tests (many streams from one process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson


@dataclass
class Frame:
    event: str
    data: Any
    id: str | None


async def frames(response: aiohttp.ClientResponse) -> AsyncIterator[Frame]:
    """The events of a text/event-stream response (comment heartbeats skipped)."""
    event, data, event_id = "message", [], None
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
