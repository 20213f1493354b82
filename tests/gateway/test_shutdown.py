"""`python -m gateway serve` exits within 10 s of SIGTERM with SSE streams relayed and a request
still waiting for its upstream (uvicorn's timeout_graceful_shutdown)."""

from __future__ import annotations

import asyncio
import contextlib
import os

import httpx

from tests.api.test_shutdown import (
    EXIT_WITHIN_S,
    kill,
    open_streams,
    sigterm_and_time_exit,
    start_server_process,
    wait_healthy,
)
from tests.gateway.conftest import HS_SECRET, free_port

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


async def _endless_upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Streams answer one event, then stay open forever; anything else is never answered."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        if b"/stream" in head.split(b"\r\n", 1)[0]:
            event = b"event: hello\ndata: {}\n\n"
            writer.write(SSE_HEAD + f"{len(event):x}\r\n".encode() + event + b"\r\n")
            await writer.drain()
        await asyncio.sleep(3600)
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def test_gateway_exits_within_10s_of_sigterm_with_open_streams(redis_url: str) -> None:
    upstream = await asyncio.start_server(_endless_upstream, "127.0.0.1", 0)
    upstream_port = upstream.sockets[0].getsockname()[1]
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "BOOKING_URL": f"http://127.0.0.1:{upstream_port}",
        "REDIS_URL": redis_url,
        "JWT_SECRET": HS_SECRET,
        "UPSTREAM_TIMEOUT_S": "60",
        "LOG_LEVEL": "WARNING",
    }
    process = await start_server_process("gateway", env)
    client = None
    waiting: asyncio.Task[httpx.Response] | None = None
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_healthy(f"{base}/api/v1/health", process)
        client, _streams = await open_streams(f"{base}/api/v1/events/e1/availability/stream", 3)
        # A public GET whose upstream never answers: in flight when SIGTERM arrives.
        waiting = asyncio.ensure_future(client.get(f"{base}/api/v1/events"))
        await asyncio.sleep(0.3)
        elapsed = await sigterm_and_time_exit(process)
        assert elapsed < EXIT_WITHIN_S, f"exited {elapsed:.1f} s after SIGTERM"
    finally:
        await kill(process)
        if waiting is not None:
            waiting.cancel()
            with contextlib.suppress(BaseException):
                await waiting
        if client is not None:
            await client.aclose()
        upstream.close()
