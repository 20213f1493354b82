"""Operations endpoints: liveness, readiness (naming the failing dependency), metrics."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from booking.http import JSONResponse, services
from booking.metrics import DEPENDENCY_UP
from booking.openapi import document
from common.problems import problem_response

_CHECK_TIMEOUT_S = 2.0


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _check(name: str, probe: asyncio.Future | object) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(probe, _CHECK_TIMEOUT_S)  # type: ignore[arg-type]
    except Exception as exc:  # any failure means "not ready"; the detail names it
        DEPENDENCY_UP.labels(name).set(0)
        return name, f"{type(exc).__name__}: {exc}" or type(exc).__name__
    DEPENDENCY_UP.labels(name).set(1)
    return name, None


async def ready(request: Request) -> Response:
    state = services(request)
    results = await asyncio.gather(
        _check("redis", state.redis.ping()),
        _check("postgres", state.pool.fetchval("SELECT 1")),
    )
    failing = {name: error for name, error in results if error}
    dependencies = {name: ("down" if error else "up") for name, error in results}
    if failing:
        return problem_response(
            "service_unavailable",
            "not ready: " + ", ".join(f"{name} ({error})" for name, error in failing.items()),
            headers={"Retry-After": "1"},
            extra={"dependencies": dependencies},
        )
    return JSONResponse({"status": "ready", "dependencies": dependencies})


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(document(services(request).settings.payments.provider))


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
