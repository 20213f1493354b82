"""The API's operations, one row each, for the OpenAPI document (`booking/openapi.py`): request
model, success body, headers, the problems it answers, examples and links."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from booking import responses, schemas
from booking.domain import MAX_IDEMPOTENCY_KEY
from booking.schemas import PaymentBody


@dataclass(frozen=True)
class Header:
    name: str
    description: str
    required: bool = False
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "A key of the client's choosing per intended action: a retry with the same key and body "
    "answers the first result again and never acts twice; the same key with another body is "
    "422 idempotency_key_reused.",
    required=True,
    schema={"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
)
QUEUE_PASS = Header(
    "X-Queue-Pass",
    "The one-time pass from the virtual queue (GET /queue/position/{event_id} once admitted); "
    "required when the event's queue is enabled, consumed by the reservation it allows.",
)
WAITLIST_OFFER = Header(
    "X-Waitlist-Offer",
    "The id of a waitlist offer made to the caller (GET /events/{event_id}/waitlist): the "
    "reservation takes the offer's seats (same zone, quantity and seats), in place of a queue "
    "pass, and consumes the offer; anything else is 403 waitlist_offer_invalid.",
)
LAST_EVENT_ID = Header(
    "Last-Event-ID",
    "The id of the last message seen: a reconnecting stream resumes after it.",
    schema={"type": "string", "pattern": "^[0-9]{1,17}$"},
)


@dataclass(frozen=True)
class QueryParam:
    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


MINE = QueryParam(
    "mine",
    "true: the events the caller manages instead, drafts included (an organizer's own, every "
    "event for an admin, none for a buyer); needs a bearer token. Only true or false, once.",
    schema={"type": "boolean"},
)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    status: int = 200
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    media_type: str = "application/json"
    public: bool = False
    headers: tuple[Header, ...] = ()
    query: tuple[QueryParam, ...] = ()
    problems: tuple[str, ...] = ()
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    example: dict[str, Any] | None = None


def _link(operation_id: str, **fields: Any) -> dict[str, Any]:
    link: dict[str, Any] = {"operationId": operation_id}
    link.update(fields)
    return link


EVENT_EXAMPLE = {
    "name": "The Drop",
    "venue": "Arena",
    "starts_at": "2030-01-01T20:00:00Z",
    "sale_starts_at": "2020-01-01T10:00:00Z",
    "max_per_user": 4,
    "currency": "EUR",
    "zones": [
        {"name": "Floor", "capacity": 100, "price_minor": 4500},
        {"name": "Balcony", "price_minor": 8000, "seats": ["A1", "A2", "A3"]},
    ],
    "queue": {"enabled": False},
}
EVENT_LINKS = {
    "publish": _link("publishEvent", parameters={"event_id": "$response.body#/event_id"}),
    "get": _link("getEvent", parameters={"event_id": "$response.body#/event_id"}),
    "availability": _link("getAvailability", parameters={"event_id": "$response.body#/event_id"}),
    "stats": _link("getEventStats", parameters={"event_id": "$response.body#/event_id"}),
}
SALE_LINKS = {
    **EVENT_LINKS,
    # One ticket of the first zone, whichever kind it is (the other link then fails with 422).
    "reserveTicket": _link(
        "reserve",
        requestBody={
            "event_id": "$response.body#/event_id",
            "zone_id": "$response.body#/zones/0/zone_id",
            "quantity": 1,
            "seats": None,
        },
    ),
    "reserveSeat": _link(
        "reserve",
        requestBody={
            "event_id": "$response.body#/event_id",
            "zone_id": "$response.body#/zones/0/zone_id",
            "seats": ["$response.body#/zones/0/seats/0"],
            "quantity": None,
        },
    ),
    "join": _link("joinQueue", requestBody={"event_id": "$response.body#/event_id"}),
    "suspend": _link(
        "suspendSeats",
        parameters={"event_id": "$response.body#/event_id"},
        requestBody={"zone_id": "$response.body#/zones/0/zone_id"},
    ),
}
BOOKING_LINKS = {
    "get": _link("getBooking", parameters={"booking_id": "$response.body#/booking_id"}),
    "cancel": _link("cancelBooking", parameters={"booking_id": "$response.body#/booking_id"}),
    "pay": _link("createPayment", requestBody={"booking_id": "$response.body#/booking_id"}),
}
QUEUE_LINKS = {
    "position": _link("getQueuePosition", parameters={"event_id": "$response.body#/event_id"}),
    "leave": _link("leaveQueue", parameters={"event_id": "$response.body#/event_id"}),
}

WAITLIST_LINKS = {
    "place": _link("getWaitlistPlace", parameters={"event_id": "$response.body#/event_id"}),
    "leave": _link("leaveWaitlist", parameters={"event_id": "$response.body#/event_id"}),
}

OPERATIONS: list[Operation] = [
    Operation(
        "post", "/auth/register", "register", "Create a customer account", 201,
        schemas.RegisterBody, responses.User, public=True, problems=("email_taken",),
        links={"login": _link("login", requestBody={
            "email": "$request.body#/email", "password": "$request.body#/password"})},
        example={"email": "buyer@example.com", "password": "correct horse", "name": "Buyer"},
    ),
    Operation(
        "post", "/auth/login", "login", "Exchange credentials for tokens", 200,
        schemas.LoginBody, responses.TokenPair, public=True, problems=("invalid_credentials",),
        links={"refresh": _link("refresh", requestBody={
            "refresh_token": "$response.body#/refresh_token"})},
        example={"email": "buyer@example.com", "password": "correct horse"},
    ),
    Operation(
        "post", "/auth/refresh", "refresh", "Rotate a refresh token (the old one stops working)",
        200, schemas.RefreshBody, responses.TokenPair, public=True,
        problems=("invalid_credentials",),
    ),
    Operation(
        "post", "/auth/logout", "logout",
        "Sign out: the refresh token and every token rotated with it stop working", 204,
        schemas.RefreshBody, public=True, media_type="",
    ),
    Operation("get", "/auth/me", "me", "The caller's account", 200, None, responses.User),
    Operation(
        "post", "/events", "createEvent", "Create an event (organizer, admin)", 201,
        schemas.EventBody, responses.Event, links=EVENT_LINKS, example=EVENT_EXAMPLE,
    ),
    Operation(
        "get", "/events", "listEvents", "Events on sale or closed (mine=true: the caller's)",
        200, None, responses.EventList, public=True, query=(MINE,),
    ),
    Operation(
        "get", "/events/{event_id}", "getEvent", "One event (a draft: its organizer or admin)",
        200, None, responses.Event, public=True,
    ),
    Operation(
        "post", "/events/{event_id}/publish", "publishEvent",
        "Load inventory and open the sale (organizer, admin)", 200, None, responses.Event,
        problems=("invalid_state",), links=SALE_LINKS,
    ),
    Operation(
        "get", "/events/{event_id}/availability", "getAvailability", "Seats available per zone",
        200, None, responses.Availability, public=True,
    ),
    Operation(
        "get", "/events/{event_id}/seats", "getSeatStates",
        "Each seat's state per seated zone (for a seat map)", 200, None, responses.SeatStates,
        public=True,
    ),
    Operation(
        "post", "/bookings/reserve", "reserve", "Hold seats until the hold's deadline", 201,
        schemas.ReserveBody, responses.Booking,
        headers=(IDEMPOTENCY_KEY, QUEUE_PASS, WAITLIST_OFFER),
        problems=(
            "idempotency_key_required", "idempotency_key_reused", "idempotency_in_flight",
            "sold_out", "seat_unavailable", "user_limit_exceeded", "sale_not_open",
            "queue_pass_required", "queue_pass_invalid", "waitlist_offer_invalid",
            "waitlist_offer_expired", "waitlist_offer_mismatch",
        ),
        links=BOOKING_LINKS,
    ),
    Operation(
        "get", "/bookings", "listBookings", "My bookings, newest first", 200, None,
        responses.BookingList,
    ),
    Operation(
        "get", "/bookings/{booking_id}", "getBooking", "One booking (owner or admin)", 200, None,
        responses.Booking,
    ),
    Operation(
        "post", "/bookings/{booking_id}/cancel", "cancelBooking",
        "Cancel a booking (a paid one is refunded)", 200, None, responses.Booking,
        problems=("invalid_state",),
    ),
    Operation(
        "get", "/admin/events/{event_id}/stats", "getEventStats",
        "Counters, drift and live figures (the event's organizer, admin)", 200, None,
        responses.EventStats,
    ),
    Operation(
        "post", "/queue/join", "joinQueue", "Join an event's queue (joining again keeps the place)",
        202, schemas.JoinBody, responses.QueuePlace, problems=("invalid_state", "sold_out"),
        links=QUEUE_LINKS,
    ),
    Operation(
        "get", "/queue/position/{event_id}", "getQueuePosition",
        "My place in the queue, or my pass", 200, None, responses.QueuePlace,
    ),
    Operation(
        "delete", "/queue/position/{event_id}", "leaveQueue",
        "Leave the queue (an unused pass is revoked)", 204, media_type="",
    ),
    Operation(
        "get", "/queue/position/{event_id}/stream", "streamQueuePosition",
        "My place, live (Server-Sent Events: position, admitted, sold_out)", 200,
        media_type="text/event-stream", headers=(LAST_EVENT_ID,),
    ),
    Operation(
        "patch", "/events/{event_id}/queue", "updateQueue",
        "Change the outflow or pause (organizer, admin)", 200, schemas.QueuePatchBody,
        responses.EventQueueSettings,
    ),
    Operation(
        "post", "/events/{event_id}/waitlist", "joinWaitlist",
        "Join a sold-out event's (or zone's) waitlist; joining again the same way keeps the place",
        202, schemas.WaitlistJoinBody, responses.WaitlistPlace,
        problems=("not_sold_out", "already_waitlisted", "waitlist_closed", "sale_not_open"),
        links=WAITLIST_LINKS,
    ),
    Operation(
        "get", "/events/{event_id}/waitlist", "getWaitlistPlace",
        "My place on the waitlist, or the offer I hold", 200, None, responses.WaitlistPlace,
    ),
    Operation(
        "delete", "/events/{event_id}/waitlist", "leaveWaitlist",
        "Leave the waitlist (an outstanding offer goes to the next in line)", 204, media_type="",
    ),
    Operation(
        "get", "/events/{event_id}/waitlist/stream", "streamWaitlist",
        "My waitlist place, live (Server-Sent Events: place, offer)", 200,
        media_type="text/event-stream",
    ),
    Operation(
        "patch", "/events/{event_id}/waitlist/settings", "updateWaitlist",
        "Turn the waitlist on or off, set the offer TTL (organizer, admin)", 200,
        schemas.WaitlistPatchBody, responses.EventWaitlistSettings,
    ),
    Operation(
        "get", "/events/{event_id}/availability/stream", "streamAvailability",
        "Availability, live (Server-Sent Events)", 200, media_type="text/event-stream",
        public=True, headers=(LAST_EVENT_ID,),
    ),
    Operation(
        "post", "/events/{event_id}/seats/suspend", "suspendSeats",
        "Take free seats out of sale (organizer, admin)", 200, schemas.SuspendBody,
        responses.SuspendResult, problems=("seat_unavailable", "invalid_state"),
    ),
    Operation(
        "post", "/events/{event_id}/seats/unsuspend", "unsuspendSeats",
        "Put suspended seats back on sale (organizer, admin)", 200, schemas.UnsuspendBody,
        responses.SuspendResult, problems=("invalid_state",),
    ),
    Operation(
        "post", "/payments", "createPayment", "Pay for a hold", 201, PaymentBody,
        responses.Payment, headers=(IDEMPOTENCY_KEY,),
        problems=(
            "idempotency_key_required", "idempotency_key_reused", "invalid_state",
            "reservation_expired",
        ),
        links={"get": _link("getPayment", parameters={
            "payment_id": "$response.body#/payment_id"})},
    ),
    Operation(
        "get", "/payments/{payment_id}", "getPayment", "One payment (owner or admin)", 200, None,
        responses.Payment,
    ),
    Operation(
        "post", "/payments/webhook", "paymentWebhook",
        "The payment provider's webhook (its signature is its authentication)", 200, None,
        responses.WebhookReceived, public=True, problems=("invalid_signature",),
    ),
    Operation(
        "post", "/checkin", "checkIn",
        "Admit a ticket's holder once (staff, admin, the event's organizer)", 200,
        schemas.CheckInBody, responses.CheckIn,
        problems=("ticket_invalid", "already_checked_in", "ticket_void", "not_found"),
    ),
    Operation(
        "get", "/config", "getConfig", "What the pages need to know (the payment provider)",
        200, None, responses.ClientConfig, public=True,
    ),
    Operation("get", "/health", "health", "Liveness", 200, None, responses.Health, public=True),
    Operation(
        "get", "/ready", "ready", "Readiness of Redis and PostgreSQL", 200, None,
        responses.Ready, public=True,
    ),
    Operation(
        "get", "/metrics", "metrics", "Prometheus metrics", 200, media_type="text/plain",
        public=True,
    ),
    Operation(
        "get", "/openapi.json", "openapi", "This document", 200, media_type="application/json",
        public=True,
    ),
]  # fmt: skip
