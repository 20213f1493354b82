"""Test clients of the live feed: an SSE watcher (httpx) and a WebSocket watcher (websockets),
both logging every message with its arrival time, so tests can look for one and check order."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

Predicate = Callable[[dict[str, Any]], bool]


@dataclass
class Received:
    index: int
    at: float  # time.monotonic()
    raw: str
    message: dict[str, Any]


class Watch:
    def __init__(self) -> None:
        self.log: list[Received] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _record(self, raw: str) -> None:
        self.log.append(Received(len(self.log), time.monotonic(), raw, orjson.loads(raw)))
        self._arrived.set()

    async def find(self, predicate: Predicate, within: float = 5.0, since: int = 0) -> Received:
        """The first logged message from `since` on that matches, waiting up to `within` s."""
        deadline = time.monotonic() + within
        seen = since
        while True:
            for item in self.log[seen:]:
                if predicate(item.message):
                    return item
            seen = max(seen, len(self.log))
            left = deadline - time.monotonic()
            if left <= 0:
                kinds = [(r.message.get("type"), r.message.get("event_type")) for r in self.log]
                last = self.log[-1].raw if self.log else None
                raise AssertionError(f"nothing matched within {within} s: {kinds}, last {last}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._arrived.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


class SSEWatch(Watch):
    @classmethod
    async def open(cls, url: str) -> SSEWatch:
        watch = cls()
        opened: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        watch._task = asyncio.create_task(watch._read(url, opened))
        status = await asyncio.wait_for(opened, 10)
        assert status == 200, status
        return watch

    async def _read(self, url: str, opened: asyncio.Future[int]) -> None:
        timeout = httpx.Timeout(10, read=None)
        async with (
            httpx.AsyncClient(timeout=timeout) as client,
            client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response,
        ):
            opened.set_result(response.status_code)
            data: list[str] = []
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    self._record("\n".join(data))
                    data = []


class WSWatch(Watch):
    def __init__(self, socket: ClientConnection) -> None:
        super().__init__()
        self.socket = socket

    @classmethod
    async def open(cls, url: str, headers: dict[str, str] | None = None) -> WSWatch:
        socket = await connect(url, additional_headers=headers, open_timeout=10)
        watch = cls(socket)
        watch._task = asyncio.create_task(watch._read())
        return watch

    async def _read(self) -> None:
        async for raw in self.socket:
            self._record(raw if isinstance(raw, str) else raw.decode())

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.socket.send(
            message if isinstance(message, str) else orjson.dumps(message).decode()
        )

    async def close(self) -> None:
        await self.socket.close()
        await super().close()


def is_update(event_type: str, **fields: Any) -> Predicate:
    def matches(message: dict[str, Any]) -> bool:
        return (
            message.get("type") == "seat_update"
            and message.get("event_type") == event_type
            and all(message.get(name) == value for name, value in fields.items())
        )

    return matches


def is_type(kind: str, **fields: Any) -> Predicate:
    def matches(message: dict[str, Any]) -> bool:
        return message.get("type") == kind and all(
            message.get(name) == value for name, value in fields.items()
        )

    return matches
