"""What a Redis that forgets does to the waitlist: restored from PostgreSQL with the event (the
outstanding offer keeps its seats, the line keeps its order, free seats stay withheld for it),
and an entry PostgreSQL answered but Redis lost is put back in line by the worker's next tick."""

from __future__ import annotations

from typing import Any

import httpx

from booking.inventory.keys import event_keys
from booking.reconcile import restore_event
from booking.waitlist.ticker import WaitlistTicker
from tests.waitlist.conftest import reserve
from tests.waitlist.invariants import assert_counters_agree


async def _join(client: httpx.AsyncClient, event: dict[str, Any], headers: dict[str, str]) -> None:
    joined = await client.post(
        f"/api/v1/events/{event['event_id']}/waitlist", json={"quantity": 2}, headers=headers
    )
    assert joined.status_code == 202, joined.text


async def test_a_lost_event_comes_back_with_its_line_and_offer(
    client: httpx.AsyncClient,
    app: Any,
    clean_db: Any,
    make_user: Any,
    sold_out_event: Any,
    ticker: WaitlistTicker,
    redis_url: str,
) -> None:
    event, _organizer, owner, holds = await sold_out_event(
        capacity=6, holds=(2, 2, 2), max_per_user=6
    )
    event_id = event["event_id"]
    first, second = await make_user(), await make_user()
    await _join(client, event, first[1])
    await _join(client, event, second[1])
    await client.post(f"/api/v1/bookings/{holds[0]}/cancel", headers=owner)
    await ticker.tick()
    offer = (await client.get(f"/api/v1/events/{event_id}/waitlist", headers=first[1])).json()[
        "offer"
    ]
    await client.post(f"/api/v1/bookings/{holds[1]}/cancel", headers=owner)  # 2 more withheld

    services = app.state.services
    await services.redis.delete(*event_keys(event_id).stored())  # Redis restarts empty
    assert await restore_event(clean_db, services.scripts, event_id) is not None

    zone = (await services.scripts.availability(event_id))[event["zones"][0]["zone_id"]]
    # the offer's 2 and the 2 that came back since: withheld, none on open sale
    assert (zone.available, zone.held, zone.withheld, zone.offered) == (0, 2, 4, 2)
    await assert_counters_agree(redis_url, clean_db, event_id, capacity=6)
    place = (await client.get(f"/api/v1/events/{event_id}/waitlist", headers=second[1])).json()
    assert (place["status"], place["position"]) == ("waiting", 2)

    await ticker.tick()  # the second buyer gets the two that came back
    offered = (await client.get(f"/api/v1/events/{event_id}/waitlist", headers=second[1])).json()
    assert offered["status"] == "offered"
    await reserve(client, event, first[1], 2, key="first", offer=offer["offer_id"])
    await reserve(client, event, second[1], 2, key="second", offer=offered["offer"]["offer_id"])
    await ticker.tick()
    state = await assert_counters_agree(redis_url, clean_db, event_id, capacity=6)
    assert state["inv"]["total:withheld"] == 0


async def test_an_entry_redis_lost_is_put_back_in_line(
    client: httpx.AsyncClient,
    app: Any,
    make_user: Any,
    sold_out_event: Any,
    ticker: WaitlistTicker,
) -> None:
    event, _organizer, _owner, _ = await sold_out_event()
    event_id = event["event_id"]
    first, second = await make_user(), await make_user()
    await _join(client, event, first[1])
    await _join(client, event, second[1])
    services = app.state.services
    keys = event_keys(event_id)
    await services.scripts.waitlist.leave(event_id, first[0])  # as if its Redis write was lost
    assert await services.scripts.waitlist.rank(event_id, first[0]) is None

    await ticker.tick()
    entries = await services.scripts.waitlist.entries(event_id)
    assert set(entries) == {first[0], second[0]}
    assert await services.scripts.waitlist.rank(event_id, first[0]) == 0  # its old place
    assert await services.redis.hget(keys.wl_waiting, "*") in (b"2", "2")
