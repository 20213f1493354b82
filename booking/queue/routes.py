"""HTTP routes for /queue (join, position, its live stream, leave) and PATCH /events/{id}/queue."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from booking.errors import NotFoundError
from booking.http import JSONResponse, identity, read_body, services
from booking.schemas import JoinBody, QueuePatchBody
from booking.sse import EventStream


def _event_id(request: Request) -> str:
    try:
        return str(uuid.UUID(request.path_params["event_id"]))
    except ValueError:
        raise NotFoundError("no such event") from None


def _last_event_id(request: Request) -> int:
    raw = request.headers.get("last-event-id", "")
    return int(raw) if raw.isdigit() and len(raw) < 18 else 0


async def join(request: Request) -> JSONResponse:
    caller = identity(request)
    body = await read_body(request, JoinBody)
    placed = await services(request).queue.join(caller, str(body.event_id))
    return JSONResponse(placed, status_code=202)


async def position(request: Request) -> JSONResponse:
    placed = await services(request).queue.position(identity(request), _event_id(request))
    return JSONResponse(placed)


async def leave(request: Request) -> Response:
    await services(request).queue.leave(identity(request), _event_id(request))
    return Response(status_code=204)


async def position_stream(request: Request) -> EventStream:
    state = services(request)
    stream = await state.queue_streams.open(
        identity(request),
        _event_id(request),
        last_event_id=_last_event_id(request),
    )
    return EventStream(stream, heartbeat_s=state.settings.queue_heartbeat_s)


async def update_settings(request: Request) -> JSONResponse:
    caller = identity(request)
    patch = await read_body(request, QueuePatchBody)
    settings = await services(request).queue.update_settings(caller, _event_id(request), patch)
    return JSONResponse(settings)


routes = [
    Route("/queue/join", join, methods=["POST"]),
    Route("/queue/position/{event_id}", position, methods=["GET"]),
    Route("/queue/position/{event_id}", leave, methods=["DELETE"]),
    Route("/queue/position/{event_id}/stream", position_stream, methods=["GET"]),
    Route("/events/{event_id}/queue", update_settings, methods=["PATCH"]),
]
