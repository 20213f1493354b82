"""The gateway's lean HTTP/1.1 client (gateway/upstream.py) against a scripted upstream on a real
loopback socket: keep-alive reuse, chunked and HEAD answers, cut answers, back-pressure on
streams, idle expiry and the connection cap."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest

from gateway.upstream import (
    HIGH_WATER,
    UpstreamClosedError,
    UpstreamNotSentError,
    UpstreamPool,
    UpstreamProtocolError,
    encode_request,
)
from tests.gateway.raw_http import read_request

Answer = Callable[[bytes], bytes | None]  # request head -> raw answer (None: close at once)
CLOSE_AFTER = b"<close>"  # an answer ending with this is written, then the connection closed


def then_close(raw: bytes) -> bytes:
    return raw + CLOSE_AFTER


class ScriptedUpstream:
    """Reads requests (heads only; bodies by Content-Length) and writes scripted answers."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head, body = await read_request(reader)
                self.requests.append(head + body)
                raw = self.answer(head)
                if raw is None:
                    break
                closing = raw.endswith(CLOSE_AFTER)
                writer.write(raw.removesuffix(CLOSE_AFTER))
                await writer.drain()
                if closing:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@asynccontextmanager
async def scripted(
    answer: Answer, **pool_options: float
) -> AsyncIterator[tuple[ScriptedUpstream, UpstreamPool]]:
    upstream = ScriptedUpstream(answer)
    upstream.server = await asyncio.start_server(upstream._serve, "127.0.0.1", 0)
    options = {"connect_timeout_s": 2.0, "limit": 8, "idle_s": 30.0, **pool_options}
    pool = UpstreamPool(
        "127.0.0.1",
        upstream.port,
        connect_timeout_s=options["connect_timeout_s"],
        limit=int(options["limit"]),
        idle_s=options["idle_s"],
    )
    try:
        yield upstream, pool
    finally:
        pool.close()
        upstream.server.close()
        await upstream.server.wait_closed()


def ok(body: bytes = b'{"ok":true}', extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n"
        + extra
        + b"\r\n"
        + body
    )


async def call(
    pool: UpstreamPool, method: str = "GET", body: bytes | None = None
) -> tuple[int, bytes]:
    exchange = await pool.acquire()
    try:
        await exchange.send(
            encode_request(method, b"/api/v1/x", pool.authority, [(b"x-test", b"1")], body),
            head_request=method == "HEAD",
        )
        return exchange.status, await exchange.read_all(1 << 20)
    finally:
        pool.release(exchange)


async def test_sequential_requests_reuse_one_connection() -> None:
    async with scripted(lambda head: ok()) as (upstream, pool):
        for _ in range(20):
            assert await call(pool, "POST", b'{"a":1}') == (200, b'{"ok":true}')
    assert upstream.connections == 1
    assert len(upstream.requests) == 20
    first = upstream.requests[0]
    assert first.startswith(b"POST /api/v1/x HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"\r\nx-test: 1\r\n" in first and b"content-length: 7\r\n\r\n" in first
    assert first.endswith(b'{"a":1}')


async def test_concurrent_requests_open_connections_up_to_the_cap() -> None:
    async with scripted(lambda head: ok(), limit=3) as (upstream, pool):
        held = [await pool.acquire() for _ in range(3)]
        waiting = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.1)
        assert not waiting.done()  # the fourth waits for a slot
        for exchange in held:
            exchange.close()
            pool.release(exchange)
        extra = await asyncio.wait_for(waiting, 2)
        pool.release(extra)
    assert upstream.connections == 4


async def test_chunked_answer_is_read_whole() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    async with scripted(lambda head: chunked) as (upstream, pool):
        assert await call(pool) == (200, b"hello world")
        assert await call(pool) == (200, b"hello world")
    assert upstream.connections == 1


def head_or_empty(head: bytes) -> bytes:
    if head.startswith(b"HEAD"):
        return ok()[: -len(b'{"ok":true}')]  # announces 11 bytes, sends none
    return ok(b"")


async def test_head_answer_ends_at_its_headers_and_is_not_reused() -> None:
    async with scripted(head_or_empty) as (upstream, pool):
        status, body = await asyncio.wait_for(call(pool, "HEAD"), 2)
        assert (status, body) == (200, b"")
        assert await call(pool) == (200, b"")
    assert upstream.connections == 2


async def test_connection_close_answer_is_not_reused() -> None:
    async with scripted(lambda head: ok(extra=b"connection: close\r\n")) as (upstream, pool):
        await call(pool)
        await call(pool)
    assert upstream.connections == 2


async def test_upstream_closing_mid_answer_is_an_error() -> None:
    cut = then_close(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
    async with scripted(lambda head: cut) as (_upstream, pool):
        exchange = await pool.acquire()
        await exchange.send(
            encode_request("GET", b"/", pool.authority, [], None), head_request=False
        )
        with pytest.raises(UpstreamClosedError):
            await asyncio.wait_for(exchange.read_all(1 << 20), 2)
        pool.release(exchange)
        assert not exchange.reusable()


async def test_upstream_hanging_up_without_answer_fails_the_request() -> None:
    async with scripted(lambda head: None) as (_upstream, pool):
        with pytest.raises(UpstreamClosedError):
            await asyncio.wait_for(call(pool), 2)


async def test_hang_up_without_answer_is_marked_sent_and_unanswered() -> None:
    """What the proxy's failover reads: written, and not one byte came back."""
    async with scripted(lambda head: None) as (_upstream, pool):
        exchange = await pool.acquire()
        with pytest.raises(UpstreamClosedError):
            await asyncio.wait_for(
                exchange.send(
                    encode_request("POST", b"/", pool.authority, [], b"{}"), head_request=False
                ),
                2,
            )
        assert exchange.sent and not exchange.answered
        pool.release(exchange)


async def test_a_connection_closed_while_idle_refuses_to_send() -> None:
    async with scripted(lambda head: then_close(ok())) as (_upstream, pool):
        exchange = await pool.acquire()
        await exchange.send(
            encode_request("GET", b"/", pool.authority, [], None), head_request=False
        )
        await exchange.read_all(1 << 20)
        await asyncio.sleep(0.1)  # the upstream's close arrives
        exchange.finish()  # as if pooled before the close was seen
        with pytest.raises(UpstreamNotSentError):
            await exchange.send(
                encode_request("POST", b"/", pool.authority, [], b"{}"), head_request=False
            )
        assert not exchange.sent
        pool.release(exchange)


async def test_a_500_answer_is_not_reused() -> None:
    error = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 2\r\n\r\n{}"
    async with scripted(lambda head: error) as (upstream, pool):
        assert await call(pool) == (500, b"{}")
        assert await call(pool) == (500, b"{}")
    assert upstream.connections == 2


class ThreadUpstream:
    """A blocking upstream in a thread of its own: it answers one request per connection and
    closes the first connection when told, while the test's event loop is held still."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.connections = 0
        self.stopping = False
        self.close_first = threading.Event()
        self.first_closed = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        kept = []
        while True:
            connection, _ = self.listener.accept()
            if self.stopping:
                connection.close()
                break
            self.connections += 1
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            connection.sendall(ok())
            if self.connections == 1:
                self.close_first.wait(5)
                connection.close()
                self.first_closed.set()
            else:
                kept.append(connection)
        for connection in kept:
            connection.close()


@contextmanager
def thread_upstream() -> Iterator[tuple[ThreadUpstream, UpstreamPool]]:
    upstream = ThreadUpstream()
    upstream.thread.start()
    pool = UpstreamPool("127.0.0.1", upstream.port, connect_timeout_s=2.0, limit=8, idle_s=30.0)
    try:
        yield upstream, pool
    finally:
        pool.close()
        upstream.stopping = True
        upstream.close_first.set()
        socket.create_connection(("127.0.0.1", upstream.port)).close()  # wakes accept()
        upstream.thread.join(5)
        upstream.listener.close()


async def test_a_close_the_event_loop_has_not_seen_yet_keeps_the_connection_out_of_use() -> None:
    with thread_upstream() as (upstream, pool):
        assert await call(pool) == (200, b'{"ok":true}')
        # The upstream closes the pooled connection while this loop does not run (blocking
        # waits): the FIN is in the kernel, no callback has seen it.
        upstream.close_first.set()
        assert upstream.first_closed.wait(2)
        time.sleep(0.05)  # noqa: ASYNC251 - holding the loop still is the point
        assert await asyncio.wait_for(call(pool), 2) == (200, b'{"ok":true}')
        assert upstream.connections == 2


async def test_a_connection_the_upstream_closes_while_idle_leaves_the_pool() -> None:
    with thread_upstream() as (upstream, pool):
        await call(pool)
        assert len(pool._idle) == 1
        upstream.close_first.set()
        assert await asyncio.to_thread(upstream.first_closed.wait, 2)
        for _ in range(100):
            if not pool._idle:
                break
            await asyncio.sleep(0.01)
        assert pool._idle == [] and pool._open == set()


async def test_garbage_answer_is_a_protocol_error() -> None:
    async with scripted(lambda head: b"NOT HTTP AT ALL\r\n\r\n") as (_upstream, pool):
        with pytest.raises(UpstreamProtocolError):
            await asyncio.wait_for(call(pool), 2)


async def test_body_beyond_the_limit_is_refused() -> None:
    async with scripted(lambda head: ok(b"x" * 5000)) as (_upstream, pool):
        exchange = await pool.acquire()
        await exchange.send(
            encode_request("GET", b"/", pool.authority, [], None), head_request=False
        )
        with pytest.raises(UpstreamProtocolError):
            await asyncio.wait_for(exchange.read_all(1000), 2)
        pool.release(exchange)


async def test_a_connection_reused_after_a_large_answer_reads_the_next_one() -> None:
    # An answer above HIGH_WATER pauses reading while it is buffered; the connection must be
    # reading again when it goes back to the pool, or the next answer is never read.
    large = b"x" * (HIGH_WATER * 3)
    async with scripted(lambda head: ok(large if b" /large " in head else b"{}")) as (
        upstream,
        pool,
    ):
        for _ in range(3):
            exchange = await pool.acquire()
            await exchange.send(
                encode_request("GET", b"/large", pool.authority, [], None), head_request=False
            )
            assert await asyncio.wait_for(exchange.read_all(1 << 22), 2) == large
            pool.release(exchange)
            exchange = await pool.acquire()
            await asyncio.wait_for(
                exchange.send(
                    encode_request("GET", b"/small", pool.authority, [], None),
                    head_request=False,
                ),
                2,
            )
            assert await asyncio.wait_for(exchange.read_all(1 << 20), 2) == b"{}"
            pool.release(exchange)
    assert upstream.connections == 1


async def test_idle_connection_past_its_time_is_not_reused() -> None:
    async with scripted(lambda head: ok(), idle_s=0.2) as (upstream, pool):
        await call(pool)
        await asyncio.sleep(0.4)
        await call(pool)
    assert upstream.connections == 2


async def test_stream_chunks_arrive_as_sent_and_reading_pauses_for_a_slow_reader() -> None:
    big = b"y" * (HIGH_WATER * 3)
    stream = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        + f"{len(big):x}".encode()
        + b"\r\n"
        + big
        + b"\r\n0\r\n\r\n"
    )
    async with scripted(lambda head: stream) as (_upstream, pool):
        exchange = await pool.acquire(capped=False)
        await exchange.send(
            encode_request("GET", b"/", pool.authority, [], None), head_request=False
        )
        await asyncio.sleep(0.3)  # the upstream wrote everything; nobody read yet
        assert exchange._paused  # reading stopped instead of buffering without bound
        received = b"".join([chunk async for chunk in exchange.chunks()])
        assert received == big
        pool.release(exchange, capped=False)
