"""HTTP routes for /bookings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from booking.http import JSONResponse, identity, read_body, services
from booking.inventory.scripts import epoch_ms
from booking.schemas import ReserveBody


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
    booking = await services(request).bookings.get(
        identity(request), request.path_params["booking_id"]
    )
    return JSONResponse(booking.body())


async def list_bookings(request: Request) -> JSONResponse:
    bookings = await services(request).bookings.list_mine(identity(request))
    return JSONResponse({"items": [booking.body() for booking in bookings]})


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
