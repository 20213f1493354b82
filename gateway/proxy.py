"""The reverse proxy to the booking service: keep-alive connection pools (gateway/upstream.py),
round-robin over the configured upstreams, responses relayed without re-encoding and streams
without buffering. The request's side of the hop (client address, body, headers sent upstream) is
gateway/forwarding.py, the answer's (buffered or relayed) gateway/relay.py; the WebSocket hop
(gateway/ws.py) uses the same header rules.

Failover (`Upstreams.forward_request`): a refused connection sends the request to the next
upstream and takes the refusing one out of the round-robin for `DOWN_FOR_S`; a connection that
ends before any answer byte is retried on a new connection elsewhere only when that cannot
deliver a request twice to harm (never written, idempotent method, or an `Idempotency-Key`).
Pooled connections the upstream closed are never written to (gateway/upstream.py), so a POST
meets a closed connection only in the instant the upstream closes it. No upstream left: 503
with Retry-After (gateway/endpoint.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlsplit

import aiohttp
from starlette.types import Scope

from common import tracing
from gateway.forwarding import Forwarding, upstream_headers
from gateway.metrics import (
    UPSTREAM_CONNECT,
    UPSTREAM_PROTOCOL,
    UPSTREAM_RETRIED,
    UPSTREAM_TIMEOUT,
    GatewayMetrics,
)
from gateway.relay import BufferedResponse, RelayedStream, header_value, headers_for_client
from gateway.upstream import (
    Exchange,
    UpstreamClosedError,
    UpstreamPool,
    UpstreamProtocolError,
    UpstreamTimeoutError,
    encode_request,
)

logger = logging.getLogger(__name__)

CONNECTION_POOL_SIZE = 512
KEEPALIVE_S = 30.0
# Answers other than streams are read whole (API answers are small JSON); beyond this: 502.
MAX_BUFFERED_BYTES = 32 * 1024 * 1024
LOG_EVERY_S = 10.0
# How long the round-robin skips an upstream that refused a connection.
DOWN_FOR_S = 1.0
# Methods whose second delivery changes nothing (RFC 9110 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class UpstreamError(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def _traced(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers with this span's trace context instead of the client's (tracing on only)."""
    if not tracing.enabled():
        return headers
    as_text = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
    return [
        (n.encode("latin-1"), v.encode("latin-1"))
        for n, v in tracing.replace_trace_headers(as_text)
    ]


def _pool_of(base: str, timeout_s: float) -> UpstreamPool:
    parts = urlsplit(base)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"upstream {base!r}: only http://host:port upstreams are supported")
    return UpstreamPool(
        parts.hostname,
        parts.port or 80,
        connect_timeout_s=timeout_s,
        limit=CONNECTION_POOL_SIZE,
        idle_s=KEEPALIVE_S,
    )


class Upstreams:
    """The booking service instances, reached round-robin over keep-alive connection pools.

    Proxied HTTP goes through `gateway.upstream` (one pool per instance); the aiohttp session
    serves the WebSocket hop and readiness probes.
    """

    def __init__(
        self,
        bases: tuple[str, ...],
        *,
        timeout_s: float,
        metrics: GatewayMetrics,
    ) -> None:
        self.bases = bases
        self.timeout_s = timeout_s
        self.metrics = metrics
        self._pools: list[UpstreamPool] = []
        self._session: aiohttp.ClientSession | None = None
        self._turn = 0
        self._quiet_until = 0.0

    async def start(self) -> None:
        self._pools = [_pool_of(base, self.timeout_s) for base in self.bases]
        # No connection cap: each WebSocket holds its upstream connection for as long as the
        # buyer watches.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_S),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # never carry one user's cookies to another
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout_s),
        )

    async def stop(self) -> None:
        for pool in self._pools:
            pool.close()
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Upstreams.start() was not awaited")
        return self._session

    def next_turn(self) -> int:
        """The index of the upstream whose turn it is (round-robin, shared by HTTP and WS)."""
        turn = self._turn % len(self.bases)
        self._turn += 1
        return turn

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

        Failover: an upstream that refuses the connection is skipped for `DOWN_FOR_S` and the
        next one is tried (nothing was sent). A connection that ends before any byte of the
        answer is retried, on a new connection to the next upstream, when the request was never
        written, or when a second delivery is harmless (an idempotent method or an
        `Idempotency-Key`, which the booking service replays by key); any other request gets 502
        rather than being sent twice. Raises UpstreamError when no upstream answered properly.
        """
        target = scope["raw_path"]
        if scope["query_string"]:
            target += b"?" + scope["query_string"]
        headers = _traced(upstream_headers(scope, forwarding))
        streams = streams or any(
            name == b"accept" and b"text/event-stream" in value for name, value in scope["headers"]
        )
        method = scope["method"]
        capped = not streams
        refused: tuple[UpstreamPool, ...] = ()
        retries = len(self._pools)
        # A retry takes a new connection: the pooled ones may be as dead as the one that failed
        # (an upstream restarted, or a middlebox dropped idle flows without a word).
        fresh = False
        last_error: Exception | None = None
        # One deadline for the whole request (waiting for a connection, retries, the answer;
        # streams: until their headers), kept by the exchange's timer (gateway/upstream.py).
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        try:
            while True:
                pool = self._pick(refused)
                if pool is None:
                    self._log_unreachable(last_error)
                    raise UpstreamError(UPSTREAM_CONNECT, "the booking service is unreachable")
                try:
                    exchange = await pool.acquire(capped=capped, fresh=fresh, deadline=deadline)
                except (OSError, TimeoutError) as exc:
                    # Refused or not made: nothing was sent, so even a POST may go elsewhere.
                    self.metrics.upstream_error(UPSTREAM_CONNECT)
                    pool.mark_down(DOWN_FOR_S)
                    refused += (pool,)
                    last_error = exc
                    continue
                relayed = False
                exchange.expire_at(deadline)
                try:
                    await exchange.send(
                        encode_request(method, target, pool.authority, headers, body),
                        head_request=method == "HEAD",
                    )
                    response_headers = headers_for_client(exchange.headers) + extra_headers
                    if (
                        streams
                        and not exchange.complete
                        and header_value(exchange.headers, b"content-length") is None
                    ):
                        relayed = True
                        exchange.disarm()
                        return RelayedStream(pool, exchange, response_headers, self.metrics)
                    body_read = await exchange.read_all(MAX_BUFFERED_BYTES)
                    return BufferedResponse(exchange.status, response_headers, body_read)
                except UpstreamClosedError as exc:
                    if retries > 0 and _may_retry(exchange, scope):
                        retries -= 1
                        fresh = True
                        self.metrics.upstream_error(UPSTREAM_RETRIED)
                        last_error = exc
                        continue
                    raise
                finally:
                    if not relayed:
                        pool.release(exchange, capped=capped)
        except (UpstreamClosedError, UpstreamProtocolError) as exc:
            self.metrics.upstream_error(UPSTREAM_PROTOCOL)
            raise UpstreamError(UPSTREAM_PROTOCOL, f"bad answer from upstream: {exc}") from exc
        except UpstreamTimeoutError as exc:
            self.metrics.upstream_error(UPSTREAM_TIMEOUT)
            raise UpstreamError(UPSTREAM_TIMEOUT, "upstream timed out") from exc

    def _pick(self, refused: tuple[UpstreamPool, ...]) -> UpstreamPool | None:
        """The next upstream in round-robin order that is not marked down; one marked down
        only when no other is left (it may be back); None when every one refused this request."""
        pools = self._pools
        turn = self.next_turn()
        pool = pools[turn]
        if not pool.down_until and not refused:
            return pool  # the common case: one branch
        fallback = None
        for offset in range(len(pools)):
            pool = pools[(turn + offset) % len(pools)]
            if pool in refused:
                continue
            if not pool.is_down():
                return pool
            if fallback is None:
                fallback = pool
        return fallback

    def _log_unreachable(self, error: Exception | None) -> None:
        now = time.monotonic()
        if now >= self._quiet_until:  # one line per outage window, not one per request
            self._quiet_until = now + LOG_EVERY_S
            logger.warning("no upstream reachable: %r", error)


def _may_retry(exchange: Exchange, scope: Scope) -> bool:
    """Whether a request whose connection ended early may go to another upstream: never once an
    answer started; always when it was never written; else only when a second delivery is
    harmless (idempotent method, or an Idempotency-Key the booking service replays by key)."""
    if exchange.answered:
        return False
    if not exchange.sent or scope["method"] in IDEMPOTENT_METHODS:
        return True
    return any(name == b"idempotency-key" for name, _ in scope["headers"])
