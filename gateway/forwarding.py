"""The request side of the proxy hop: who the client is (`resolve_forwarding`), its body read
within the limit (`read_body`) and the headers sent upstream (`upstream_headers`: hop-by-hop and
identity-looking ones dropped, ours added). The WebSocket hop (gateway/ws.py) uses the same
rules."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Receive, Scope

HOP_BY_HOP = frozenset(
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
# Recomputed by the client (host, length) or set by the gateway itself.
_DROP_FROM_REQUEST = HOP_BY_HOP | {b"host", b"content-length", b"expect", b"forwarded"}
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


class BodyTooLargeError(Exception):
    pass


class ClientGoneError(Exception):
    """The client disconnected before its request body arrived: nobody is left to answer."""


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
            raise ClientGoneError()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError()
        parts.append(chunk)
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


def upstream_headers(scope: Scope, forwarding: Forwarding) -> list[tuple[bytes, bytes]]:
    """The client's headers minus hop-by-hop and identity-looking ones, plus ours."""
    headers: list[tuple[bytes, bytes]] = []
    named_by_connection: set[bytes] = set()
    for name, value in scope["headers"]:
        if name == b"connection":
            named_by_connection |= {token.strip().lower() for token in value.split(b",")}
        if name in _DROP_FROM_REQUEST or name.startswith(_FORGEABLE_PREFIXES):
            continue
        headers.append((name, value))
    if named_by_connection - {b"keep-alive", b"close"}:
        headers = [(n, v) for n, v in headers if n not in named_by_connection]
    headers += [
        (b"x-forwarded-for", forwarding.forwarded_for.encode("latin-1")),
        (b"x-forwarded-proto", forwarding.proto.encode("latin-1")),
        (b"x-request-id", forwarding.request_id),
    ]
    return headers
