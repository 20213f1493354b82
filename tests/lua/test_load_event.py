"""load_event.lua: publish once; rebuild from PostgreSQL's bookings without overselling."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from booking import errors
from booking.inventory.keys import LIVE_EVENTS, event_keys
from booking.inventory.records import EventSpec, Hold, RebuildBooking, Suspension, ZoneSpec
from booking.inventory.scripts import Scripts
from tests.lua.invariants import NOW, TTL_MS, add_pass, assert_consistent, reserve, seat_labels

ZONES = (ZoneSpec("ga", 1000, capacity=10), ZoneSpec("seated", 3000, seats=seat_labels(5)))


def _spec(event_id: str, **meta: object) -> EventSpec:
    return EventSpec(event_id, zones=ZONES, max_per_user=6, **meta)  # type: ignore[arg-type]


def _booking(
    booking_id: str,
    status: str,
    *,
    user: str = "u1",
    zone: str = "ga",
    qty: int = 1,
    seats: tuple[str, ...] = (),
    idem: str = "",
    deadline_ms: int = NOW + TTL_MS,
    fingerprint: str = "",
) -> RebuildBooking:
    hold = Hold(
        booking_id=booking_id,
        user_id=user,
        zone_id=zone,
        quantity=len(seats) or qty,
        seats=seats,
        status=status,
        amount_minor=1000,
        deadline_ms=deadline_ms,
        created_ms=NOW,
        idempotency_key=idem,
    )
    return RebuildBooking(hold, fingerprint)


async def test_publish_loads_once(scripts: Scripts, redis: aioredis.Redis, event_id: str) -> None:
    assert await scripts.load_event(_spec(event_id))
    await reserve(scripts, event_id, quantity=2)
    assert not await scripts.load_event(_spec(event_id))  # refused: the hold survives
    zones = await scripts.availability(event_id)
    assert (zones["ga"].available, zones["ga"].held) == (8, 2)
    assert zones["seated"].capacity == 5 and zones["seated"].kind == "seated"
    assert await redis.zscore(LIVE_EVENTS, event_id) is not None
    await assert_consistent(redis, event_id)


async def test_rebuild_restores_holds_sales_suspensions_and_idempotency(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    assert await scripts.load_event(_spec(event_id))
    await reserve(scripts, event_id, user="ghost", quantity=5)  # state Redis had, now replaced
    await add_pass(redis, event_id, "pass-1", "u9", NOW + 60_000)
    bookings = [
        _booking("b-held", "RESERVED", qty=3, idem="k1", fingerprint="f1"),
        _booking("b-sold", "CONFIRMED", user="u2", zone="seated", seats=("A1", "A2")),
        _booking("b-lapsed", "RESERVED", user="u3", zone="seated", seats=("A3",), deadline_ms=NOW),
        _booking("b-gone", "CANCELLED", user="u4", qty=4, idem="k4", fingerprint="f4"),
    ]
    suspensions = [Suspension("seated", seats=("A5",)), Suspension("ga", quantity=2)]
    assert await scripts.load_event(
        _spec(event_id), mode="rebuild", bookings=bookings, suspensions=suspensions
    )

    zones = await scripts.availability(event_id)
    assert (zones["ga"].available, zones["ga"].held, zones["ga"].suspended) == (5, 3, 2)
    seated = zones["seated"]
    assert (seated.available, seated.held, seated.sold, seated.suspended) == (1, 1, 2, 1)
    state = await assert_consistent(redis, event_id)
    assert state["users"] == {"u1": 3, "u2": 2, "u3": 1}
    assert await redis.hget(event_keys(event_id).passes, "pass-1") is not None

    replay = await reserve(scripts, event_id, quantity=3, idempotency_key="k1", fingerprint="f1")
    assert replay.replay and replay.hold.booking_id == "b-held"
    gone = await reserve(
        scripts, event_id, user="u4", quantity=4, idempotency_key="k4", fingerprint="f4"
    )
    assert gone.replay and gone.hold.status == "CANCELLED"
    with pytest.raises(errors.SeatUnavailableError):
        await reserve(scripts, event_id, seats=["A5"])

    swept = await scripts.sweep(event_id, now_ms=NOW)
    assert [s.hold.booking_id for s in swept.expired] == ["b-lapsed"]
    assert not swept.expired[0].was_pending
    await assert_consistent(redis, event_id)


@pytest.mark.parametrize(
    "bookings",
    [
        [
            _booking("b1", "RESERVED", zone="seated", seats=("A1", "A2")),
            _booking("b2", "CONFIRMED", zone="seated", seats=("A2",)),
        ],
        [_booking("b1", "CONFIRMED", qty=6), _booking("b2", "RESERVED", qty=5)],
    ],
    ids=["seat-twice", "over-capacity"],
)
async def test_rebuild_refuses_an_oversold_document_and_writes_nothing(
    scripts: Scripts, redis: aioredis.Redis, event_id: str, bookings: list[RebuildBooking]
) -> None:
    assert await scripts.load_event(_spec(event_id))
    kept = await reserve(scripts, event_id, quantity=1)
    with pytest.raises(errors.InvalidStateError, match="oversold"):
        await scripts.load_event(_spec(event_id), mode="rebuild", bookings=bookings)
    assert await scripts.get_hold(event_id, kept.hold.booking_id) == kept.hold
    await assert_consistent(redis, event_id)


async def test_rebuild_of_a_lost_event(
    scripts: Scripts, redis: aioredis.Redis, event_id: str
) -> None:
    bookings = [_booking("b1", "RESERVED", qty=10)]
    assert await scripts.load_event(_spec(event_id), mode="rebuild", bookings=bookings)
    with pytest.raises(errors.SoldOutError):
        await reserve(scripts, event_id, user="u2", quantity=1)
    await assert_consistent(redis, event_id)


@pytest.mark.parametrize(
    "zones",
    [
        (ZoneSpec("ga", 100, capacity=0),),
        (ZoneSpec("a:b", 100, capacity=3),),
        (ZoneSpec("z", 100, capacity=3), ZoneSpec("z", 100, capacity=3)),
        (ZoneSpec("s", 100, seats=("A1", "A1")),),
        (ZoneSpec("ga", -1, capacity=3),),
    ],
)
async def test_invalid_documents_are_refused(
    scripts: Scripts, redis: aioredis.Redis, event_id: str, zones: tuple[ZoneSpec, ...]
) -> None:
    with pytest.raises(errors.InvalidRequestError):
        await scripts.load_event(EventSpec(event_id, zones=zones))
    assert await redis.exists(*event_keys(event_id).stored()) == 0
