"""HTTP route for the door: POST /checkin."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from booking.http import JSONResponse, identity, read_body, services
from booking.schemas import CheckInBody


async def check_in(request: Request) -> JSONResponse:
    caller = identity(request)
    body = await read_body(request, CheckInBody)
    ticket = await services(request).tickets.check_in(caller, body.code)
    return JSONResponse(ticket.admission())


routes = [Route("/checkin", check_in, methods=["POST"])]
