"""The values the inventory scripts take and answer: hold records, zone counters, the event
document `lua/load_event.lua` loads, and each script's result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import orjson

ReleaseReason = Literal["CANCELLED", "EXPIRED", "FAILED", "REFUNDED"]


@dataclass(frozen=True, slots=True)
class Hold:
    """A booking as Redis holds it (the `holds` record)."""

    booking_id: str
    user_id: str
    zone_id: str
    quantity: int
    seats: tuple[str, ...]
    status: str
    amount_minor: int
    deadline_ms: int
    created_ms: int
    idempotency_key: str = ""
    confirmed_ms: int | None = None
    ended_ms: int | None = None

    @classmethod
    def from_json(cls, booking_id: str, raw: str | bytes) -> Hold:
        record = orjson.loads(raw)
        confirmed, ended = record.get("confirmed_ms"), record.get("ended_ms")
        return cls(
            booking_id=booking_id,
            user_id=record["user"],
            zone_id=record["zone"],
            quantity=int(record["qty"]),
            seats=tuple(record.get("seats") or ()),
            status=record["status"],
            amount_minor=int(record["amount"]),
            deadline_ms=int(record["deadline_ms"]),
            created_ms=int(record["created_ms"]),
            idempotency_key=record.get("idem") or "",
            confirmed_ms=None if confirmed is None else int(confirmed),
            ended_ms=None if ended is None else int(ended),
        )


@dataclass(frozen=True, slots=True)
class ReserveResult:
    hold: Hold
    replay: bool  # True: an idempotent replay answered the first booking


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    hold: Hold
    released: bool  # False: it was already released (no-op)


@dataclass(frozen=True, slots=True)
class ConfirmResult:
    hold: Hold
    already_confirmed: bool


@dataclass(frozen=True, slots=True)
class SweptHold:
    hold: Hold
    was_pending: bool  # never made durable in PostgreSQL


@dataclass(frozen=True, slots=True)
class SweepResult:
    expired: tuple[SweptHold, ...]
    more: bool  # due holds remain: sweep again


@dataclass(frozen=True, slots=True)
class SuspendResult:
    changed: int
    available: int


@dataclass(frozen=True, slots=True)
class ZoneAvailability:
    kind: str
    capacity: int
    available: int
    held: int
    sold: int
    suspended: int
    price_minor: int
    withheld: int = 0  # back after a sell-out, kept for the waitlist (offered or not)
    offered: int = 0  # the part of `withheld` promised by outstanding offers

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> ZoneAvailability:
        def number(name: str) -> int:
            return int(fields.get(name, 0))

        return cls(
            kind=fields.get("kind", "ga"),
            capacity=number("capacity"),
            available=number("available"),
            held=number("held"),
            sold=number("sold"),
            suspended=number("suspended"),
            price_minor=number("price"),
            withheld=number("withheld"),
            offered=number("offered"),
        )


@dataclass(frozen=True, slots=True)
class ZoneSpec:
    zone_id: str
    price_minor: int
    capacity: int = 0  # general admission; a seated zone's capacity is its seat count
    seats: tuple[str, ...] = ()  # non-empty: a seated zone


@dataclass(frozen=True, slots=True)
class Suspension:
    zone_id: str
    seats: tuple[str, ...] = ()
    quantity: int = 0


@dataclass(frozen=True, slots=True)
class RebuildBooking:
    hold: Hold
    fingerprint: str = ""  # restores the idempotency entry when the hold has a key


@dataclass(frozen=True, slots=True)
class EventSpec:
    event_id: str
    zones: tuple[ZoneSpec, ...]
    status: str = "on_sale"
    sale_starts_ms: int = 0
    max_per_user: int = 0  # 0: no limit
    queue_enabled: bool = False
    currency: str = "EUR"
    waitlist_enabled: bool = False
    offer_ttl_ms: int = 300_000

    def document(
        self,
        bookings: Sequence[RebuildBooking] = (),
        suspensions: Sequence[Suspension] = (),
        waitlist: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The JSON document `lua/load_event.lua` reads."""
        zones = [
            {"zone_id": z.zone_id, "price": z.price_minor, "seats": list(z.seats)}
            if z.seats
            else {"zone_id": z.zone_id, "price": z.price_minor, "capacity": z.capacity}
            for z in self.zones
        ]
        return {
            "event_id": self.event_id,
            "status": self.status,
            "sale_starts_ms": self.sale_starts_ms,
            "max_per_user": self.max_per_user,
            "queue_enabled": 1 if self.queue_enabled else 0,
            "currency": self.currency,
            "waitlist_enabled": 1 if self.waitlist_enabled else 0,
            "offer_ttl_ms": self.offer_ttl_ms,
            "waitlist": dict(waitlist or {"entries": [], "offers": []}),
            "zones": zones,
            "bookings": [_booking_record(b) for b in bookings],
            "suspended": [
                {"zone_id": s.zone_id, "seats": list(s.seats)}
                if s.seats
                else {"zone_id": s.zone_id, "quantity": s.quantity}
                for s in suspensions
            ],
        }


def _booking_record(booking: RebuildBooking) -> dict[str, Any]:
    hold = booking.hold
    record: dict[str, Any] = {
        "booking_id": hold.booking_id,
        "user": hold.user_id,
        "zone": hold.zone_id,
        "qty": hold.quantity,
        "status": hold.status,
        "deadline_ms": hold.deadline_ms,
        "amount": hold.amount_minor,
        "idem": hold.idempotency_key,
        "fingerprint": booking.fingerprint,
        "created_ms": hold.created_ms,
    }
    if hold.seats:
        record["seats"] = list(hold.seats)
    if hold.confirmed_ms is not None:
        record["confirmed_ms"] = hold.confirmed_ms
    if hold.ended_ms is not None:
        record["ended_ms"] = hold.ended_ms
    return record


@dataclass(frozen=True, slots=True)
class SoldOutLook:
    """lua/sold_out_look.lua's answer: an event's sale state, its total available seats, its
    general-admission zones and (when asked for) its idempotency fields `<user>:<key>`."""

    status: str  # "" = not loaded
    sale_starts_ms: int
    queue_enabled: bool
    available: int
    idem_count: int
    ga_zones: frozenset[str]
    idem_fields: frozenset[str]

    NOT_LOADED: ClassVar[SoldOutLook]

    def same_sale(self, other: SoldOutLook) -> bool:
        """Nothing a reserve's answer depends on changed (the fields aside: a change in their
        number shows in `idem_count`)."""
        return (
            self.status,
            self.sale_starts_ms,
            self.queue_enabled,
            self.available,
            self.idem_count,
            self.ga_zones,
        ) == (
            other.status,
            other.sale_starts_ms,
            other.queue_enabled,
            other.available,
            other.idem_count,
            other.ga_zones,
        )


SoldOutLook.NOT_LOADED = SoldOutLook("", 0, False, 0, 0, frozenset(), frozenset())
