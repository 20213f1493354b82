"""HTTP routes for /bookings."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from booking.domain import Booking
from booking.http import JSONResponse, identity, read_body, services
from booking.inventory.scripts import epoch_ms
from booking.schemas import ReserveBody
from booking.tickets import Ticket


async def reserve(request: Request) -> JSONResponse:
    caller = identity(request)
    body = await read_body(request, ReserveBody)
    booking, _replay = await services(request).bookings.reserve(
        caller,
        body,
        idempotency_key=request.headers.get("idempotency-key"),
        queue_pass=request.headers.get("x-queue-pass"),
        waitlist_offer=request.headers.get("x-waitlist-offer"),
        now_ms=epoch_ms(),
    )
    return JSONResponse(booking.body(), status_code=201)


async def get_booking(request: Request) -> JSONResponse:
    state = services(request)
    booking = await state.bookings.get(identity(request), request.path_params["booking_id"])
    tickets = await state.tickets.of_bookings([booking])
    return JSONResponse(_with_tickets(booking, tickets))


async def list_bookings(request: Request) -> JSONResponse:
    state = services(request)
    bookings = await state.bookings.list_mine(identity(request))
    tickets = await state.tickets.of_bookings(bookings)
    return JSONResponse({"items": [_with_tickets(booking, tickets) for booking in bookings]})


def _with_tickets(booking: Booking, tickets: dict[str, list[Ticket]]) -> dict[str, Any]:
    body = booking.body()
    body["tickets"] = [ticket.body() for ticket in tickets.get(booking.booking_id, ())]
    return body


async def cancel(request: Request) -> JSONResponse:
    booking = await services(request).bookings.cancel(
        identity(request), request.path_params["booking_id"]
    )
    return JSONResponse(booking.body())


routes = [
    Route("/bookings/reserve", reserve, methods=["POST"]),
    Route("/bookings", list_bookings, methods=["GET"]),
    Route("/bookings/{booking_id:id}", get_booking, methods=["GET"]),
    Route("/bookings/{booking_id}/cancel", cancel, methods=["POST"]),
]
