"""The waitlist's scripts on the real Redis (single node and cluster): seats that come back are
withheld, offered in join order, lapse to the next in line, are consumed by reserve.lua like a
queue pass, and go back on sale once nobody waits; every step keeps the counters whole."""

from __future__ import annotations

import pytest

from booking import errors
from booking.inventory.keys import event_keys
from booking.inventory.records import EventSpec, RebuildBooking, ZoneSpec
from booking.inventory.scripts import Scripts
from common.redis_client import RedisClient
from tests.lua.invariants import (
    NOW,
    add_pass,
    assert_consistent,
    next_message,
    reserve,
    seat_labels,
    subscribe_feed,
)
from tests.lua.waitlist_helpers import (
    OFFER_TTL_MS,
    join,
    load_waitlisted,
    outstanding,
    sell_out,
    tick,
)


async def test_a_returned_pair_goes_to_the_head_then_lapses_to_the_next(
    scripts: Scripts, redis: RedisClient, event_id: str
) -> None:
    await load_waitlisted(scripts, event_id, ga=4)
    first, _second = await sell_out(scripts, event_id, {"quantity": 2}, {"quantity": 2})
    for position, user in enumerate(("w1", "w2", "w3"), 1):
        await join(scripts, event_id, user, position, quantity=2)

    await scripts.release(event_id, first, reason="CANCELLED", now_ms=NOW)
    zone = (await scripts.availability(event_id))["ga"]
    assert (zone.available, zone.withheld, zone.offered) == (0, 2, 0)
    with pytest.raises(errors.SoldOutError):  # withheld seats are not on open sale
        await reserve(scripts, event_id, user="outsider", quantity=1)

    made = await tick(scripts, event_id)
    assert (made.made, made.waiting, made.outstanding, made.withheld) == (1, 2, 1, 2)
    offers = await outstanding(scripts, event_id)
    assert list(offers) == ["w1"]
    offer = offers["w1"]
    assert (offer.quantity, offer.expires_ms) == (2, NOW + OFFER_TTL_MS)
    assert (await tick(scripts, event_id)).made == 0  # never offered twice at once
    await assert_consistent(redis, event_id)

    with pytest.raises(errors.OfferInvalidError):  # another user's offer
        await reserve(scripts, event_id, user="w2", quantity=2, offer_id=offer.offer_id)
    with pytest.raises(errors.OfferMismatchError, match="quantity"):
        await reserve(scripts, event_id, user="w1", quantity=1, offer_id=offer.offer_id)
    with pytest.raises(errors.OfferExpiredError):
        await reserve(
            scripts, event_id, user="w1", quantity=2, offer_id=offer.offer_id,
            now_ms=offer.expires_ms,
        )  # fmt: skip

    lapse = await tick(scripts, event_id, now_ms=offer.expires_ms)
    assert (lapse.lapsed, lapse.made) == (1, 1)
    offers = await outstanding(scripts, event_id)
    assert list(offers) == ["w2"]
    assert await scripts.waitlist.rank(event_id, "w1") is None  # a lapsed entry leaves the line
    with pytest.raises(errors.OfferInvalidError):
        await reserve(scripts, event_id, user="w1", quantity=2, offer_id=offer.offer_id)

    taken = await reserve(
        scripts, event_id, user="w2", quantity=2, offer_id=offers["w2"].offer_id,
        now_ms=offer.expires_ms,
    )  # fmt: skip
    assert taken.hold.quantity == 2
    zone = (await scripts.availability(event_id))["ga"]
    assert (zone.available, zone.held, zone.withheld, zone.offered) == (0, 4, 0, 0)
    ended = {o.offer_id: o for o in await scripts.waitlist.offers(event_id)}
    assert ended[offers["w2"].offer_id].status == "TAKEN"
    assert ended[offers["w2"].offer_id].booking_id == taken.hold.booking_id
    assert ended[offer.offer_id].status == "LAPSED"
    assert set(await scripts.waitlist.entries(event_id)) == {"w3"}
    with pytest.raises(errors.OfferInvalidError):  # one-time
        await reserve(scripts, event_id, user="w2", quantity=2, offer_id=offers["w2"].offer_id)
    await assert_consistent(redis, event_id)


async def test_seated_offers_name_their_seats_and_a_smaller_request_is_served_first(
    scripts: Scripts, redis: RedisClient, event_id: str
) -> None:
    await load_waitlisted(scripts, event_id, seats=3)
    pair, _ = await sell_out(scripts, event_id, {"seats": ["A1", "A2"]}, {"seats": ["A3"]})
    await join(scripts, event_id, "w1", 1, quantity=1)
    await join(scripts, event_id, "w2", 2, quantity=4)
    feed = await subscribe_feed(redis, event_keys(event_id).feed)
    try:
        await scripts.release(event_id, pair, reason="EXPIRED", now_ms=NOW + 10**9)
        message = await next_message(feed)
    finally:
        await feed.aclose()
    assert message is not None and '"SEAT_WITHHELD"' in message
    state = await assert_consistent(redis, event_id)
    assert (state["seats"]["seated:A1"], state["seats"]["seated:A2"]) == ("W", "W")

    await tick(scripts, event_id)
    offers = await outstanding(scripts, event_id)
    assert offers["w1"].seats == ("A1",)
    assert offers["w2"].seats == ("A2",)  # what there is: an offer for fewer than asked
    with pytest.raises(errors.OfferMismatchError, match="seats"):
        await reserve(scripts, event_id, user="w1", seats=["A2"], offer_id=offers["w1"].offer_id)
    with pytest.raises(errors.SoldOutError):  # withheld: not for open sale
        await reserve(scripts, event_id, user="outsider", seats=["A1"])
    taken = await reserve(
        scripts, event_id, user="w1", seats=["A1"], offer_id=offers["w1"].offer_id
    )
    state = await assert_consistent(redis, event_id)
    assert state["seats"]["seated:A1"] == taken.hold.booking_id
    assert state["seats"]["seated:A2"] == "W"


async def test_seats_go_back_on_sale_once_nobody_waits(
    scripts: Scripts, redis: RedisClient, event_id: str
) -> None:
    await load_waitlisted(scripts, event_id, seats=2)
    (both,) = await sell_out(scripts, event_id, {"seats": ["A1", "A2"]})
    await join(scripts, event_id, "w1", 1, quantity=1)
    await scripts.release(event_id, both, reason="CANCELLED")
    result = await tick(scripts, event_id)
    # A1 offered to w1; nobody else waits, so A2 is back on sale in the same call
    assert (result.made, result.returned) == (1, 1)
    zone = (await scripts.availability(event_id))["seated"]
    assert (zone.available, zone.withheld, zone.offered) == (1, 1, 1)
    removed, withdrawn = await scripts.waitlist.leave(event_id, "w1", now_ms=NOW)
    assert removed and withdrawn is not None
    result = await tick(scripts, event_id)
    assert (result.returned, result.idle) == (1, True)
    zone = (await scripts.availability(event_id))["seated"]
    assert (zone.available, zone.withheld, zone.offered) == (2, 0, 0)
    state = await assert_consistent(redis, event_id)
    assert state["seats"]["seated:A1"] == state["seats"]["seated:A2"] == ""
    await reserve(scripts, event_id, user="anyone", seats=["A1", "A2"])


async def test_an_offer_stands_in_for_the_queue_pass(
    scripts: Scripts, redis: RedisClient, event_id: str
) -> None:
    await load_waitlisted(scripts, event_id, ga=1, queue_enabled=True)
    await redis.hset(event_keys(event_id).meta, "queue_enabled", "0")
    (only,) = await sell_out(scripts, event_id, {"quantity": 1})
    await redis.hset(event_keys(event_id).meta, "queue_enabled", "1")
    await join(scripts, event_id, "w1", 1, quantity=1, zone="ga")
    await scripts.release(event_id, only, reason="CANCELLED")
    await tick(scripts, event_id)
    offer = (await outstanding(scripts, event_id))["w1"]
    with pytest.raises(errors.QueuePassRequiredError):
        await reserve(scripts, event_id, user="w1", quantity=1)
    await reserve(scripts, event_id, user="w1", quantity=1, offer_id=offer.offer_id)
    await assert_consistent(redis, event_id)


async def test_unsuspended_seats_go_to_the_waitlist_too(
    scripts: Scripts, redis: RedisClient, event_id: str
) -> None:
    await load_waitlisted(scripts, event_id, ga=3)
    await scripts.suspend(event_id, "ga", quantity=1)
    await sell_out(scripts, event_id, {"quantity": 2})
    await join(scripts, event_id, "w1", 1, quantity=1)
    result = await scripts.unsuspend(event_id, "ga", quantity=1)
    assert result.available == 0
    assert (await scripts.availability(event_id))["ga"].withheld == 1
    await assert_consistent(redis, event_id)


async def test_without_the_waitlist_seats_return_to_sale_at_once(
    scripts: Scripts, redis: RedisClient, event_id: str
) -> None:
    await load_waitlisted(scripts, event_id, ga=2)
    await redis.hset(event_keys(event_id).meta, "waitlist_enabled", "0")
    (hold,) = await sell_out(scripts, event_id, {"quantity": 2})
    await join(scripts, event_id, "w1", 1, quantity=1)
    await scripts.release(event_id, hold, reason="CANCELLED")
    zone = (await scripts.availability(event_id))["ga"]
    assert (zone.available, zone.withheld) == (2, 0)
    await assert_consistent(redis, event_id)


async def test_a_queue_pass_cannot_take_withheld_seats(
    scripts: Scripts, redis: RedisClient, event_id: str
) -> None:
    await load_waitlisted(scripts, event_id, ga=2)
    (hold,) = await sell_out(scripts, event_id, {"quantity": 2})
    await redis.hset(event_keys(event_id).meta, "queue_enabled", "1")
    await add_pass(redis, event_id, "p1", "queued", NOW + 60_000)
    await join(scripts, event_id, "w1", 1, quantity=2)
    await scripts.release(event_id, hold, reason="CANCELLED")
    await tick(scripts, event_id)
    with pytest.raises(errors.SoldOutError):
        await reserve(scripts, event_id, user="queued", quantity=1, pass_id="p1")
    offer = (await outstanding(scripts, event_id))["w1"]
    await reserve(scripts, event_id, user="w1", quantity=2, offer_id=offer.offer_id)
    assert await redis.hget(event_keys(event_id).passes, "p1") is not None  # the pass is kept
    state = await assert_consistent(redis, event_id)
    assert state["inv"]["ga:held"] == 2  # queue + waitlist never beyond capacity


async def test_a_rebuild_restores_the_line_and_withholds_for_it(
    scripts: Scripts, redis: RedisClient, event_id: str
) -> None:
    zones = (ZoneSpec("seated", 2000, seats=seat_labels(4)),)
    spec = EventSpec(event_id, zones=zones, waitlist_enabled=True, offer_ttl_ms=OFFER_TTL_MS)
    assert await scripts.load_event(spec)
    sold = await reserve(scripts, event_id, user="owner", seats=["A1"])
    waitlist = {
        "entries": [
            {"entry_id": "e1", "user": "w1", "zone": "seated", "qty": 1, "position": 7},
            {"entry_id": "e2", "user": "w2", "zone": "", "qty": 2, "position": 9},
        ],
        "offers": [
            {"offer_id": "o1", "entry_id": "e1", "user": "w1", "zone": "seated", "qty": 1,
             "seats": ["A2"], "expires_ms": NOW + OFFER_TTL_MS, "created_ms": NOW},
            # its seat is sold now: dropped, never an oversell
            {"offer_id": "o2", "entry_id": "e2", "user": "w2", "zone": "seated", "qty": 1,
             "seats": ["A1"], "expires_ms": NOW + OFFER_TTL_MS, "created_ms": NOW},
        ],
    }  # fmt: skip
    assert await scripts.load_event(
        spec, mode="rebuild", bookings=[RebuildBooking(sold.hold)], waitlist=waitlist
    )
    state = await assert_consistent(redis, event_id)
    assert [state["seats"][f"seated:{label}"] for label in seat_labels(4)] == [
        sold.hold.booking_id, "W", "W", "W",
    ]  # fmt: skip
    zone = (await scripts.availability(event_id))["seated"]
    assert (zone.available, zone.held, zone.withheld, zone.offered) == (0, 1, 3, 1)
    assert set(await outstanding(scripts, event_id)) == {"w1"}
    entries = await scripts.waitlist.entries(event_id)
    assert (entries["w1"].offer_id, entries["w2"].offer_id) == ("o1", None)
    await tick(scripts, event_id)  # w2 (any zone, 2 wanted) gets the two free withheld seats
    assert (await outstanding(scripts, event_id))["w2"].seats == ("A3", "A4")
    await reserve(scripts, event_id, user="w1", seats=["A2"], offer_id="o1")
    await assert_consistent(redis, event_id)
