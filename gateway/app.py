"""Wiring: `create_app(settings)` builds the gateway's ASGI app; the lifespan owns the pools."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from common import heap, tracing
from common.asgi import RequestMiddleware
from common.loop_watch import LoopWatch
from common.problems import problem_response
from common.redis_client import RedisClient, RedisModeError, open_redis, verify_mode
from gateway import ops
from gateway.endpoint import proxy_endpoint
from gateway.guard import Authenticator
from gateway.metrics import GatewayMetrics
from gateway.proxy import Upstreams
from gateway.ratelimit import RateLimiter
from gateway.request_ids import new_request_id
from gateway.routes import ROUTE_SCOPE_KEY, UNMATCHED, allow_header
from gateway.settings import GatewaySettings
from gateway.web import WebPages
from gateway.ws import WebSocketProxy

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1/"

# A slow or dead limiter Redis must cost a request little: short timeouts and no retries,
# the limiter then fails open (see gateway/ratelimit.py).
REDIS_TIMEOUT_S = 0.25

OWN_PATHS = frozenset(
    {"/health", "/api/v1/health", "/api/v1/ready", "/ready", "/metrics", "/api/v1/metrics"}
)


def _routes(web_root: str | None) -> list[BaseRoute]:
    """The gateway's own paths, the WebSocket proxy, then the pages (web/) at `/`, if any."""
    routes: list[BaseRoute] = [
        Route("/health", ops.health, methods=["GET"]),
        Route("/api/v1/health", ops.health, methods=["GET"]),
        Route("/ready", ops.ready, methods=["GET"]),
        Route("/api/v1/ready", ops.ready, methods=["GET"]),
        Route("/metrics", ops.metrics, methods=["GET"]),
        Route("/api/v1/metrics", ops.metrics, methods=["GET"]),
        WebSocketRoute("/api/v1/events/{event_id}/live", WebSocketProxy()),
    ]
    if web_root is not None:
        routes.append(Mount("/", app=WebPages(web_root)))
    return routes


class ProxiedFirst:
    """Sends /api/v1 HTTP requests, whatever their method, straight to the proxy endpoint (which
    answers a 405 itself, from gateway/routes.py); the rest (own endpoints, the WebSocket route,
    404 answers) goes through Starlette.

    Starlette's router and its two exception layers wrap every `send` and cost ~8 % of the
    gateway's CPU per proxied request (py-spy, `make bench`) for routing that is a prefix test.
    """

    def __init__(self, app: ASGIApp, own_paths: frozenset[str]) -> None:
        self.app = app
        self.own_paths = own_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope["path"].startswith(API_PREFIX)
            or scope["path"] in self.own_paths
        ):
            await self.app(scope, receive, send)
            return
        try:
            await proxy_endpoint(scope, receive, send)
        except Exception:
            logger.exception("proxying %s %s failed", scope["method"], scope["path"])
            # Fails in turn when the answer had started; the server then closes the connection.
            with contextlib.suppress(Exception):
                await problem_response("internal_error")(scope, receive, send)


def _route_label(scope: Scope) -> str:
    """The template the proxy endpoint matched, an own path, or one label for anything else."""
    route: str | None = scope.get(ROUTE_SCOPE_KEY)
    if route is not None:
        return route
    path = scope["path"]
    return path if path in OWN_PATHS else UNMATCHED


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response("internal_error")
    status = exc.status_code
    if status == 404:
        return problem_response("not_found", f"No route for {request.url.path}")
    if status == 405:
        # Starlette lists a route's methods from a set: put them in one stable order.
        given = (exc.headers or {}).get("Allow", "")
        allow = allow_header(method.strip() for method in given.split(","))
        return problem_response("method_not_allowed", headers={"Allow": allow})
    return problem_response("internal_error")


async def _refuse_wrong_redis_mode(redis: RedisClient, url: str) -> None:
    """A REDIS_CLUSTER that does not match the server stops the start; a Redis that is down
    does not (the limiter fails open until it is back)."""
    try:
        await verify_mode(redis, url=url)
    except RedisModeError:
        await redis.aclose()
        raise
    except (RedisError, RedisClusterException, OSError) as exc:
        logger.warning("Redis unavailable at start-up (%s): mode not checked", exc)


def create_app(settings: GatewaySettings, metrics: GatewayMetrics | None = None) -> ASGIApp:
    metrics = metrics if metrics is not None else GatewayMetrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        redis = open_redis(
            settings.redis_url,
            cluster=settings.redis_cluster,
            decode_responses=True,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
        )
        await _refuse_wrong_redis_mode(redis, settings.redis_url)
        limiter = RateLimiter(
            redis,
            per_ip=settings.per_ip,
            per_user=settings.per_user,
            auth_per_ip=settings.auth_per_ip,
            metrics=metrics,
            prefix=settings.rate_limit_prefix,
        )
        upstreams = Upstreams(
            settings.upstreams, timeout_s=settings.upstream_timeout_s, metrics=metrics
        )
        await limiter.load_script()
        await upstreams.start()
        loop_watch = LoopWatch(metrics.loop_lag)
        loop_watch.start()
        heap.settle_after_startup()
        try:
            yield {
                "settings": settings,
                "metrics": metrics,
                "redis": redis,
                "limiter": limiter,
                "upstreams": upstreams,
                "authenticator": Authenticator(settings.token_keys),
            }
        finally:
            await upstreams.stop()
            await limiter.aclose()
            await redis.aclose()
            await loop_watch.stop()

    app = Starlette(
        routes=_routes(settings.web_root),
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _http_error},
    )
    # Outside Starlette's error layer (common/asgi.py says why).
    return RequestMiddleware(
        ProxiedFirst(app, OWN_PATHS),
        service="gateway",
        route_of=_route_label,
        observe=metrics.observe_request,
        fresh_id=new_request_id,
    )


def create_app_from_env() -> ASGIApp:
    """Factory for uvicorn with several workers: each worker process builds its own app."""
    tracing.configure_tracing("gateway")
    return create_app(GatewaySettings.from_env())
