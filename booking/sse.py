"""Server-sent events: a plain ASGI response that writes what a `FrameSource` has ready, with
comment heartbeats, and no task or timer of its own per stream.

sse-starlette ran a task group per stream (writer, pinger, disconnect listener, shutdown
watcher); at thousands of streams per process those tasks were most of the memory and of the
CPU spent opening streams. Here the request's own task writes, and one `StreamClock` task per
event loop keeps time for every stream:

- Sources push: a source calls `ready()` when it has something new; the writer then `take()`s
  it, encoded, and sends it in one write. Sources keep bounded state (they coalesce or drop), so
  a slow client never grows memory without bound.
- Heartbeats: the clock wakes a stream idle for `heartbeat_s`; a comment line goes out (proxies
  keep the connection, clients ignore it).
- Slow clients: the clock cancels a write the client has not taken within `send_timeout_s`;
  the stream ends as `too_slow`.
- Disconnects: uvicorn's `send` silently drops writes once the client is gone, and its `receive`
  answers `http.disconnect` at once, without waiting, from then on. So the writer asks `receive`
  without waiting, at most once per `heartbeat_s`: a client that left is noticed within about
  one heartbeat period, at no cost in between.

Whatever ends the response (source finished, client gone, too slow, an error, cancellation), the
source's `close(ending)` runs exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from typing import Literal, Protocol

from starlette.types import Receive, Scope, Send

Ending = Literal["finished", "disconnected", "too_slow", "cancelled", "failed"]

HEARTBEAT = b": ping\n\n"
SEND_TIMEOUT_S = 5.0
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
]
_END = {"type": "http.response.body", "body": b"", "more_body": False}


class FrameSource(Protocol):
    def listen(self, ready: Callable[[], None]) -> None:
        """From now on, call `ready()` (it never waits) whenever `take` has something new."""

    def take(self) -> bytes | None:
        """The events ready now, encoded (b"" when there are none); None once it is over."""

    def close(self, ending: Ending) -> None:
        """The response is over (called once)."""


def frame(event: str, data: bytes, event_id: int | None = None) -> bytes:
    """One SSE event. `data` is one line of JSON (orjson never writes a newline)."""
    head = b"id: %d\n" % event_id if event_id is not None else b""
    return b"%sevent: %s\ndata: %s\n\n" % (head, event.encode(), data)


async def client_gone(receive: Receive) -> bool:
    """True when the client has disconnected; never waits for it."""
    try:
        async with asyncio.timeout(0):  # fires only if `receive` would have to wait
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return True
    except TimeoutError:
        return False


class EventStream:
    """The `text/event-stream` response: headers, then frames until the source ends."""

    def __init__(
        self, source: FrameSource, *, heartbeat_s: float, send_timeout_s: float = SEND_TIMEOUT_S
    ) -> None:
        self.source = source
        self.heartbeat_s = heartbeat_s
        self.send_timeout_s = send_timeout_s
        self.heartbeat_at = math.inf  # the clock wakes the idle writer then
        self.give_up_at = math.inf  # the clock cancels the write in progress then
        self.too_slow = False
        self._task: asyncio.Task[object] | None = None
        self._waiter: asyncio.Future[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ending: Ending = "failed"
        self._task = asyncio.current_task()
        clock = StreamClock.of_running_loop()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            if scope["method"] == "HEAD":  # the headers only, never a stream
                ending = "finished"
            else:
                clock.add(self)
                ending = await self._stream(receive, send)
            if ending == "finished":
                await send(_END)
        except asyncio.CancelledError:
            ending = await self._cancelled(send)
        finally:
            clock.discard(self)
            self.source.close(ending)

    async def _stream(self, receive: Receive, send: Send) -> Ending:
        loop = asyncio.get_running_loop()
        self.source.listen(self.ready)
        check_at = self.heartbeat_at = loop.time() + self.heartbeat_s
        while True:
            frames = self.source.take()
            if frames == b"":
                self._waiter = loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
                frames = self.source.take()
                if frames == b"" and loop.time() >= self.heartbeat_at:
                    frames = HEARTBEAT
            if frames is None:
                return "finished"
            if not frames:
                continue
            now = loop.time()
            self.give_up_at = now + self.send_timeout_s
            await send({"type": "http.response.body", "body": frames, "more_body": True})
            self.give_up_at = math.inf
            self.heartbeat_at = now + self.heartbeat_s
            if now >= check_at:
                if await client_gone(receive):
                    return "disconnected"
                check_at = now + self.heartbeat_s

    async def _cancelled(self, send: Send) -> Ending:
        # Two things cancel a stream: the clock, when the client is too slow, and uvicorn, once
        # its graceful shutdown timed out. Re-raising would make uvicorn log a traceback per
        # stream; instead the stream ends (properly, at shutdown: clients reconnect with their
        # Last-Event-ID, to another instance).
        if self._task is not None:
            self._task.uncancel()
        if self.too_slow:
            return "too_slow"  # no last chunk: this client takes nothing more
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1):
                await send(_END)
        return "cancelled"

    def ready(self) -> None:
        """Wakes the writer if it waits (the source has something, or the heartbeat is due)."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def on_clock(self, now: float) -> None:
        if now >= self.give_up_at:
            if not self.too_slow and self._task is not None:
                self.too_slow = True
                self._task.cancel()
        elif now >= self.heartbeat_at:
            self.ready()


class StreamClock:
    """Keeps time for every open stream of one event loop, in one task: a scan of the streams
    every `period` (half the shortest heartbeat or send timeout, at most a second) instead of a
    timer per stream and per write."""

    _current: StreamClock | None = None

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.streams: set[EventStream] = set()
        self.period = 1.0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def of_running_loop(cls) -> StreamClock:
        loop = asyncio.get_running_loop()
        if cls._current is None or cls._current.loop is not loop:
            cls._current = cls(loop)
        return cls._current

    def add(self, stream: EventStream) -> None:
        self.streams.add(stream)
        shortest = min(stream.heartbeat_s, stream.send_timeout_s)
        self.period = min(self.period, max(0.01, shortest / 2))
        if self._task is None:
            self._task = self.loop.create_task(self._run(), name="sse-clock")

    def discard(self, stream: EventStream) -> None:
        self.streams.discard(stream)

    async def _run(self) -> None:
        try:
            while self.streams:
                await asyncio.sleep(self.period)
                now = self.loop.time()
                for stream in tuple(self.streams):
                    stream.on_clock(now)
        finally:
            self._task = None
