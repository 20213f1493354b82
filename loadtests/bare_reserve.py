"""Bench phase (c): the Python-stack limit. A bare Starlette endpoint that does what the booking
service's reserve does in Redis, one EVALSHA of the shipped `lua/reserve.lua` (through
booking.inventory.scripts), and nothing else: no token check, no validation model, no PostgreSQL, no
middleware. Served like the services are (uvicorn, uvloop, httptools, one worker).

Its script calls go through redis-py's pipeline (`ScriptBatcher`), as they did when issue 17 set
its targets against this endpoint: the services have since moved to the lean wire
(common/script_wire.py), and a measuring stick that moved with them would hide the gain.


    BARE_REDIS_URL=redis://127.0.0.1:6379/8 uvicorn loadtests.bare_reserve:app \
        --loop uvloop --http httptools --workers 1 --port 8099
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from booking.domain import fingerprint
from booking.errors import BookingError
from booking.inventory.scripts import Scripts
from common.script_batch import ScriptBatcher

HOLD_TTL_MS = 600_000


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    client = aioredis.Redis.from_url(
        os.environ.get("BARE_REDIS_URL", "redis://127.0.0.1:6379/0"), max_connections=64
    )
    app.state.scripts = Scripts(client, runner=ScriptBatcher)
    await app.state.scripts.load()
    try:
        yield
    finally:
        await client.aclose()


async def reserve(request: Request) -> Response:
    body = orjson.loads(await request.body())
    try:
        result = await request.app.state.scripts.reserve(
            body["event_id"],
            booking_id=str(uuid.uuid4()),
            user_id=str(uuid.uuid4()),
            zone_id=body["zone_id"],
            quantity=int(body.get("quantity") or 0),
            seats=body.get("seats"),
            idempotency_key=request.headers.get("idempotency-key", ""),
            fingerprint=fingerprint(body),
            ttl_ms=HOLD_TTL_MS,
        )
    except BookingError as error:
        return Response(orjson.dumps({"code": error.code}), status_code=409)
    hold = result.hold
    answer = {"booking_id": hold.booking_id, "status": hold.status, "quantity": hold.quantity}
    return Response(orjson.dumps(answer), status_code=201, media_type="application/json")


async def health(_: Request) -> Response:
    return Response(b"ok")


app = Starlette(
    routes=[
        Route("/api/v1/bookings/reserve", reserve, methods=["POST"]),
        Route("/api/v1/health", health, methods=["GET"]),
    ],
    lifespan=lifespan,
)
