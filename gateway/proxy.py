"""The reverse proxy to the booking service: a pooled keep-alive aiohttp client, round-robin over
the configured upstreams, responses relayed without re-encoding and streams without buffering.

WebSocket proxying slots in next to `forward_request` (same header rules, `ws_connect` on the
same session); the HTTP path below is all that exists today.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send
from yarl import URL

from common import tracing
from gateway.metrics import (
    UPSTREAM_CONNECT,
    UPSTREAM_PROTOCOL,
    UPSTREAM_STREAM,
    UPSTREAM_TIMEOUT,
    GatewayMetrics,
)

logger = logging.getLogger(__name__)

CONNECTION_POOL_SIZE = 512
KEEPALIVE_S = 30.0
# Bodies up to this size with a Content-Length are read whole and sent in one piece.
BUFFER_LIMIT = 256 * 1024
LOG_EVERY_S = 10.0

_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Recomputed by aiohttp (host, length) or set by the gateway itself.
_DROP_FROM_REQUEST = _HOP_BY_HOP | {b"host", b"content-length", b"expect", b"forwarded"}
# Identity-looking headers: a client must never be able to forge who it is towards upstream.
_FORGEABLE_PREFIXES = (
    b"x-user",
    b"x-forwarded",
    b"x-auth",
    b"x-role",
    b"x-identity",
    b"x-real-ip",
    b"x-client-ip",
    b"x-request-id",
)
# uvicorn writes its own date/server; the request id middleware writes x-request-id.
_DROP_FROM_RESPONSE = _HOP_BY_HOP | {b"date", b"server", b"x-request-id"}


class BodyTooLargeError(Exception):
    pass


class UpstreamError(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


@dataclass(frozen=True)
class Forwarding:
    """What the gateway tells upstream about the original request."""

    client_ip: str
    forwarded_for: str
    proto: str
    request_id: bytes


def resolve_forwarding(scope: Scope, trusted_hops: int, request_id: bytes) -> Forwarding:
    """The client's address, trusting X-Forwarded-For only for `trusted_hops` proxies in front."""
    peer = scope["client"][0] if scope.get("client") else "0.0.0.0"
    if trusted_hops <= 0:
        return Forwarding(peer, peer, scope["scheme"], request_id)
    incoming, proto = "", scope["scheme"]
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            entries = value.decode("latin-1")
            incoming = f"{incoming}, {entries}" if incoming else entries
        elif name == b"x-forwarded-proto":
            proto = value.decode("latin-1").strip() or proto
    chain = [part.strip() for part in incoming.split(",") if part.strip()] + [peer]
    client = chain[max(0, len(chain) - 1 - trusted_hops)]
    return Forwarding(client, ", ".join(chain), proto, request_id)


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole request body (None when the request announces none); 413 beyond `limit`."""
    length = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
    if length is None and not chunked:
        return None
    if length is not None and length > limit:
        raise BodyTooLargeError()
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError("client disconnected while sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError()
        parts.append(chunk)
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


def upstream_headers(scope: Scope, forwarding: Forwarding) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    named_by_connection: set[str] = set()
    for name, value in scope["headers"]:
        if name == b"connection":
            named_by_connection |= {
                token.strip().lower() for token in value.decode("latin-1").split(",")
            }
        if name in _DROP_FROM_REQUEST or name.startswith(_FORGEABLE_PREFIXES):
            continue
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    if named_by_connection - {"keep-alive", "close"}:
        headers = [(n, v) for n, v in headers if n.lower() not in named_by_connection]
    headers += [
        ("X-Forwarded-For", forwarding.forwarded_for),
        ("X-Forwarded-Proto", forwarding.proto),
        ("X-Request-ID", forwarding.request_id.decode()),
    ]
    return headers


def _response_headers(upstream: aiohttp.ClientResponse) -> list[tuple[bytes, bytes]]:
    headers = []
    for name, value in upstream.raw_headers:
        lowered = name.lower()
        if lowered not in _DROP_FROM_RESPONSE:
            headers.append((lowered, value))
    return headers


class BufferedResponse:
    """An upstream answer read whole: sent as-is in one body message."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


class RelayedStream(StreamingResponse):
    """An upstream answer relayed chunk by chunk as it arrives (SSE, chunked, large bodies).

    Starlette's StreamingResponse stops relaying when the client disconnects; the upstream
    connection is then closed rather than returned to the pool.
    """

    def __init__(
        self,
        upstream: aiohttp.ClientResponse,
        headers: list[tuple[bytes, bytes]],
        metrics: GatewayMetrics,
    ) -> None:
        self.upstream = upstream
        self.metrics = metrics
        super().__init__(self._relay(), status_code=upstream.status)
        self.raw_headers = headers

    async def _relay(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.upstream.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError):
            self.metrics.upstream_error(UPSTREAM_STREAM)
            if self.upstream.content_type != "text/event-stream":
                raise  # a cut JSON body must not look complete; SSE clients just reconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.upstream.close()


class Upstreams:
    """The booking service instances, reached round-robin over one pooled session."""

    def __init__(
        self,
        bases: tuple[str, ...],
        *,
        timeout_s: float,
        metrics: GatewayMetrics,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.bases = bases
        self.timeout_s = timeout_s
        self.metrics = metrics
        self._session = session
        self._stream_session: aiohttp.ClientSession | None = None
        self._turn = 0
        self._quiet_until = 0.0
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout_s, sock_read=timeout_s
        )
        # Streams may stay quiet for long; their header phase is bounded separately.
        self._stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s)

    def _new_session(self, limit: int) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=limit, keepalive_timeout=KEEPALIVE_S, ttl_dns_cache=300
        )
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # bodies pass through exactly as encoded
            cookie_jar=aiohttp.DummyCookieJar(),  # never carry one user's cookies to another
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            timeout=self._timeout,
        )

    async def start(self) -> None:
        if self._session is None:
            self._session = self._new_session(CONNECTION_POOL_SIZE)
        # Streams (SSE, WebSocket) hold their upstream connection for as long as the buyer
        # watches: they get their own pool without a cap, so ten thousand waiting buyers never
        # starve ordinary requests of connections, nor wait for one themselves.
        self._stream_session = self._new_session(0)

    async def stop(self) -> None:
        for session in (self._session, self._stream_session):
            if session is not None:
                await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Upstreams.start() was not awaited")
        return self._session

    @property
    def stream_session(self) -> aiohttp.ClientSession:
        if self._stream_session is None:
            raise RuntimeError("Upstreams.start() was not awaited")
        return self._stream_session

    def _next_base(self) -> str:
        base = self.bases[self._turn % len(self.bases)]
        self._turn += 1
        return base

    async def forward_request(
        self,
        scope: Scope,
        body: bytes | None,
        forwarding: Forwarding,
        *,
        streams: bool,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> BufferedResponse | RelayedStream:
        """Send the request upstream and return the ASGI response that relays the answer.

        Raises UpstreamError when no upstream answered properly.
        """
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        headers = tracing.replace_trace_headers(upstream_headers(scope, forwarding))
        streams = streams or any(
            name == b"accept" and b"text/event-stream" in value for name, value in scope["headers"]
        )
        upstream = await self._send(scope["method"], target, headers, body, streams)
        try:
            response_headers = _response_headers(upstream) + extra_headers
            length = upstream.content_length
            if streams or length is None or length > BUFFER_LIMIT:
                return RelayedStream(upstream, response_headers, self.metrics)
            content = await upstream.read()
        except aiohttp.ClientError as exc:
            upstream.close()
            self.metrics.upstream_error(UPSTREAM_PROTOCOL)
            raise UpstreamError(UPSTREAM_PROTOCOL, f"bad answer from upstream: {exc}") from exc
        except TimeoutError as exc:
            upstream.close()
            self.metrics.upstream_error(UPSTREAM_TIMEOUT)
            raise UpstreamError(UPSTREAM_TIMEOUT, "upstream timed out") from exc
        return BufferedResponse(upstream.status, response_headers, content)

    async def _send(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        streams: bool,
    ) -> aiohttp.ClientResponse:
        # A refused connection means nothing was sent, so even a POST may try the next upstream.
        for _attempt in range(len(self.bases)):
            url = URL(self._next_base() + target, encoded=True)
            try:
                if not streams:
                    return await self.session.request(
                        method, url, headers=headers, data=body, allow_redirects=False
                    )
                async with asyncio.timeout(self.timeout_s):
                    return await self.stream_session.request(
                        method,
                        url,
                        headers=headers,
                        data=body,
                        allow_redirects=False,
                        timeout=self._stream_timeout,
                    )
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                self.metrics.upstream_error(UPSTREAM_CONNECT)
                last_error = exc
            except TimeoutError as exc:
                self.metrics.upstream_error(UPSTREAM_TIMEOUT)
                raise UpstreamError(UPSTREAM_TIMEOUT, "upstream timed out") from exc
            except aiohttp.ClientError as exc:
                self.metrics.upstream_error(UPSTREAM_PROTOCOL)
                raise UpstreamError(UPSTREAM_PROTOCOL, f"bad answer from upstream: {exc}") from exc
        now = time.monotonic()
        if now >= self._quiet_until:  # one line per outage window, not one per request
            self._quiet_until = now + LOG_EVERY_S
            logger.warning("no upstream reachable: %r", last_error)
        raise UpstreamError(UPSTREAM_CONNECT, "the booking service is unreachable")
