"""An upstream that closes keep-alive connections costs no request but the one that failed: after
a 500 (announced with `Connection: close` or not, closed at once or a moment later), around a
short upstream keep-alive, and when every pooled connection died silently, the other requests
through the gateway are answered, POSTs without Idempotency-Key included, none delivered twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.gateway.raw_http import read_request

PROBLEM = b'{"code":"internal_error"}'
OK = b'{"ok":true}'


def answer(status: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body
    )


class ClosingUpstream:
    """Answers 200 with keep-alive, except `/api/v1/boom`: a 500, after which it closes the
    connection without reading on (`announce`: says `Connection: close`; `linger_s`: closes
    only that long after the answer, as a server that logs the error first). `idle_s`: closes
    a connection idle that long (a short keep-alive timeout). `first_answer_s`: delays the
    first answer on each connection. After `kill_connections()` every connection open at that
    moment resets when its next request arrives, unanswered (flows a middlebox dropped)."""

    def __init__(
        self,
        *,
        announce: bool = False,
        linger_s: float = 0.0,
        idle_s: float = 0.0,
        first_answer_s: float = 0.0,
    ) -> None:
        self.announce = announce
        self.linger_s = linger_s
        self.idle_s = idle_s
        self.first_answer_s = first_answer_s
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.open: set[asyncio.StreamWriter] = set()
        self.dead: set[asyncio.StreamWriter] = set()
        self.handlers: set[asyncio.Task[None]] = set()

    def kill_connections(self) -> None:
        self.dead |= self.open

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.open.add(writer)
        self.connections += 1
        first = True
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_s or None):
                        head, _ = await read_request(reader)
                except TimeoutError:
                    return  # idle past its keep-alive
                if writer in self.dead:
                    writer.transport.abort()
                    return
                self.requests.append(head)
                if first and self.first_answer_s:
                    await asyncio.sleep(self.first_answer_s)
                first = False
                if b" /api/v1/boom " in head.split(b"\r\n", 1)[0]:
                    extra = b"connection: close\r\n" if self.announce else b""
                    writer.write(answer(b"500 Internal Server Error", PROBLEM, extra))
                    await writer.drain()
                    await asyncio.sleep(self.linger_s)
                    return
                writer.write(answer(b"200 OK", OK))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open.discard(writer)
            self.handlers.discard(task)
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@asynccontextmanager
async def closing_upstream(**options: Any) -> AsyncIterator[ClosingUpstream]:
    upstream = ClosingUpstream(**options)
    upstream.server = await asyncio.start_server(upstream._serve, "127.0.0.1", 0)
    try:
        yield upstream
    finally:
        upstream.server.close()
        for writer in list(upstream.open):
            writer.transport.abort()
        await asyncio.gather(*upstream.handlers, return_exceptions=True)


async def call(client: httpx.AsyncClient, index: int, headers: dict[str, str]) -> None:
    """Every third call is the deliberate 500; the others are POSTs that are unsafe to repeat."""
    if index % 3 == 0:
        answer = await client.post("/api/v1/boom", json={"i": index}, headers=headers)
        assert answer.status_code == 500, answer.text
    else:
        answer = await client.post("/api/v1/bookings/reserve", json={"i": index}, headers=headers)
        assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="closes-at-once"),
        pytest.param({"linger_s": 0.05}, id="closes-a-moment-later"),
        pytest.param({"announce": True, "linger_s": 0.05}, id="says-close-closes-later"),
        # Not traced by coverage: the upstream's 50 ms keep-alive is an exact timer, and under
        # line tracing a batch of 30 in-process requests is slow enough that a pooled connection
        # is reused just as the upstream closes it (an unsafe POST then rightly gets 502).
        pytest.param({"idle_s": 0.05}, id="short-keep-alive", marks=pytest.mark.no_cover),
    ],
)
async def test_a_500_that_closes_the_connection_fails_no_other_request(
    start_gateway: Callable[..., Any], token_for: Callable[..., str], options: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {token_for()}"}
    async with closing_upstream(**options) as upstream:
        async with start_gateway(upstreams=(upstream.url,)) as client:
            for index in range(30):
                await call(client, index, headers)
            for _ in range(3):
                await asyncio.gather(*(call(client, index, headers) for index in range(30)))
                await asyncio.sleep(0.1)  # past a short keep-alive: the upstream closed them
        # Each request reached the upstream once: nothing was delivered twice.
        assert len(upstream.requests) == 30 * 4


async def test_a_retry_takes_a_new_connection_when_the_pooled_ones_died(
    start_gateway: Callable[..., Any], token_for: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {token_for()}"}
    async with closing_upstream(first_answer_s=0.1) as upstream:
        async with start_gateway(upstreams=(upstream.url,)) as client:
            # Slow first answers: eight concurrent requests leave eight pooled connections.
            warm = [client.get("/api/v1/bookings", headers=headers) for _ in range(8)]
            await asyncio.gather(*warm)
            assert upstream.connections == 8
            upstream.kill_connections()
            for _ in range(4):
                answer = await client.get("/api/v1/bookings", headers=headers)
                assert answer.status_code == 200, answer.text
