"""uvicorn's httptools protocol with one change: the writes of one event-loop turn leave the
process in one send.

uvicorn writes a response's head and its body with two `transport.write` calls; with
TCP_NODELAY each is a socket send of its own, and the peer (the gateway, or the client) wakes
and reads twice. py-spy put those two sends at ~18 % of the gateway's CPU per request under
`make bench`. Joining the writes made in the same turn and sending them at the end of it
halves the sends of a buffered response; a streamed response still sends every frame in the
turn it was written.

Used by `python -m gateway serve` and `python -m booking serve` (uvicorn's `http=` option).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HTTP_PROTOCOL = "common.http_server:CoalescingHttpToolsProtocol"

# uvicorn's `timeout_graceful_shutdown`: after SIGTERM, requests in flight get this long to end,
# then their tasks are cancelled (an SSE stream never ends by itself). Without it uvicorn waits
# for every open connection forever. With the lifespan's shutdown after it, a server exits well
# within the 10 s a supervisor grants before SIGKILL.
GRACEFUL_SHUTDOWN_S = 5

# uvicorn's `timeout_keep_alive` for both servers. Its default (5 s) equals httpx's idle expiry
# and is below any load balancer's (60 s): a client reusing a connection just as the server
# closes it gets a reset instead of an answer, and a busy loop widens that window. A server
# must outlast its callers' idle timeouts, so the caller always closes first.
KEEP_ALIVE_S = 75


class CoalescingTransport:
    """Wraps a transport: `write`s gather until the loop's next turn, then go out joined.
    Everything else goes to the wrapped transport (closing sends what was gathered first)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(data) for data in self._pending)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped = CoalescingTransport(transport, self.loop)
        super().connection_made(wrapped)  # type: ignore[arg-type]
