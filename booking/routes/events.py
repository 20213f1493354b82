"""HTTP routes for /events (catalog and availability)."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.routing import Route

from booking.catalog import event_body
from booking.errors import InvalidRequestError, UnauthorizedError
from booking.http import JSONResponse, identity, read_body, services
from booking.schemas import EventBody
from common.tokens import Identity


def _optional_identity(request: Request) -> Identity | None:
    if "authorization" not in request.headers:
        return None
    try:
        return identity(request)
    except UnauthorizedError:
        return None


async def create_event(request: Request) -> JSONResponse:
    caller = identity(request)
    body = await read_body(request, EventBody)
    event = await services(request).catalog.create_event(caller, body)
    return JSONResponse(event_body(event), status_code=201)


def _flag(request: Request, name: str) -> bool:
    """A boolean query parameter: absent, or exactly once `true` / `false`."""
    values = request.query_params.getlist(name)
    if not values:
        return False
    if len(values) > 1 or values[0] not in ("true", "false"):
        raise InvalidRequestError.field(name, "must be given once, as true or false")
    return values[0] == "true"


async def list_events(request: Request) -> JSONResponse:
    catalog = services(request).catalog
    if _flag(request, "mine"):
        events = await catalog.list_managed_events(identity(request))
    else:
        events = await catalog.list_events()
    return JSONResponse({"items": [event_body(event) for event in events]})


async def get_event(request: Request) -> JSONResponse:
    event = await services(request).catalog.get_event(
        request.path_params["event_id"], _optional_identity(request)
    )
    return JSONResponse(event_body(event))


async def publish_event(request: Request) -> JSONResponse:
    event = await services(request).catalog.publish_event(
        identity(request), request.path_params["event_id"], datetime.now(UTC)
    )
    return JSONResponse(event_body(event))


async def availability(request: Request) -> JSONResponse:
    return JSONResponse(
        await services(request).catalog.availability(request.path_params["event_id"])
    )


async def seat_states(request: Request) -> JSONResponse:
    return JSONResponse(
        await services(request).catalog.seat_states(request.path_params["event_id"])
    )


routes = [
    Route("/events", create_event, methods=["POST"]),
    Route("/events", list_events, methods=["GET"]),
    Route("/events/{event_id}", get_event, methods=["GET"]),
    Route("/events/{event_id}/publish", publish_event, methods=["POST"]),
    Route("/events/{event_id}/availability", availability, methods=["GET"]),
    Route("/events/{event_id}/seats", seat_states, methods=["GET"]),
]
