"""Issue 16's waitlist acceptance, at the service level on the real Redis and PostgreSQL: a
sold-out event, three waitlisted buyers, a cancel returns 2 seats -> the first buyer gets an
offer for 2 and lets it lapse -> the second gets it and reserves; nobody else can take those
seats meanwhile; the counters stay whole in Redis and agree with PostgreSQL throughout."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson

from booking.inventory.keys import WAITLIST_EVENTS
from booking.waitlist.ticker import WaitlistTicker
from tests.queue.conftest import Clock
from tests.waitlist.conftest import OFFER_TTL_S, reserve
from tests.waitlist.invariants import assert_counters_agree


async def _join(
    client: httpx.AsyncClient, event: dict[str, Any], headers: dict[str, str], quantity: int = 2
) -> httpx.Response:
    return await client.post(
        f"/api/v1/events/{event['event_id']}/waitlist", json={"quantity": quantity}, headers=headers
    )


async def _place(
    client: httpx.AsyncClient, event: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    return await client.get(f"/api/v1/events/{event['event_id']}/waitlist", headers=headers)


async def test_a_returned_pair_lapses_from_the_first_buyer_to_the_second(
    client: httpx.AsyncClient,
    app: Any,
    clean_db: Any,
    make_user: Any,
    sold_out_event: Any,
    ticker: WaitlistTicker,
    clock: Clock,
    redis_url: str,
) -> None:
    event, _organizer, owner, (first_hold, _second_hold) = await sold_out_event()
    event_id = event["event_id"]
    buyers = [await make_user() for _ in range(3)]
    _, outsider = await make_user()

    for position, (_user_id, headers) in enumerate(buyers, 1):
        joined = await _join(client, event, headers)
        assert joined.status_code == 202, joined.text
        assert (joined.json()["status"], joined.json()["position"]) == ("waiting", position)
    again = await _join(client, event, buyers[0][1])
    assert again.status_code == 202 and again.json()["position"] == 1  # idempotent
    other = await _join(client, event, buyers[0][1], quantity=1)
    assert (other.status_code, other.json()["code"]) == (409, "already_waitlisted")

    cancelled = await client.post(f"/api/v1/bookings/{first_hold}/cancel", headers=owner)
    assert cancelled.status_code == 200, cancelled.text
    refused = await reserve(client, event, outsider, 1, key="o-1", expect=409)
    assert refused["code"] == "sold_out"  # withheld for the waitlist, not on open sale

    assert await ticker.tick() == 1
    place = (await _place(client, event, buyers[0][1])).json()
    assert place["status"] == "offered" and place["offer"]["quantity"] == 2
    offer_id = place["offer"]["offer_id"]
    assert (await _place(client, event, buyers[1][1])).json()["position"] == 2
    emails = await clean_db.fetch(
        "SELECT payload FROM outbox WHERE payload::text LIKE '%' || $1 || '%'", offer_id
    )
    assert len(emails) == 1  # written with the offer, once
    assert await ticker.tick() == 0  # repeating the tick offers nothing twice
    assert len(await clean_db.fetch("SELECT 1 FROM waitlist_offers")) == 1

    # while the offer is out, nobody else gets those seats: not with it, not without it
    stolen = await reserve(
        client, event, buyers[1][1], 2, key="b2-steal", offer=offer_id, expect=403
    )
    assert stolen["code"] == "waitlist_offer_invalid"
    attempts = await asyncio.gather(
        *(
            client.post(
                "/api/v1/bookings/reserve",
                json={"event_id": event_id, "zone_id": event["zones"][0]["zone_id"], "quantity": 1},
                headers={**outsider, "Idempotency-Key": f"rush-{n}"},
            )
            for n in range(20)
        )
    )
    assert {answer.status_code for answer in attempts} == {409}
    wrong = await reserve(client, event, buyers[0][1], 1, key="b1-one", offer=offer_id, expect=422)
    assert wrong["code"] == "waitlist_offer_mismatch"

    # the first buyer lets it lapse: the next tick hands it to the second
    clock.offset_ms = (OFFER_TTL_S + 1) * 1000
    assert await ticker.tick() == 2  # one lapsed, one made
    assert (await _place(client, event, buyers[0][1])).status_code == 404
    late = await reserve(client, event, buyers[0][1], 2, key="b1-late", offer=offer_id, expect=403)
    assert late["code"] == "waitlist_offer_invalid"
    second = (await _place(client, event, buyers[1][1])).json()
    assert second["status"] == "offered" and second["offer"]["quantity"] == 2
    booking_id = await reserve(
        client, event, buyers[1][1], 2, key="b2", offer=second["offer"]["offer_id"]
    )
    taken = await clean_db.fetchval(
        "SELECT status FROM waitlist_offers WHERE offer_id = $1",
        uuid.UUID(second["offer"]["offer_id"]),
    )
    assert taken == "TAKEN"  # recorded with the reservation, before any tick
    assert await ticker.tick() == 0  # nothing left to record
    statuses = await clean_db.fetch(
        """SELECT e.user_id, e.status AS entry, o.status AS offer, o.booking_id
           FROM waitlist_entries e LEFT JOIN waitlist_offers o USING (entry_id)
           ORDER BY e.position"""
    )
    assert [(row["entry"], row["offer"]) for row in statuses] == [
        ("LAPSED", "LAPSED"),
        ("TAKEN", "TAKEN"),
        ("WAITING", None),
    ]
    assert str(statuses[1]["booking_id"]) == booking_id
    third = (await _place(client, event, buyers[2][1])).json()
    assert (third["status"], third["position"]) == ("waiting", 1)

    await assert_counters_agree(redis_url, clean_db, event_id, capacity=4)

    # the last one leaves: nothing is left to do, the event drops off the worker's list
    left = await client.delete(f"/api/v1/events/{event_id}/waitlist", headers=buyers[2][1])
    assert left.status_code == 204
    await ticker.tick()
    assert await app.state.services.redis.zscore(WAITLIST_EVENTS, event_id) is None


async def test_join_needs_a_sell_out_and_an_open_waitlist(
    client: httpx.AsyncClient, make_user: Any, sold_out_event: Any
) -> None:
    event, organizer, _owner, _ = await sold_out_event(capacity=5, holds=(2,))
    _, buyer = await make_user()
    early = await _join(client, event, buyer)
    assert (early.status_code, early.json()["code"]) == (409, "not_sold_out")
    too_many = await _join(client, event, buyer, quantity=5)
    assert too_many.status_code == 422  # more than max_per_user (4)
    closed = await client.patch(
        f"/api/v1/events/{event['event_id']}/waitlist/settings",
        json={"enabled": False, "offer_ttl_s": 60},
        headers=organizer,
    )
    assert closed.status_code == 200, closed.text
    assert closed.json() == {"event_id": event["event_id"], "enabled": False, "offer_ttl_s": 60}
    refused = await _join(client, event, buyer)
    assert (refused.status_code, refused.json()["code"]) == (409, "waitlist_closed")
    shown = await client.get(f"/api/v1/events/{event['event_id']}")
    assert shown.json()["waitlist"] == {"enabled": False, "offer_ttl_s": 60}
    not_mine = await client.patch(
        f"/api/v1/events/{event['event_id']}/waitlist/settings",
        json={"enabled": True},
        headers=buyer,
    )
    assert not_mine.status_code == 403
    nothing = await client.patch(
        f"/api/v1/events/{event['event_id']}/waitlist/settings", json={}, headers=organizer
    )
    assert nothing.status_code == 422
    bodiless = await client.patch(
        f"/api/v1/events/{event['event_id']}/waitlist/settings", headers=organizer
    )
    assert (bodiless.status_code, bodiless.json()["code"]) == (422, "invalid_request")


async def test_the_offer_is_pushed_to_the_buyers_stream(
    client: httpx.AsyncClient, app: Any, make_user: Any, sold_out_event: Any, ticker: Any
) -> None:
    from booking.waitlist.stream import WaitlistStream

    event, _organizer, owner, (hold, _) = await sold_out_event()
    buyer_id, buyer = await make_user()
    assert (await _join(client, event, buyer)).status_code == 202
    services = app.state.services
    stream = WaitlistStream(services.hub, event["event_id"], buyer_id)
    woken = asyncio.Event()
    await stream.subscribe()
    try:
        stream.listen(woken.set)
        await client.post(f"/api/v1/bookings/{hold}/cancel", headers=owner)
        await ticker.tick()
        await asyncio.wait_for(woken.wait(), 5)
        frames = stream.take()
    finally:
        stream.close("finished")
    assert frames is not None and b"event: offer\n" in frames
    data = orjson.loads(frames.split(b"data: ", 1)[1].split(b"\n", 1)[0])
    assert data["quantity"] == 2 and data["offer_id"]


async def test_leaving_with_an_offer_hands_it_to_the_next(
    client: httpx.AsyncClient,
    clean_db: Any,
    make_user: Any,
    sold_out_event: Any,
    ticker: WaitlistTicker,
    redis_url: str,
) -> None:
    event, _organizer, owner, (hold, _) = await sold_out_event()
    first, second = await make_user(), await make_user()
    assert (await _join(client, event, first[1])).status_code == 202
    assert (await _join(client, event, second[1])).status_code == 202
    await client.post(f"/api/v1/bookings/{hold}/cancel", headers=owner)
    await ticker.tick()
    assert (await _place(client, event, first[1])).json()["status"] == "offered"
    left = await client.delete(f"/api/v1/events/{event['event_id']}/waitlist", headers=first[1])
    assert left.status_code == 204
    assert (await _place(client, event, first[1])).status_code == 404
    await ticker.tick()
    assert (await _place(client, event, second[1])).json()["status"] == "offered"
    rows = await clean_db.fetch("SELECT status FROM waitlist_offers ORDER BY created_at")
    assert sorted(row["status"] for row in rows) == ["OUTSTANDING", "WITHDRAWN"]
    await assert_counters_agree(redis_url, clean_db, event["event_id"], capacity=4)
