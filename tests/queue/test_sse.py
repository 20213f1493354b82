"""The SSE response (`booking.sse`) served by a real uvicorn on loopback, read by a raw socket:
headers and frame format, heartbeats when idle, a client that leaves or stops reading ends the
stream and closes its source, and a cancelled stream (uvicorn's shutdown) ends cleanly."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.types import Message

from booking.sse import HEARTBEAT, Ending, EventStream, frame
from tests.serving import uvicorn_serving

HEARTBEAT_S = 0.3


class ScriptedSource:
    """A frame source the test drives: `push` frames, `finish` it; records how it ended."""

    def __init__(self, endless: bytes = b"") -> None:
        self.endless = endless  # when set: always has this much more to send
        self.pending: list[bytes] = []
        self.finished = False
        self.ready: Callable[[], None] | None = None
        self.endings: list[Ending] = []
        self.closed = asyncio.Event()

    def listen(self, ready: Callable[[], None]) -> None:
        self.ready = ready

    def take(self) -> bytes | None:
        if self.endless:
            return self.endless
        if self.pending:
            out, self.pending = b"".join(self.pending), []
            return out
        return None if self.finished else b""

    def close(self, ending: Ending) -> None:
        self.endings.append(ending)
        self.closed.set()

    def push(self, data: bytes) -> None:
        self.pending.append(data)
        assert self.ready is not None
        self.ready()

    def finish(self) -> None:
        self.finished = True
        assert self.ready is not None
        self.ready()


@asynccontextmanager
async def serving(source: ScriptedSource, **options: Any) -> AsyncIterator[int]:
    """uvicorn (httptools, as the booking service runs it) serving one stream of `source`."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            options.setdefault("heartbeat_s", HEARTBEAT_S)
            await EventStream(source, **options)(scope, receive, send)

    config = {"http": "httptools", "lifespan": "off", "log_config": None}
    async with uvicorn_serving(app, within_s=10, **config) as port:
        yield port


async def _request(port: int, method: str = "GET", receive_buffer: int | None = None) -> Any:
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(f"{method} /stream HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return reader, writer, head.decode().lower()


async def _read_until(reader: asyncio.StreamReader, needle: bytes, within: float = 3) -> bytes:
    async with asyncio.timeout(within):
        return await reader.readuntil(needle)


def test_frame_format() -> None:
    assert frame("position", b'{"position":3}', 42) == (
        b'id: 42\nevent: position\ndata: {"position":3}\n\n'
    )
    assert frame("availability", b"{}") == b"event: availability\ndata: {}\n\n"
    assert HEARTBEAT.startswith(b":") and HEARTBEAT.endswith(b"\n\n")


async def test_headers_frames_heartbeat_then_the_end() -> None:
    source = ScriptedSource()
    async with serving(source) as port:
        tasks_before = len(asyncio.all_tasks())
        reader, writer, head = await _request(port)
        # The request's own task, and the loop's one clock: no task of its own per stream.
        assert len(asyncio.all_tasks()) - tasks_before <= 2
        assert head.startswith("http/1.1 200")
        for header in (
            "content-type: text/event-stream; charset=utf-8",
            "cache-control: no-store",
            "x-accel-buffering: no",
        ):
            assert header in head

        source.push(frame("position", b'{"position":3}', 42))
        body = await _read_until(reader, b"\n\n")
        assert body.endswith(b'id: 42\nevent: position\ndata: {"position":3}\n\n')

        idle_from = time.monotonic()
        await _read_until(reader, HEARTBEAT, within=HEARTBEAT_S * 4)
        assert time.monotonic() - idle_from >= HEARTBEAT_S * 0.9  # only when idle that long

        source.push(frame("pass", b"{}", 43))
        source.finish()
        rest = await _read_until(reader, b"0\r\n\r\n")  # the last chunk: the response is over
        assert b"id: 43\nevent: pass\ndata: {}\n\n" in rest
        async with asyncio.timeout(2):
            await source.closed.wait()
        assert source.endings == ["finished"]
        writer.close()


async def test_a_client_that_leaves_ends_the_stream_within_a_heartbeat() -> None:
    source = ScriptedSource()
    async with serving(source) as port:
        _, writer, _ = await _request(port)
        writer.close()
        left_at = time.monotonic()
        async with asyncio.timeout(HEARTBEAT_S * 4 + 1):
            await source.closed.wait()
        assert time.monotonic() - left_at < HEARTBEAT_S * 4
        assert source.endings == ["disconnected"]


async def test_a_client_that_stops_reading_is_dropped_as_too_slow() -> None:
    source = ScriptedSource(endless=b": filler\n\n" * 100_000)  # ~1 MB per write
    async with serving(source, send_timeout_s=0.5) as port:
        # A small receive buffer, never read: the server's writes soon wait for it.
        _, writer, _ = await _request(port, receive_buffer=4096)
        async with asyncio.timeout(30):
            await source.closed.wait()
        assert source.endings == ["too_slow"]
        writer.close()


async def test_head_gets_the_headers_only() -> None:
    source = ScriptedSource()
    async with serving(source) as port:
        _, writer, head = await _request(port, "HEAD")
        assert head.startswith("http/1.1 200") and "text/event-stream" in head
        async with asyncio.timeout(2):
            await source.closed.wait()
        assert source.endings == ["finished"]
        writer.close()


async def test_a_cancelled_stream_ends_cleanly() -> None:
    """uvicorn cancels the requests still open when its graceful shutdown times out: the stream
    ends with its last chunk instead of raising (one traceback per stream in the log)."""
    source = ScriptedSource()
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    scope = {"type": "http", "method": "GET"}
    task = asyncio.create_task(EventStream(source, heartbeat_s=30)(scope, receive, send))
    await asyncio.sleep(0.05)
    task.cancel()
    await task  # returns: the cancellation was handled
    assert not task.cancelled()
    assert source.endings == ["cancelled"]
    assert sent[0]["type"] == "http.response.start"
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
