"""Both servers keep an idle client connection longer than a client keeps it (httpx 5 s, load
balancers 60 s), so a client reusing its idle connection never races the server's close."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from tests.e2e.conftest import LiveStack

# Past httpx's idle expiry and uvicorn's own default keep-alive, both 5 s.
IDLE_S = 6.5


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> bytes:
    writer.write(f"GET /api/v1/health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await asyncio.wait_for(reader.readexactly(length), timeout=10)
    return head.split(b"\r\n", 1)[0]


async def test_an_idle_connection_outlives_the_clients_idle_timeout(
    live_stack: LiveStack,
) -> None:
    servers = [urlsplit(live_stack.gateway_url), urlsplit(live_stack.booking_url)]
    connections = [await asyncio.open_connection(url.hostname, url.port) for url in servers]
    try:
        for (reader, writer), url in zip(connections, servers, strict=True):
            assert await _ask(reader, writer, url.netloc) == b"HTTP/1.1 200 OK"
        await asyncio.sleep(IDLE_S)
        for (reader, writer), url in zip(connections, servers, strict=True):
            assert not reader.at_eof(), f"{url.netloc} closed an idle connection after {IDLE_S} s"
            assert await _ask(reader, writer, url.netloc) == b"HTTP/1.1 200 OK"
    finally:
        for _, writer in connections:
            writer.close()
