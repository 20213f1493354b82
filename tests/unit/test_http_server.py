"""The servers' write coalescing (common/http_server.py): writes of one loop turn leave in one
send, closing sends what was gathered first, and a real uvicorn server answers through it with
one socket write per buffered response."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from uvicorn.importer import import_from_string

from common.http_server import HTTP_PROTOCOL, CoalescingHttpToolsProtocol, CoalescingTransport


class RecordingTransport:
    """Stands in for the socket side of a transport: records what would be sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> Any:
        return f"info:{name}"


async def test_writes_of_one_turn_leave_in_one_send() -> None:
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"body")
    assert inner.sent == [] and transport.get_write_buffer_size() == 23
    await asyncio.sleep(0)
    assert inner.sent == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert inner.sent[-1] == b"next"
    assert transport.get_extra_info("peername") == "info:peername"


async def test_close_sends_what_was_gathered_first() -> None:
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"last words")
    transport.close()
    assert inner.sent == [b"last words"] and inner.closed
    await asyncio.sleep(0)
    assert inner.sent == [b"last words"]  # nothing twice


class CountingTransport:
    """Sits between uvicorn's real socket transport and the coalescing wrapper: counts what
    reaches the socket."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


SOCKET_SIDES: list[CountingTransport] = []


class CountedCoalescingProtocol(CoalescingHttpToolsProtocol):
    """The servers' protocol, with the socket's writes counted."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        counting = CountingTransport(transport)
        SOCKET_SIDES.append(counting)
        super().connection_made(counting)  # type: ignore[arg-type]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b"x" * 1000
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def test_uvicorn_serves_keep_alive_requests_through_it_one_write_each() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The servers name the protocol by this string; the test serves a subclass that counts.
    assert import_from_string(HTTP_PROTOCOL) is CoalescingHttpToolsProtocol
    SOCKET_SIDES.clear()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=CountedCoalescingProtocol,
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 (uvicorn offers only this flag)
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for answered in range(1, 4):
            writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert await asyncio.wait_for(reader.readexactly(1000), 5) == b"x" * 1000
            # uvicorn wrote the head and the body separately; the socket got them as one write.
            [socket_side] = SOCKET_SIDES
            assert len(socket_side.writes) == answered
            assert socket_side.writes[-1] == head + b"x" * 1000
        writer.close()
    finally:
        server.should_exit = True
        await serving
