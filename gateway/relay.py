"""The response side of the proxy hop: an upstream answer sent to the client whole
(`BufferedResponse`) or relayed chunk by chunk as it arrives (`RelayedStream`: SSE, chunked
bodies), with the upstream's hop-by-hop headers dropped (`headers_for_client`)."""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Scope, Send

from gateway.forwarding import HOP_BY_HOP
from gateway.metrics import UPSTREAM_STREAM, GatewayMetrics
from gateway.upstream import Exchange, UpstreamClosedError, UpstreamPool, UpstreamProtocolError

# uvicorn writes its own date/server; the request id middleware writes x-request-id.
_DROP_FROM_RESPONSE = HOP_BY_HOP | {b"date", b"server", b"x-request-id"}


def headers_for_client(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(name, value) for name, value in raw if name not in _DROP_FROM_RESPONSE]


def header_value(headers: list[tuple[bytes, bytes]], wanted: bytes) -> bytes | None:
    return next((value for name, value in headers if name == wanted), None)


class BufferedResponse:
    """An upstream answer read whole: sent as-is in one body message."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


class RelayedStream:
    """An upstream answer relayed chunk by chunk as it arrives (SSE, chunked bodies).

    Owns the upstream connection until the relay ends. A client that goes away closes it at
    once (a watcher task waits for `http.disconnect`): an SSE stream never ends by itself, and
    the ASGI server silently drops writes to a gone client.
    """

    def __init__(
        self,
        pool: UpstreamPool,
        exchange: Exchange,
        headers: list[tuple[bytes, bytes]],
        metrics: GatewayMetrics,
    ) -> None:
        self.pool = pool
        self.exchange = exchange
        self.headers = headers
        self.metrics = metrics
        self.is_sse = (header_value(exchange.headers, b"content-type") or b"").startswith(
            b"text/event-stream"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.ensure_future(self._close_on_disconnect(receive))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.exchange.status,
                    "headers": self.headers,
                }
            )
            try:
                async for chunk in self.exchange.chunks():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except (UpstreamClosedError, UpstreamProtocolError):
                if watcher.done():
                    return  # we closed it: the client left
                self.metrics.upstream_error(UPSTREAM_STREAM)
                if not self.is_sse:
                    raise  # a cut body must not look complete; SSE clients just reconnect
                return
            await send({"type": "http.response.body", "body": b""})
        finally:
            watcher.cancel()
            self.pool.release(self.exchange, capped=False)

    async def _close_on_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.exchange.close()
