"""Typed async wrapper over the inventory Lua scripts (`lua/*.lua`, one EVALSHA per call).

Scripts answer `{1, ...}` or `{0, CODE[, detail]}`; a failure raises the `booking.errors`
class mapped in `ERRORS`. Time is passed in (`now_ms`), defaulting to the injected clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import orjson
from redis.asyncio.cluster import RedisCluster

import lua
from booking.domain import rfc3339_of_ms
from booking.inventory.keys import LIVE_EVENTS, event_keys, script_keys
from booking.inventory.lua_errors import as_text, check_reply
from booking.inventory.records import (
    ConfirmResult,
    EventSpec,
    Hold,
    RebuildBooking,
    ReleaseReason,
    ReleaseResult,
    ReserveResult,
    SoldOutLook,
    SuspendResult,
    Suspension,
    SweepResult,
    SweptHold,
    ZoneAvailability,
)
from booking.inventory.waitlist import WAITLIST_SCRIPT_NAMES, WaitlistScripts
from booking.metrics import SCRIPT_LATENCY
from common.redis_client import RedisClient
from common.script_batch import ScriptRunner, script_runner

INVENTORY_SCRIPT_NAMES = (
    "reserve",
    "release",
    "confirm",
    "extend_hold",
    "sweep",
    "load_event",
    "suspend",
    "unsuspend",
    "sold_out_look",
    "mark_durable",
)
SCRIPT_NAMES = (*INVENTORY_SCRIPT_NAMES, *WAITLIST_SCRIPT_NAMES)
RunnerFactory = Callable[[RedisClient, str], ScriptRunner]


class TimedScript:
    """A script whose calls observe `booking_rush_lua_script_duration_seconds`: every Lua
    script of the booking service runs through one (the inventory's here, the queue's in
    booking/queue/store.py).

    Calls made in the same event-loop turn share one write (common/script_batch.py): during a
    drop hundreds of reserves arrive together, and redis-py's per-command cost was the largest
    single item of the reserve path (py-spy). The duration includes that short wait.
    """

    def __init__(
        self, name: str, redis: RedisClient, runner: RunnerFactory = script_runner
    ) -> None:
        self.script = runner(redis, lua.source(name, cluster=isinstance(redis, RedisCluster)))
        self._latency = SCRIPT_LATENCY.labels(name)

    async def load(self) -> None:
        await self.script.load()

    async def aclose(self) -> None:
        await self.script.aclose()

    async def __call__(self, *, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        started = time.perf_counter()
        try:
            return await self.script.run(keys, args)
        finally:
            self._latency.observe(time.perf_counter() - started)


def _json_list(values: Sequence[str] | None) -> str:
    return orjson.dumps(list(values)).decode() if values else ""


def epoch_ms() -> int:
    return time.time_ns() // 1_000_000


class Scripts:
    """The inventory scripts bound to one Redis client (a pool). Build once per process.
    `runner` says how a script runs (common/script_batch.py picks; the bench's bare endpoint
    pins redis-py's pipeline, its measuring stick)."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        clock: Callable[[], int] = epoch_ms,
        runner: RunnerFactory = script_runner,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._runner = runner
        self._reserve = self._register("reserve")
        self._release = self._register("release")
        self._confirm = self._register("confirm")
        self._extend_hold = self._register("extend_hold")
        self._sweep = self._register("sweep")
        self._load_event = self._register("load_event")
        self._suspend = self._register("suspend")
        self._unsuspend = self._register("unsuspend")
        self._sold_out_look = self._register("sold_out_look")
        self._mark_durable = self._register("mark_durable")
        self.waitlist = WaitlistScripts(redis, self._register, clock)

    def _register(self, name: str) -> TimedScript:
        return TimedScript(name, self._redis, self._runner)

    async def load(self) -> None:
        """SCRIPT LOAD every script (at start-up: a syntax error fails here, not mid-sale)."""
        for name in INVENTORY_SCRIPT_NAMES:
            await getattr(self, f"_{name}").load()
        await self.waitlist.load()

    async def aclose(self) -> None:
        """Closes what the scripts opened themselves (on a cluster: one client per node); the
        Redis client they were given stays the caller's to close."""
        for name in INVENTORY_SCRIPT_NAMES:
            await getattr(self, f"_{name}").aclose()
        await self.waitlist.aclose()

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
        offer_id: str = "",
        ttl_ms: int,
        now_ms: int | None = None,
    ) -> ReserveResult:
        now = self._clock() if now_ms is None else now_ms
        reply = check_reply(
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
                    rfc3339_of_ms(now),
                    offer_id,
                ),
            )
        )
        first_id = as_text(reply[1])
        hold = Hold.from_json(first_id, reply[3])
        return ReserveResult(hold=hold, replay=int(reply[2]) == 1)

    async def sold_out_look(self, event_id: str, *, max_fields: int) -> SoldOutLook:
        """What booking/sold_out.py walls a sold-out event on (lua/sold_out_look.lua); the
        idempotency fields only when the event qualifies and has at most `max_fields`."""
        reply = await self._sold_out_look(keys=script_keys(event_id), args=(max_fields,))
        if not as_text(reply[0]):
            return SoldOutLook.NOT_LOADED
        return SoldOutLook(
            status=as_text(reply[0]),
            sale_starts_ms=int(reply[1]),
            queue_enabled=as_text(reply[2]) == "1",
            available=int(reply[3]),
            idem_count=int(reply[4]),
            ga_zones=frozenset(as_text(zone) for zone in reply[5]),
            idem_fields=frozenset(as_text(field) for field in reply[6]),
        )

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
        reply = check_reply(
            await self._release(
                keys=script_keys(event_id),
                args=(booking_id, reason, 1 if allow_confirmed else 0, now, rfc3339_of_ms(now)),
            )
        )
        return ReleaseResult(hold=Hold.from_json(booking_id, reply[2]), released=int(reply[1]) == 1)

    async def confirm(
        self, event_id: str, booking_id: str, *, now_ms: int | None = None
    ) -> ConfirmResult:
        now = self._clock() if now_ms is None else now_ms
        reply = check_reply(
            await self._confirm(
                keys=script_keys(event_id), args=(booking_id, now, rfc3339_of_ms(now))
            )
        )
        return ConfirmResult(
            hold=Hold.from_json(booking_id, reply[2]), already_confirmed=int(reply[1]) == 1
        )

    async def extend_hold(
        self, event_id: str, booking_id: str, *, until_ms: int, now_ms: int | None = None
    ) -> int:
        """Moves a live hold's deadline to `until_ms` (never earlier); returns the deadline."""
        now = self._clock() if now_ms is None else now_ms
        reply = check_reply(
            await self._extend_hold(keys=script_keys(event_id), args=(booking_id, now, until_ms))
        )
        return int(reply[1])

    async def sweep(
        self, event_id: str, *, limit: int = 100, now_ms: int | None = None
    ) -> SweepResult:
        now = self._clock() if now_ms is None else now_ms
        reply = check_reply(
            await self._sweep(keys=script_keys(event_id), args=(now, limit, rfc3339_of_ms(now)))
        )
        swept = tuple(
            SweptHold(
                hold=Hold.from_json(as_text(reply[i]), reply[i + 1]),
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
        waitlist: Mapping[str, Any] | None = None,
    ) -> bool:
        """Load the event's inventory; False when `publish` finds it already loaded.

        Also registers the event in `br:events:live` (first, so a crash in between leaves a
        harmless empty entry rather than inventory the sweeper never visits).
        """
        document = spec.document(bookings, suspensions, waitlist)
        await self._redis.zadd(LIVE_EVENTS, {spec.event_id: self._clock()})
        reply = await self._load_event(
            keys=script_keys(spec.event_id), args=(mode, orjson.dumps(document))
        )
        if int(reply[0]) == 0 and as_text(reply[1]) == "ALREADY_LOADED":
            return False
        check_reply(reply)
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
        reply = check_reply(
            await script(
                keys=script_keys(event_id),
                args=(zone_id, _json_list(seats), quantity, rfc3339_of_ms(now)),
            )
        )
        return SuspendResult(changed=int(reply[1]), available=int(reply[2]))

    # plain reads and the one non-script write

    async def mark_durable(self, event_id: str, booking_id: str) -> None:
        """The hold is committed in PostgreSQL: idempotent replays may now answer it."""
        await self.mark_all_durable([(event_id, booking_id)])

    async def mark_all_durable(self, holds: Sequence[tuple[str, str]]) -> None:
        """`mark_durable` for many (event_id, booking_id) pairs: one script call per event,
        the calls of one loop turn in one write (lua/mark_durable.lua)."""
        by_event: dict[str, list[str]] = {}
        for event_id, booking_id in holds:
            by_event.setdefault(event_id, []).append(booking_id)
        await asyncio.gather(
            *(
                self._mark_durable(keys=script_keys(event_id), args=booking_ids)
                for event_id, booking_ids in by_event.items()
            )
        )

    async def availability(self, event_id: str) -> dict[str, ZoneAvailability]:
        """Per-zone counters (one HGETALL); empty when the event has no inventory."""
        fields: Mapping[Any, Any] = await self._redis.hgetall(event_keys(event_id).inv)
        zones: dict[str, dict[str, str]] = {}
        for field, value in fields.items():
            zone_id, _, name = as_text(field).rpartition(":")
            if zone_id != "total":
                zones.setdefault(zone_id, {})[name] = as_text(value)
        return {zone_id: ZoneAvailability.from_fields(z) for zone_id, z in zones.items()}

    async def seat_states(self, event_id: str) -> dict[str, dict[str, str]]:
        """Per zone, each seat's state: `available`, `held`, `sold` or `suspended` (one HGETALL
        of the seats, one HMGET of the holds that own taken seats). Never a booking id."""
        keys = event_keys(event_id)
        fields: Mapping[Any, Any] = await self._redis.hgetall(keys.seats)
        owners: dict[str, list[tuple[str, str]]] = {}
        zones: dict[str, dict[str, str]] = {}
        for field, value in fields.items():
            zone_id, _, label = as_text(field).partition(":")
            owner = as_text(value)
            states = zones.setdefault(zone_id, {})
            if owner == "":
                states[label] = "available"
            elif owner == "S":
                states[label] = "suspended"
            elif owner == "W":
                states[label] = "held"  # withheld for the waitlist: not on sale
            else:
                states[label] = "held"
                owners.setdefault(owner, []).append((zone_id, label))
        if owners:
            booking_ids = list(owners)
            records = await self._redis.hmget(keys.holds, booking_ids)
            for booking_id, raw in zip(booking_ids, records, strict=True):
                if raw is not None and orjson.loads(raw).get("status") == "CONFIRMED":
                    for zone_id, label in owners[booking_id]:
                        zones[zone_id][label] = "sold"
        return zones

    async def get_hold(self, event_id: str, booking_id: str) -> Hold | None:
        raw = await self._redis.hget(event_keys(event_id).holds, booking_id)
        return None if raw is None else Hold.from_json(booking_id, raw)
