"""The WebSocket proxy: frames relayed both ways between the client and a booking instance.

Same identity rules as HTTP: the token (`?token=` or the Authorization header) is verified here
too, and a bad one closes the socket with 1008 before anything reaches upstream; the route must
be public when there is no token. Every connect, with a bad token too, first counts against the
client's rate limit (a refusal closes with 1013, try again later). Headers go upstream through
the HTTP proxy's filter (no forged identity or forwarding headers); the handshake's own headers
are aiohttp's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qs

import aiohttp
from starlette.types import Receive, Scope, Send
from yarl import URL

from common import tracing
from common.asgi import REQUEST_ID_SCOPE_KEY, incoming_request_id
from common.tokens import TokenError, bearer_token
from gateway.forwarding import resolve_forwarding, upstream_headers
from gateway.guard import Authenticator, authorization_header
from gateway.proxy import Upstreams
from gateway.ratelimit import RateLimiter
from gateway.request_ids import new_request_id
from gateway.routes import ROUTE_SCOPE_KEY, classify

logger = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013
# Close codes a peer may not send in a close frame; relayed as a plain 1000.
_RESERVED_CODES = frozenset({1004, 1005, 1006, 1015})
HEARTBEAT_S = 30.0


def _token(scope: Scope) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    tokens = query.get("token")
    if tokens:
        return tokens[0] or None
    return bearer_token(authorization_header(scope))


def _handshake_headers(scope: Scope, forwarding: Any) -> list[tuple[str, str]]:
    headers = upstream_headers(scope, forwarding)
    return tracing.replace_trace_headers(
        [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in headers
            if not name.startswith(b"sec-websocket")
        ]
    )


def _relayable(code: int | None) -> int:
    if code is None or code in _RESERVED_CODES or not 1000 <= code < 5000:
        return CLOSE_NORMAL
    return code


class WebSocketProxy:
    """A raw ASGI endpoint for websocket scopes."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = scope["state"]
        settings = state["settings"]
        spec = classify(scope["path"])
        scope[ROUTE_SCOPE_KEY] = spec.template
        if (await receive())["type"] != "websocket.connect":
            return

        authenticator: Authenticator = state["authenticator"]
        token = _token(scope)
        user_id = None
        refusal = None
        if token is not None:
            try:
                user_id = authenticator.verify(token).user_id
            except TokenError:
                refusal = "invalid token"
        elif not spec.is_public("GET"):
            refusal = "a bearer access token is required"

        # Limited first, as HTTP: a bad token is no way around the client's budget.
        request_id = scope.get(REQUEST_ID_SCOPE_KEY) or incoming_request_id(scope, new_request_id)
        forwarding = resolve_forwarding(scope, settings.trusted_proxy_hops, request_id)
        limiter: RateLimiter = state["limiter"]
        decision = await limiter.check_request(forwarding.client_ip, user_id, spec.group)
        if not decision.allowed:
            await _refuse(send, CLOSE_TRY_AGAIN, "rate limited")
            return
        if refusal is not None:
            await _refuse(send, CLOSE_POLICY, refusal)
            return

        upstream = await self._connect(state, scope, forwarding)
        if upstream is None:
            await _refuse(send, CLOSE_TRY_AGAIN, "the booking service is unreachable")
            return
        try:
            accept: dict[str, Any] = {"type": "websocket.accept"}
            if upstream.protocol:
                accept["subprotocol"] = upstream.protocol
            await send(accept)
            await _relay(upstream, receive, send)
        finally:
            await upstream.close()

    async def _connect(
        self, state: dict[str, Any], scope: Scope, forwarding: Any
    ) -> aiohttp.ClientWebSocketResponse | None:
        upstreams: Upstreams = state["upstreams"]
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        protocols = [
            part.strip()
            for name, value in scope["headers"]
            if name == b"sec-websocket-protocol"
            for part in value.decode("latin-1").split(",")
        ]
        headers = _handshake_headers(scope, forwarding)
        for _attempt in range(len(upstreams.bases)):
            base = upstreams.bases[upstreams.next_turn()]
            url = URL(base.replace("http", "ws", 1) + target, encoded=True)
            try:
                async with asyncio.timeout(upstreams.timeout_s):
                    return await upstreams.session.ws_connect(
                        url, headers=headers, protocols=protocols, heartbeat=HEARTBEAT_S
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                logger.warning("websocket upstream %s refused: %r", base, exc)
        return None


async def _refuse(send: Send, code: int, reason: str) -> None:
    """Accepts, then closes with `code`: a close before accept would reach the client as a
    bare HTTP 403 and the code would be lost."""
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code, "reason": reason})


async def _relay(upstream: aiohttp.ClientWebSocketResponse, receive: Receive, send: Send) -> None:
    client_closed: list[int] = []

    async def client_to_upstream() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                client_closed.append(_relayable(message.get("code")))
                return
            if message.get("text") is not None:
                await upstream.send_str(message["text"])
            elif message.get("bytes") is not None:
                await upstream.send_bytes(message["bytes"])

    async def upstream_to_client() -> None:
        async for frame in upstream:
            if frame.type == aiohttp.WSMsgType.TEXT:
                await send({"type": "websocket.send", "text": frame.data})
            elif frame.type == aiohttp.WSMsgType.BINARY:
                await send({"type": "websocket.send", "bytes": frame.data})
            elif frame.type == aiohttp.WSMsgType.ERROR:
                break

    inbound = asyncio.create_task(client_to_upstream())
    outbound = asyncio.create_task(upstream_to_client())
    try:
        await asyncio.wait({inbound, outbound}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (inbound, outbound):
            task.cancel()
        for task in (inbound, outbound):
            with contextlib.suppress(BaseException):
                await task
    if client_closed:
        await upstream.close(code=client_closed[0])
        return
    # Upstream ended: pass its close code on (1011 if it vanished without one).
    code = upstream.close_code
    with contextlib.suppress(Exception):
        await send(
            {
                "type": "websocket.close",
                "code": _relayable(code) if code is not None else CLOSE_INTERNAL,
                "reason": "",
            }
        )
