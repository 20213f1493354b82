"""HTTP routes for POST /events/{id}/seats/suspend and /unsuspend (the event's organizer or an
admin)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from booking.http import JSONResponse, identity, read_body, services
from booking.schemas import SuspendBody, UnsuspendBody
from booking.suspensions import Action, SuspendRequest


def _request(body: UnsuspendBody) -> SuspendRequest:
    return SuspendRequest(
        zone_id=str(body.zone_id),
        seats=tuple(body.seats or ()),
        quantity=body.quantity or 0,
        reason=body.reason if isinstance(body, SuspendBody) else "",
    )


async def _change(request: Request, model: type[UnsuspendBody], action: Action) -> JSONResponse:
    caller = identity(request)
    body = await read_body(request, model)
    result = await services(request).suspensions.change(
        caller, request.path_params["event_id"], _request(body), action
    )
    return JSONResponse(result)


async def suspend(request: Request) -> JSONResponse:
    return await _change(request, SuspendBody, "suspend")


async def unsuspend(request: Request) -> JSONResponse:
    return await _change(request, UnsuspendBody, "unsuspend")


routes = [
    Route("/events/{event_id}/seats/suspend", suspend, methods=["POST"]),
    Route("/events/{event_id}/seats/unsuspend", unsuspend, methods=["POST"]),
]
