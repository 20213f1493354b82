"""HTTP routes for POST /events/{id}/seats/suspend and /unsuspend (admin only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, model_validator
from starlette.requests import Request
from starlette.routing import Route

from booking.http import JSONResponse, identity, read_body
from booking.openapi import register
from booking.schemas import Body
from booking.suspensions import Action, SuspendRequest

Label = Annotated[str, Field(min_length=1, max_length=32)]


class UnsuspendBody(Body):
    zone_id: uuid.UUID
    seats: list[Label] | None = Field(default=None, min_length=1, max_length=1000)
    quantity: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def seats_or_quantity(self) -> UnsuspendBody:
        if (self.seats is None) == (self.quantity is None):
            raise ValueError("give either seats (seated zone) or quantity (general admission)")
        return self


class SuspendBody(UnsuspendBody):
    reason: str = Field(min_length=1, max_length=500)


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
    result = await request.app.state.suspensions.change(
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

register(
    [
        ("post", "/events/{event_id}/seats/suspend", "Take free seats out of sale (admin)",
         SuspendBody, 200, False),
        ("post", "/events/{event_id}/seats/unsuspend", "Put suspended seats back on sale (admin)",
         UnsuspendBody, 200, False),
    ]
)  # fmt: skip
