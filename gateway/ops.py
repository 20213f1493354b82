"""The gateway's own endpoints: liveness, readiness (Redis and the booking service), metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from common.problems import problem_response
from gateway.metrics import CONTENT_TYPE, GatewayMetrics
from gateway.proxy import Upstreams

PROBE_TIMEOUT_S = 2.0
HEALTH_PATH = "/api/v1/health"
NOT_READY_RETRY_AFTER_S = 5
_OK_BODY = orjson.dumps({"status": "ok"})


async def health(request: Request) -> Response:
    return Response(_OK_BODY, media_type="application/json")


async def probe_redis(redis: Any) -> str:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await redis.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        return f"down: {type(exc).__name__}"
    return "ok"


async def probe_upstream(upstreams: Upstreams, base: str) -> str:
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
    try:
        async with upstreams.session.get(base + HEALTH_PATH, timeout=timeout) as answer:
            await answer.read()
            return "ok" if answer.status == 200 else f"down: HTTP {answer.status}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"down: {type(exc).__name__}"


async def ready(request: Request) -> Response:
    """200 when Redis and every booking upstream answer; else 503 naming what does not."""
    upstreams: Upstreams = request.state.upstreams
    names = ["redis"] + (
        ["booking"]
        if len(upstreams.bases) == 1
        else [f"booking {base}" for base in upstreams.bases]
    )
    results = await asyncio.gather(
        probe_redis(request.state.redis),
        *(probe_upstream(upstreams, base) for base in upstreams.bases),
    )
    dependencies = dict(zip(names, results, strict=True))
    failing = [name for name, result in dependencies.items() if result != "ok"]
    if not failing:
        return Response(
            orjson.dumps({"status": "ok", "dependencies": dependencies}),
            media_type="application/json",
        )
    return problem_response(
        "service_unavailable",
        f"Not ready: {', '.join(failing)} unavailable",
        headers={"Retry-After": str(NOT_READY_RETRY_AFTER_S)},
        extra={"dependencies": dependencies},
    )


async def metrics(request: Request) -> Response:
    registry: GatewayMetrics = request.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)
