"""A lean HTTP/1.1 keep-alive client for the one hop the gateway makes on every request.

Why not aiohttp here: profiled under `make bench`, aiohttp's request and response objects
(URL handling, header multidicts, payload writers, timers) cost ~20 % of the gateway's CPU for
a call that is always the same shape: a small request to a known host over a pooled
connection. This client writes the request in one `transport.write`, parses the answer with
httptools (the parser uvicorn already uses) and hands back raw header pairs that go straight
into the ASGI response. aiohttp stays for the WebSocket hop and the readiness probe.

One `Exchange` per request: `Exchange.send()` writes it and returns once the status line and
headers arrived; the body is then read whole (`read_all`) or relayed chunk by chunk (`chunks`,
with back-pressure: reading from upstream pauses while a slow client has not taken what
arrived). A connection goes back to the pool only after a complete answer it may keep alive:
not after `Connection: close`, and not after a 500 (see `Exchange.on_headers_complete`).

A request is never written into a connection the upstream closed: a pooled connection whose
peer closed it while idle leaves the pool as soon as the event loop sees the close, and one
whose close is in the kernel but not yet seen is caught by a zero-timeout poll of its socket
just before reuse (`Exchange.usable`).

For failover (gateway/proxy.py) an exchange records whether its request was written (`sent`)
and whether any byte of an answer came back (`answered`): a connection that ends before either
may be retried elsewhere, within the rules of the request's method.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import cast

import httptools

# Reading from upstream pauses above this many unrelayed bytes and resumes below a quarter.
HIGH_WATER = 256 * 1024


class UpstreamClosedError(Exception):
    """The connection ended before a complete answer arrived."""


class UpstreamNotSentError(UpstreamClosedError):
    """The pooled connection was already closed: the request was never written."""


class UpstreamProtocolError(Exception):
    """The upstream sent something that is not a valid HTTP/1.1 answer."""


class UpstreamTimeoutError(Exception):
    """The request's deadline passed: waiting for a connection, or for the answer. (Not a
    TimeoutError: a connect that times out is a refusal, and goes to the next upstream.)"""


class Exchange(asyncio.Protocol):
    """One pooled connection; it carries one request/answer exchange at a time."""

    def __init__(self, on_idle_close: Callable[[Exchange], None] | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._on_idle_close = on_idle_close
        self._poll: select.poll | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._loop = asyncio.get_running_loop()
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = False
        self.keep_alive = True
        self._busy = False
        self.sent = False
        self.answered = False
        self._head_request = False
        self._headers_ready: asyncio.Future[None] | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._wake: asyncio.Future[None] | None = None
        self._error: Exception | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self._poll = select.poll()
            self._poll.register(sock.fileno(), select.POLLIN)

    def data_received(self, data: bytes) -> None:
        self.answered = True
        if not self._busy:
            self._fail(UpstreamProtocolError("data from upstream with no request in flight"))
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"bad answer from upstream: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._busy and not self.complete:
            self._fail(UpstreamClosedError("upstream closed the connection mid-answer"))
        elif not self._busy and self._on_idle_close is not None:
            self._on_idle_close(self)

    # -- httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        # False on `Connection: close`. And never after a 500: uvicorn drops the connection after
        # an unhandled error, logging it first, so the close can trail the answer by long enough
        # for the next request to be written into it (older booking services do not announce it).
        self.keep_alive = self._parser.should_keep_alive() and self.status != 500
        if self._head_request:
            # The answer to HEAD announces a body it never sends; the parser cannot be told,
            # so the exchange ends here and the connection is not reused.
            self.complete, self.keep_alive = True, False
        if self._headers_ready is not None and not self._headers_ready.done():
            self._headers_ready.set_result(None)
        self._wake_reader()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake_reader()

    # -- the exchange

    def expire_at(self, when: float) -> None:
        """Fail the exchange with UpstreamTimeoutError if its answer is not complete by `when`
        (the loop's clock). One timer per request: cheaper than `asyncio.timeout`, which the
        profile put at ~4.5 % of the gateway's CPU per request."""
        self.disarm()
        self._deadline = self._loop.call_at(when, self._expired)

    def disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.complete:
            self._fail(UpstreamTimeoutError("upstream timed out"))

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        self.keep_alive = False
        if self._headers_ready is not None and not self._headers_ready.done():
            self._headers_ready.set_exception(error)
        self._wake_reader()
        if self.transport is not None:
            self.transport.close()

    def _wake_reader(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def send(self, request: bytes, *, head_request: bool) -> None:
        """Write the request; return once the answer's status and headers are in."""
        assert self.transport is not None
        if self.closed or self.transport.is_closing():
            raise UpstreamNotSentError("the pooled connection was closed before the request")
        self._busy = True
        self.sent = True
        self._head_request = head_request
        self._headers_ready = self._loop.create_future()
        self.transport.write(request)
        await self._headers_ready

    async def _more(self) -> None:
        self._wake = self._loop.create_future()
        try:
            await self._wake
        finally:
            self._wake = None

    def _take(self) -> bytes:
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < HIGH_WATER // 4 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    async def read_all(self, limit: int) -> bytes:
        """The whole body; UpstreamProtocolError beyond `limit` bytes."""
        while True:
            if self._error is not None:
                raise self._error
            if self._buffered > limit:
                error = UpstreamProtocolError(f"answer body larger than {limit} bytes")
                self._fail(error)
                raise error
            if self.complete:
                break
            if self._paused and self.transport is not None:
                self._paused = False  # buffering on purpose: the limit bounds it
                self.transport.resume_reading()
            await self._more()
        body = b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        return body

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive, until the answer is complete."""
        while True:
            while self._chunks:
                yield self._take()
            if self.complete:
                return
            if self._error is not None:
                raise self._error
            await self._more()

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self._error is None

    def usable(self) -> bool:
        """Whether this idle connection can carry a request. Nothing may have arrived on it since
        its last answer: what does is the peer's FIN or RST (or stray bytes), which may be in the
        kernel before the event loop has seen it."""
        if self.closed or self.transport is None or self.transport.is_closing():
            return False
        return self._poll is None or not self._poll.poll(0)

    def finish(self) -> None:
        """Ready the connection for its next request (call only when `reusable()`)."""
        if self._paused and self.transport is not None:
            # A large answer paused reading and was then read whole (`read_all` takes it in
            # one piece, never through `_take`): a connection pooled while paused would never
            # read its next answer, and that request would wait out the gateway's timeout.
            self.transport.resume_reading()
        self._reset()
        self.idle_since = time.monotonic()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def encode_request(
    method: str, target: bytes, host: bytes, headers: list[tuple[bytes, bytes]], body: bytes | None
) -> bytes:
    """An HTTP/1.1 request head (and body) as one buffer."""
    lines = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\nhost: ", host, b"\r\n"]
    for name, value in headers:
        lines += (name, b": ", value, b"\r\n")
    if body is not None:
        lines += (b"content-length: ", str(len(body)).encode("ascii"), b"\r\n\r\n", body)
    elif method in ("POST", "PUT", "PATCH"):
        lines.append(b"content-length: 0\r\n\r\n")
    else:
        lines.append(b"\r\n")
    return b"".join(lines)


class UpstreamPool:
    """Keep-alive connections to one upstream `host:port`, most recently used first.

    Ordinary requests share at most `limit` connections (they queue for one beyond that);
    streams (`capped=False`) take a connection of their own outside the cap, so thousands of
    waiting buyers never starve ordinary requests. Idle connections are dropped after
    `idle_s`, well before the booking service's own keep-alive timeout (75 s), so a request is
    never written into a connection the server is closing.
    """

    def __init__(
        self, host: str, port: int, *, connect_timeout_s: float, limit: int, idle_s: float
    ) -> None:
        self.host, self.port = host, port
        self.authority = f"{host}:{port}".encode("ascii")
        self._connect_timeout_s = connect_timeout_s
        self._idle_s = idle_s
        self._idle: list[Exchange] = []
        self._slots = asyncio.Semaphore(limit)
        self._open: set[Exchange] = set()
        # Until when the round-robin skips this upstream (it refused a connection); 0: never.
        self.down_until = 0.0

    def mark_down(self, for_s: float) -> None:
        """Skip this upstream for `for_s` seconds; its idle connections go (it is likely gone)."""
        self.down_until = time.monotonic() + for_s
        while self._idle:
            self._discard(self._idle.pop())

    def is_down(self) -> bool:
        if self.down_until and self.down_until <= time.monotonic():
            self.down_until = 0.0  # its time is up: tried again like any other
        return self.down_until > 0.0

    async def acquire(
        self, *, capped: bool = True, fresh: bool = False, deadline: float | None = None
    ) -> Exchange:
        """A connection ready for one request (`fresh`: a new one, not a pooled one).
        OSError/TimeoutError when none can be made (nothing was sent, so the caller may try
        another upstream); UpstreamTimeoutError when `deadline` (the loop's clock) passes."""
        if capped:
            if self._slots.locked() and deadline is not None:
                try:
                    async with asyncio.timeout_at(deadline):
                        await self._slots.acquire()
                except TimeoutError:
                    raise UpstreamTimeoutError("no upstream connection free in time") from None
            else:
                await self._slots.acquire()
        try:
            return (None if fresh else self._reuse()) or await self._connect(deadline)
        except BaseException:
            if capped:
                self._slots.release()
            raise

    def _reuse(self) -> Exchange | None:
        deadline = time.monotonic() - self._idle_s
        while self._idle:
            connection = self._idle.pop()
            if connection.idle_since > deadline and connection.usable():
                return connection
            self._discard(connection)
        return None

    async def _connect(self, deadline: float | None) -> Exchange:
        loop = asyncio.get_running_loop()
        connect_by = loop.time() + self._connect_timeout_s
        try:
            async with asyncio.timeout_at(
                connect_by if deadline is None else min(connect_by, deadline)
            ):
                _, connection = await loop.create_connection(
                    lambda: Exchange(self._forget), self.host, self.port
                )
        except TimeoutError:
            if deadline is not None and deadline < connect_by:
                raise UpstreamTimeoutError("upstream timed out") from None
            raise
        self.down_until = 0.0  # it answers again
        self._open.add(connection)
        return connection

    def release(self, connection: Exchange, *, capped: bool = True) -> None:
        """Return a connection after its exchange: kept when reusable, else closed."""
        connection.disarm()
        if capped:
            self._slots.release()
        if connection.reusable():
            connection.finish()
            self._idle.append(connection)
            if self._idle and self._idle[0].idle_since < time.monotonic() - self._idle_s:
                self._discard(self._idle.pop(0))  # the coldest one has outlived its use
        else:
            self._discard(connection)

    def _discard(self, connection: Exchange) -> None:
        connection.close()
        self._open.discard(connection)

    def _forget(self, connection: Exchange) -> None:
        """The peer closed a connection while it was idle: out of the pool at once."""
        with contextlib.suppress(ValueError):
            self._idle.remove(connection)
        self._open.discard(connection)

    def close(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()
