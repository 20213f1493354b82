"""The success bodies of the API, as the OpenAPI document states them.

Documentation models only: the routes build their bodies as dicts (the hot path does not pay for
a model), and the contract test (schemathesis, every check on) compares each real answer with
these. Fields the server may add later are allowed; the ones listed here are promised.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Timestamp = str  # RFC 3339, UTC ("2030-01-01T20:00:00Z")
Id = str  # a UUID in its canonical form


class User(BaseModel):
    user_id: Id = Field(json_schema_extra={"format": "uuid"})
    email: str
    name: str
    role: Literal["customer", "organizer", "admin", "staff"]


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="seconds until the access token expires")


class Zone(BaseModel):
    zone_id: Id = Field(json_schema_extra={"format": "uuid"})
    name: str
    capacity: int
    price_minor: int = Field(description="price of one ticket in the currency's minor unit")
    seats: list[str] | None = Field(default=None, description="seated zones only")


class QueueSettings(BaseModel):
    enabled: bool
    max_concurrent: int
    release_per_tick: int
    pass_ttl_s: int
    paused: bool


class WaitlistSettings(BaseModel):
    enabled: bool
    offer_ttl_s: int = Field(description="how long an offer may be taken, once made")


class EventWaitlistSettings(WaitlistSettings):
    event_id: Id


class WaitlistOffer(BaseModel):
    offer_id: Id = Field(description="send as X-Waitlist-Offer with the reservation")
    zone_id: Id
    quantity: int
    seats: list[str] | None = Field(default=None, description="seated: exactly these seats")
    expires_at: Timestamp


class WaitlistPlace(BaseModel):
    event_id: Id
    entry_id: Id
    zone_id: Id | None = Field(description="null: any zone")
    quantity: int
    status: Literal["waiting", "offered"]
    position: int | None = Field(description="people ahead in the line, plus one")
    offer: WaitlistOffer | None = None
    joined_at: Timestamp


class EventQueue(QueueSettings):
    seed_sha256: str | None = Field(
        default=None, description="commitment to the shuffle seed of the pre-queue"
    )
    seed: str | None = Field(default=None, description="the seed itself, once the sale opened")


class Event(BaseModel):
    event_id: Id = Field(json_schema_extra={"format": "uuid"})
    name: str
    venue: str
    starts_at: Timestamp = Field(json_schema_extra={"format": "date-time"})
    sale_starts_at: Timestamp = Field(json_schema_extra={"format": "date-time"})
    max_per_user: int
    currency: str
    status: Literal["draft", "on_sale", "closed"]
    organizer_id: Id
    zones: list[Zone]
    queue: EventQueue
    waitlist: WaitlistSettings


class EventList(BaseModel):
    items: list[Event]


class ZoneAvailability(BaseModel):
    zone_id: Id
    capacity: int
    available: int


class Availability(BaseModel):
    event_id: Id
    zones: list[ZoneAvailability]


SeatState = Literal["available", "held", "sold", "suspended", "unavailable"]


class ZoneSeatStates(BaseModel):
    zone_id: Id
    seats: dict[str, SeatState] = Field(
        description="label -> state (`unavailable`: the event has no live inventory)"
    )


class SeatStates(BaseModel):
    event_id: Id
    zones: list[ZoneSeatStates] = Field(description="seated zones only")


class Ticket(BaseModel):
    ticket_id: Id
    code: str = Field(description="signed; show it at the door (as text or a QR code)")
    zone_id: Id
    seat_id: str | None = Field(description="the seat's label; null in general admission")
    status: Literal["valid", "void"]
    checked_in_at: Timestamp | None


class CheckIn(BaseModel):
    ticket_id: Id
    booking_id: Id
    event_id: Id
    zone_id: Id
    seat_id: str | None = Field(description="the seat's label; null in general admission")
    checked_in_at: Timestamp


class Booking(BaseModel):
    booking_id: Id = Field(json_schema_extra={"format": "uuid"})
    event_id: Id
    zone_id: Id
    quantity: int
    status: Literal["RESERVED", "CONFIRMED", "CANCELLED", "EXPIRED", "REFUNDED"]
    amount_minor: int
    currency: str
    created_at: Timestamp
    expires_at: Timestamp = Field(description="when an unpaid hold lapses")
    seats: list[str] | None = None
    confirmed_at: Timestamp | None = None
    payment_id: Id | None = None
    tickets: list[Ticket] | None = Field(
        default=None,
        description="GET and list only: one per seat or unit once confirmed (void once refunded)",
    )


class BookingList(BaseModel):
    items: list[Booking]


class QueuePlace(BaseModel):
    event_id: Id
    status: Literal["waiting", "admitted"]
    position: int | None = Field(default=None, description="waiting: people ahead, plus one")
    estimated_wait_s: int | None = None
    pre_queue: bool | None = Field(default=None, description="joined before the sale opened")
    queue_pass: str | None = Field(default=None, description="admitted: send as X-Queue-Pass")
    pass_expires_at: Timestamp | None = None


class EventQueueSettings(QueueSettings):
    event_id: Id


class Payment(BaseModel):
    payment_id: Id = Field(json_schema_extra={"format": "uuid"})
    booking_id: Id
    status: str = Field(description="PENDING, SUCCEEDED, FAILED or REFUNDED")
    amount_minor: int
    currency: str
    provider: str
    created_at: Timestamp
    updated_at: Timestamp | None = None


class WebhookReceived(BaseModel):
    received: Literal[True]
    result: str | None = None


class ZoneCounters(BaseModel):
    zone_id: Id
    capacity: int
    available: int
    held: int
    sold: int
    postgres: dict[str, int]
    drift: int


class QueueStats(BaseModel):
    open: bool
    paused: bool
    sold_out: bool
    waiting: int
    pre_queue: int
    passes_outstanding: int
    admitted_per_s: float = Field(description="the measured outflow (EWMA)")


class LiveFigures(BaseModel):
    processes: int = Field(description="booking processes whose figures are included")
    feed_watchers: int = Field(description="availability-feed watchers of the event")
    queue_streams: int = Field(description="waiting rooms' position streams open")
    events_per_s: float = Field(description="seat updates per second on the event's feed")
    pass_deliveries: int = Field(description="passes pushed to streams in the window")
    pass_delivery_p99_s: float | None = Field(
        description="p99 of admission to pass on the stream over the window; null: no pass"
    )
    window_s: float


class EventStats(BaseModel):
    event_id: Id
    status: str
    capacity: int
    available: int
    held: int
    sold: int
    drift: int
    zones: list[ZoneCounters]
    queue: QueueStats | None = Field(default=None, description="null: the event has no queue")
    live: LiveFigures


class SuspendResult(BaseModel):
    event_id: Id
    zone_id: Id
    changed: int = Field(description="seats or places that changed state")
    capacity: int
    available: int
    held: int
    sold: int
    suspended: int


class ClientConfig(BaseModel):
    payment_provider: Literal["mock", "stripe"]
    test_outcomes: list[str] = Field(
        description="the mock provider's scripted outcomes (POST /payments test_outcome); "
        "empty with a real provider"
    )


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: str = Field(description='"ready" from a booking process, "ok" from the gateway')
    dependencies: dict[str, str] = Field(description="each dependency and its state")
