"""The one endpoint behind every /api/v1 path: rate-limit, check method and token, then proxy.

The per-IP limit comes first and applies to every request, so a client cannot escape it by
sending a bad token or a wrong method: once its budget is spent it gets 429, whatever else is
wrong with its request. A valid token also charges the user's budget (gateway/ratelimit.py).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from common.asgi import REQUEST_ID_SCOPE_KEY, incoming_request_id
from common.problems import problem_response
from gateway.forwarding import BodyTooLargeError, ClientGoneError, read_body, resolve_forwarding
from gateway.guard import Authenticator, AuthError
from gateway.metrics import UPSTREAM_CONNECT, UPSTREAM_TIMEOUT
from gateway.proxy import UpstreamError
from gateway.ratelimit import UNCHECKED, RateLimiter
from gateway.request_ids import new_request_id
from gateway.routes import ROUTE_SCOPE_KEY, classify

# How long a client should wait before retrying when the booking service is unreachable.
UPSTREAM_RETRY_AFTER_S = 2


class ProxyEndpoint:
    """A raw ASGI endpoint (a class, so Starlette does not wrap it in Request/Response)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = scope["state"]
        settings = state["settings"]
        spec = classify(scope["path"])
        scope[ROUTE_SCOPE_KEY] = spec.template
        method = scope["method"]

        refused: AuthError | None = None
        try:
            authenticator: Authenticator = state["authenticator"]
            identity = authenticator.authenticate(scope, spec, method)
        except AuthError as exc:
            identity, refused = None, exc

        request_id = scope.get(REQUEST_ID_SCOPE_KEY) or incoming_request_id(scope, new_request_id)
        forwarding = resolve_forwarding(scope, settings.trusted_proxy_hops, request_id)
        limiter: RateLimiter = state["limiter"]
        if spec.rate_limited:
            decision = await limiter.check_request(
                forwarding.client_ip, identity.user_id if identity else None, spec.group
            )
        else:
            decision = UNCHECKED
        rate_headers = decision.headers()
        if not decision.allowed:
            detail = (
                f"Too many requests for this {'user' if decision.scope == 'user' else 'client'}"
            )
            response = _refuse("rate_limited", detail, rate_headers, {})
            await response(scope, receive, send)
            return
        if method not in spec.methods:
            allow = spec.allow()
            detail = f"{method} is not allowed here; allowed: {allow}"
            response = _refuse("method_not_allowed", detail, rate_headers, {"Allow": allow})
            await response(scope, receive, send)
            return
        if refused is not None:
            challenge = {"WWW-Authenticate": refused.challenge}
            response = _refuse("unauthorized", refused.detail, rate_headers, challenge)
            await response(scope, receive, send)
            return

        try:
            body = await read_body(scope, receive, settings.max_body_bytes)
        except ClientGoneError:
            return
        except BodyTooLargeError:
            limit = settings.max_body_bytes
            response = problem_response("payload_too_large", f"The body exceeds {limit} bytes")
            await response(scope, receive, send)
            return

        try:
            relayed = await state["upstreams"].forward_request(
                scope, body, forwarding, streams=spec.streams, extra_headers=rate_headers
            )
        except UpstreamError as exc:
            if exc.kind in (UPSTREAM_CONNECT, UPSTREAM_TIMEOUT):
                response = problem_response(
                    "service_unavailable",
                    str(exc),
                    headers={"Retry-After": str(UPSTREAM_RETRY_AFTER_S)},
                )
            else:
                response = problem_response("bad_gateway", str(exc))
            await response(scope, receive, send)
            return
        await relayed(scope, receive, send)


def _refuse(
    code: str, detail: str, rate_headers: list[tuple[bytes, bytes]], headers: dict[str, str]
) -> Response:
    """A problem answer that also carries the RateLimit-* headers of the request's decision."""
    return problem_response(
        code, detail, headers={**{k.decode(): v.decode() for k, v in rate_headers}, **headers}
    )


proxy_endpoint = ProxyEndpoint()
