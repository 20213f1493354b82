"""Typed async wrapper over the inventory Lua scripts (`lua/*.lua`, one EVALSHA per call).

Scripts answer `{1, ...}` or `{0, CODE[, detail]}`; a failure raises the `booking.errors`
class mapped in `ERRORS`. Time is passed in (`now_ms`), defaulting to the injected clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from redis.asyncio import Redis

import lua
from booking import errors
from booking.keys import LIVE_EVENTS, event_keys, script_keys
from booking.metrics import SCRIPT_LATENCY
from common.script_batch import ScriptBatcher

SCRIPT_NAMES = (
    "reserve",
    "release",
    "confirm",
    "extend_hold",
    "sweep",
    "load_event",
    "suspend",
    "unsuspend",
)
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

    def document(
        self, bookings: Sequence[RebuildBooking] = (), suspensions: Sequence[Suspension] = ()
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


class EventNotLoadedError(errors.ServiceUnavailableError):
    """Redis has no inventory for the event: unknown, unpublished, or lost (rebuild it)."""


def _sold_out(detail: str | None) -> errors.BookingError:
    left = int(detail or 0)
    return errors.SoldOutError("sold out" if left == 0 else f"only {left} left")


ERRORS: dict[str, Callable[[str | None], errors.BookingError]] = {
    "SOLD_OUT": _sold_out,
    "SEAT_UNAVAILABLE": lambda d: errors.SeatUnavailableError(
        f"seat {d} is not available" if d else None
    ),
    "USER_LIMIT": lambda d: errors.UserLimitExceededError(
        f"you may take {d} more ticket(s) for this event" if d is not None else None
    ),
    "SALE_NOT_OPEN": lambda d: errors.SaleNotOpenError(),
    "UNKNOWN_ZONE": lambda d: errors.InvalidRequestError.field("zone_id", "unknown zone"),
    "UNKNOWN_SEAT": lambda d: errors.InvalidRequestError.field("seats", f"unknown seat {d}"),
    "INVALID_SEATS": lambda d: errors.InvalidRequestError.field("seats", d or "invalid seats"),
    "INVALID_QUANTITY": lambda d: errors.InvalidRequestError.field(
        "quantity", "must be an integer >= 1"
    ),
    "PASS_REQUIRED": lambda d: errors.QueuePassRequiredError(),
    "PASS_INVALID": lambda d: errors.QueuePassInvalidError(),
    "IDEMPOTENCY_KEY_REUSED": lambda d: errors.IdempotencyKeyReusedError(),
    "IDEMPOTENCY_IN_FLIGHT": lambda d: errors.IdempotencyInFlightError(),
    "RESERVATION_EXPIRED": lambda d: errors.ReservationExpiredError(),
    "INVALID_STATE": lambda d: errors.InvalidStateError(d),
    "NOT_FOUND": lambda d: errors.NotFoundError("booking not found"),
    "EVENT_NOT_LOADED": lambda d: EventNotLoadedError("event inventory not loaded"),
    "BOOKING_EXISTS": lambda d: errors.InvalidStateError("booking id already used"),
    "INVALID_REASON": lambda d: errors.InvalidStateError("invalid release reason"),
    "INVALID_DOCUMENT": lambda d: errors.InvalidRequestError(f"inventory document: {d}"),
    "OVERSOLD": lambda d: errors.InvalidStateError(f"inventory would be oversold: {d}"),
}


class TimedScript:
    """A script whose calls observe `booking_rush_lua_script_duration_seconds`.

    Calls made in the same event-loop turn share one pipeline (common/script_batch.py): during a
    drop hundreds of reserves arrive together, and redis-py's per-command cost was the largest
    single item of the reserve path (py-spy). The duration includes that short wait.
    """

    def __init__(self, name: str, redis: Redis) -> None:
        self.script = ScriptBatcher(redis, lua.source(name))
        self._latency = SCRIPT_LATENCY.labels(name)

    async def __call__(self, *, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        started = time.perf_counter()
        try:
            return await self.script.run(keys, args)
        finally:
            self._latency.observe(time.perf_counter() - started)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check(reply: list[Any]) -> list[Any]:
    """The reply of a successful script; raises the mapped domain error otherwise."""
    if int(reply[0]) == 1:
        return reply
    code = _text(reply[1])
    detail = _text(reply[2]) if len(reply) > 2 else None
    factory = ERRORS.get(code)
    if factory is None:
        raise errors.BookingError(f"script error {code}")
    raise factory(detail)


def _json_list(values: Sequence[str] | None) -> str:
    return orjson.dumps(list(values)).decode() if values else ""


def epoch_ms() -> int:
    return time.time_ns() // 1_000_000


def iso_of(now_ms: int) -> str:
    moment = datetime.fromtimestamp(now_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Scripts:
    """The inventory scripts bound to one Redis client (a pool). Build once per process."""

    def __init__(self, redis: Redis, *, clock: Callable[[], int] = epoch_ms) -> None:
        self._redis = redis
        self._clock = clock
        self._reserve = self._register("reserve")
        self._release = self._register("release")
        self._confirm = self._register("confirm")
        self._extend_hold = self._register("extend_hold")
        self._sweep = self._register("sweep")
        self._load_event = self._register("load_event")
        self._suspend = self._register("suspend")
        self._unsuspend = self._register("unsuspend")

    def _register(self, name: str) -> TimedScript:
        return TimedScript(name, self._redis)

    async def load(self) -> None:
        """SCRIPT LOAD every script (at start-up: a syntax error fails here, not mid-sale)."""
        for name in SCRIPT_NAMES:
            await getattr(self, f"_{name}").script.load()

    async def reserve(
        self,
        event_id: str,
        *,
        booking_id: str,
        user_id: str,
        zone_id: str,
        quantity: int = 0,
        seats: Sequence[str] | None = None,
        idempotency_key: str = "",
        fingerprint: str = "",
        pass_id: str = "",
        ttl_ms: int,
        now_ms: int | None = None,
    ) -> ReserveResult:
        now = self._clock() if now_ms is None else now_ms
        reply = _check(
            await self._reserve(
                keys=script_keys(event_id),
                args=(
                    booking_id,
                    user_id,
                    zone_id,
                    quantity,
                    _json_list(seats),
                    idempotency_key,
                    fingerprint,
                    pass_id,
                    now,
                    ttl_ms,
                    iso_of(now),
                ),
            )
        )
        first_id = _text(reply[1])
        hold = Hold.from_json(first_id, reply[3])
        return ReserveResult(hold=hold, replay=int(reply[2]) == 1)

    async def release(
        self,
        event_id: str,
        booking_id: str,
        *,
        reason: ReleaseReason = "CANCELLED",
        allow_confirmed: bool = False,
        now_ms: int | None = None,
    ) -> ReleaseResult:
        now = self._clock() if now_ms is None else now_ms
        reply = _check(
            await self._release(
                keys=script_keys(event_id),
                args=(booking_id, reason, 1 if allow_confirmed else 0, now, iso_of(now)),
            )
        )
        return ReleaseResult(hold=Hold.from_json(booking_id, reply[2]), released=int(reply[1]) == 1)

    async def confirm(
        self, event_id: str, booking_id: str, *, now_ms: int | None = None
    ) -> ConfirmResult:
        now = self._clock() if now_ms is None else now_ms
        reply = _check(
            await self._confirm(keys=script_keys(event_id), args=(booking_id, now, iso_of(now)))
        )
        return ConfirmResult(
            hold=Hold.from_json(booking_id, reply[2]), already_confirmed=int(reply[1]) == 1
        )

    async def extend_hold(
        self, event_id: str, booking_id: str, *, until_ms: int, now_ms: int | None = None
    ) -> int:
        """Moves a live hold's deadline to `until_ms` (never earlier); returns the deadline."""
        now = self._clock() if now_ms is None else now_ms
        reply = _check(
            await self._extend_hold(keys=script_keys(event_id), args=(booking_id, now, until_ms))
        )
        return int(reply[1])

    async def sweep(
        self, event_id: str, *, limit: int = 100, now_ms: int | None = None
    ) -> SweepResult:
        now = self._clock() if now_ms is None else now_ms
        reply = _check(
            await self._sweep(keys=script_keys(event_id), args=(now, limit, iso_of(now)))
        )
        swept = tuple(
            SweptHold(
                hold=Hold.from_json(_text(reply[i]), reply[i + 1]),
                was_pending=int(reply[i + 2]) == 1,
            )
            for i in range(2, len(reply), 3)
        )
        return SweepResult(expired=swept, more=int(reply[1]) == 1)

    async def load_event(
        self,
        spec: EventSpec,
        *,
        mode: Literal["publish", "rebuild"] = "publish",
        bookings: Sequence[RebuildBooking] = (),
        suspensions: Sequence[Suspension] = (),
    ) -> bool:
        """Load the event's inventory; False when `publish` finds it already loaded.

        Also registers the event in `br:events:live` (first, so a crash in between leaves a
        harmless empty entry rather than inventory the sweeper never visits).
        """
        document = spec.document(bookings, suspensions)
        await self._redis.zadd(LIVE_EVENTS, {spec.event_id: self._clock()})
        reply = await self._load_event(
            keys=script_keys(spec.event_id), args=(mode, orjson.dumps(document))
        )
        if int(reply[0]) == 0 and _text(reply[1]) == "ALREADY_LOADED":
            return False
        _check(reply)
        return True

    async def suspend(
        self,
        event_id: str,
        zone_id: str,
        *,
        seats: Sequence[str] | None = None,
        quantity: int = 0,
        now_ms: int | None = None,
    ) -> SuspendResult:
        return await self._toggle(self._suspend, event_id, zone_id, seats, quantity, now_ms)

    async def unsuspend(
        self,
        event_id: str,
        zone_id: str,
        *,
        seats: Sequence[str] | None = None,
        quantity: int = 0,
        now_ms: int | None = None,
    ) -> SuspendResult:
        return await self._toggle(self._unsuspend, event_id, zone_id, seats, quantity, now_ms)

    async def _toggle(
        self,
        script: Any,
        event_id: str,
        zone_id: str,
        seats: Sequence[str] | None,
        quantity: int,
        now_ms: int | None,
    ) -> SuspendResult:
        now = self._clock() if now_ms is None else now_ms
        reply = _check(
            await script(
                keys=script_keys(event_id),
                args=(zone_id, _json_list(seats), quantity, iso_of(now)),
            )
        )
        return SuspendResult(changed=int(reply[1]), available=int(reply[2]))

    # plain reads and the one non-script write

    async def mark_durable(self, event_id: str, booking_id: str) -> None:
        """The hold is committed in PostgreSQL: idempotent replays may now answer it."""
        await self._redis.hdel(event_keys(event_id).pending, booking_id)

    async def mark_all_durable(self, holds: Sequence[tuple[str, str]]) -> None:
        """`mark_durable` for many (event_id, booking_id) pairs in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for event_id, booking_id in holds:
            pipe.hdel(event_keys(event_id).pending, booking_id)
        await pipe.execute()

    async def availability(self, event_id: str) -> dict[str, ZoneAvailability]:
        """Per-zone counters (one HGETALL); empty when the event has no inventory."""
        fields: Mapping[Any, Any] = await self._redis.hgetall(event_keys(event_id).inv)
        zones: dict[str, dict[str, str]] = {}
        for field, value in fields.items():
            zone_id, _, name = _text(field).rpartition(":")
            if zone_id != "total":
                zones.setdefault(zone_id, {})[name] = _text(value)
        return {zone_id: ZoneAvailability.from_fields(z) for zone_id, z in zones.items()}

    async def get_hold(self, event_id: str, booking_id: str) -> Hold | None:
        raw = await self._redis.hget(event_keys(event_id).holds, booking_id)
        return None if raw is None else Hold.from_json(booking_id, raw)
