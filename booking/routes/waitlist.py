"""HTTP routes of an event's waitlist: join, my place and offer, its stream, leave, settings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from booking.http import JSONResponse, identity, read_body, services
from booking.queue.routes import _event_id
from booking.schemas import WaitlistJoinBody, WaitlistPatchBody
from booking.sse import EventStream
from booking.waitlist.stream import WaitlistStream


async def join(request: Request) -> JSONResponse:
    caller = identity(request)
    body = await read_body(request, WaitlistJoinBody)
    place = await services(request).waitlist.join(caller, _event_id(request), body)
    return JSONResponse(place, status_code=202)


async def place(request: Request) -> JSONResponse:
    found = await services(request).waitlist.place(identity(request), _event_id(request))
    return JSONResponse(found)


async def leave(request: Request) -> Response:
    await services(request).waitlist.leave(identity(request), _event_id(request))
    return Response(status_code=204)


async def stream(request: Request) -> EventStream:
    state = services(request)
    caller = identity(request)
    event_id = _event_id(request)
    source = WaitlistStream(state.hub, event_id, caller.user_id)
    await source.subscribe()
    try:
        source.show(await state.waitlist.place(caller, event_id))
    except BaseException:
        source.close("failed")
        raise
    return EventStream(source, heartbeat_s=state.settings.queue_heartbeat_s)


async def update_settings(request: Request) -> JSONResponse:
    caller = identity(request)
    patch = await read_body(request, WaitlistPatchBody)
    settings = await services(request).waitlist.update_settings(caller, _event_id(request), patch)
    return JSONResponse(settings)


routes = [
    Route("/events/{event_id}/waitlist", join, methods=["POST"]),
    Route("/events/{event_id}/waitlist", place, methods=["GET"]),
    Route("/events/{event_id}/waitlist", leave, methods=["DELETE"]),
    Route("/events/{event_id}/waitlist/stream", stream, methods=["GET"]),
    Route("/events/{event_id}/waitlist/settings", update_settings, methods=["PATCH"]),
]
