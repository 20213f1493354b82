"""The sold-out wall (booking/sold_out.py): once Redis has said an event is sold out, the
process answers its reserves itself, exactly as reserve.lua would, and stops the moment a seat
could be on sale again or a request may be a replay."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import orjson
from prometheus_client import REGISTRY

from booking.inventory.keys import event_keys
from booking.sold_out import SoldOutWall
from tests import polling

RESERVE = "/api/v1/bookings/reserve"


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def reserve_scripts_run() -> float:
    return (
        REGISTRY.get_sample_value(
            "booking_rush_lua_script_duration_seconds_count", {"script": "reserve"}
        )
        or 0.0
    )


def wall_of(app: Any) -> SoldOutWall:
    wall = app.state.services.bookings.wall
    assert wall is not None
    return wall


async def wait_for(condition: Any, timeout_s: float = 5.0) -> None:
    async def check() -> bool:
        return bool(condition())

    await polling.wait_for(check, within=timeout_s, every=0.01)


async def sold_out(
    client: httpx.AsyncClient, app: Any, make_user: Any, published_event: Any
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str], httpx.Response]:
    """A one-seat event, its seat taken (the 201 and its headers), the wall up."""
    event, _ = await published_event(zones=[{"name": "Floor", "capacity": 1, "price_minor": 5000}])
    body = {"event_id": event["event_id"], "zone_id": event["zones"][0]["zone_id"], "quantity": 1}
    _, buyer = await make_user()
    first_headers = {**buyer, **key()}
    first = await client.post(RESERVE, json=body, headers=first_headers)
    assert first.status_code == 201, first.text
    _, late = await make_user()
    refused = await client.post(RESERVE, json=body, headers={**late, **key()})
    assert refused.status_code == 409 and refused.json()["code"] == "sold_out"
    await wait_for(lambda: wall_of(app).is_up(event["event_id"]))
    return event, body, first_headers, refused


async def test_a_walled_reserve_gets_the_scripts_answer_without_redis(
    client: httpx.AsyncClient, app: Any, make_user: Any, published_event: Any
) -> None:
    _, body, _, by_script = await sold_out(client, app, make_user, published_event)
    _, other = await make_user()
    before = reserve_scripts_run()
    counted = {"outcome": "sold_out"}
    sold_out_before = REGISTRY.get_sample_value("booking_rush_reservations_total", counted)
    walled = [await client.post(RESERVE, json=body, headers={**other, **key()}) for _ in range(5)]
    assert reserve_scripts_run() == before
    after = REGISTRY.get_sample_value("booking_rush_reservations_total", counted)
    assert after == (sold_out_before or 0.0) + 5  # counted as the script's answer is
    for answer in walled:
        assert answer.status_code == 409
        assert answer.json() == by_script.json()
        assert answer.headers["content-type"] == by_script.headers["content-type"]

    # A seated or offer-carrying request, or an unknown zone, still goes to Redis.
    unknown_zone = {**body, "zone_id": str(uuid.uuid4())}
    answer = await client.post(RESERVE, json=unknown_zone, headers={**other, **key()})
    assert answer.status_code == 422, answer.text
    assert reserve_scripts_run() == before + 1


async def test_replays_after_the_sell_out_are_answered_exactly(
    client: httpx.AsyncClient, app: Any, make_user: Any, published_event: Any
) -> None:
    _, body, first_headers, _ = await sold_out(client, app, make_user, published_event)
    first = await client.post(RESERVE, json=body, headers=first_headers)  # the replay
    assert first.status_code == 201, first.text
    again = await client.post(RESERVE, json=body, headers=first_headers)
    assert again.status_code == 201 and again.json() == first.json()
    reused = await client.post(RESERVE, json={**body, "quantity": 2}, headers=first_headers)
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"


async def test_a_seat_back_on_sale_brings_the_wall_down_at_once(
    client: httpx.AsyncClient, app: Any, make_user: Any, published_event: Any
) -> None:
    event, body, first_headers, _ = await sold_out(client, app, make_user, published_event)
    booking_id = (await client.post(RESERVE, json=body, headers=first_headers)).json()["booking_id"]
    cancelled = await client.post(f"/api/v1/bookings/{booking_id}/cancel", headers=first_headers)
    assert cancelled.status_code == 200, cancelled.text
    await wait_for(lambda: not wall_of(app).is_up(event["event_id"]), timeout_s=0.3)
    _, buyer = await make_user()
    taken = await client.post(RESERVE, json=body, headers={**buyer, **key()})
    assert taken.status_code == 201, taken.text


async def test_a_change_that_publishes_nothing_brings_it_down_within_the_recheck(
    client: httpx.AsyncClient, app: Any, make_user: Any, published_event: Any
) -> None:
    event, body, _, _ = await sold_out(client, app, make_user, published_event)
    redis = app.state.services.redis
    await redis.hset(event_keys(event["event_id"]).meta, "status", "closed")
    await wait_for(lambda: not wall_of(app).is_up(event["event_id"]), timeout_s=2.0)
    _, buyer = await make_user()
    answer = await client.post(RESERVE, json=body, headers={**buyer, **key()})
    assert answer.status_code == 409 and answer.json()["code"] == "sale_not_open"


async def test_a_lost_pub_sub_message_brings_it_down(
    client: httpx.AsyncClient, app: Any, make_user: Any, published_event: Any
) -> None:
    event, _, _, _ = await sold_out(client, app, make_user, published_event)
    wall = wall_of(app)
    wall._walls[event["event_id"]].mark_missed()
    assert not wall.is_up(event["event_id"])


def test_which_feed_messages_keep_the_wall() -> None:
    from booking.sold_out import keeps_wall

    def update(event_type: str, available: Any) -> bytes:
        return orjson.dumps(
            {"type": "seat_update", "event_type": event_type, "available": available}
        )

    # Withheld for the waitlist: back, but not on sale.
    assert keeps_wall(update("SEAT_WITHHELD", 0))
    assert keeps_wall(update("SEAT_CONFIRMED", 0))
    assert not keeps_wall(update("SEAT_AVAILABLE", 1))
    # A hold taken with a waitlist offer leaves `available` at 0 but adds an idempotency key.
    assert not keeps_wall(update("SEAT_RESERVED", 0))
    assert not keeps_wall(update("SEAT_CANCELLED", None))
    assert not keeps_wall(orjson.dumps({"type": "progress"}))
    assert not keeps_wall(b"not json")


async def test_a_flapping_wall_is_looked_at_less_and_less_often(
    client: httpx.AsyncClient, app: Any, make_user: Any, published_event: Any
) -> None:
    event, _, _, _ = await sold_out(client, app, make_user, published_event)
    event_id = event["event_id"]
    wall = wall_of(app)
    t0 = time.monotonic() + 100  # well after the first raise
    now = [t0]
    wall._clock = lambda: now[0]

    async def down_then_seen_at(moment: float) -> bool:
        """Brings the wall down, tells it Redis said sold out at `moment`: raised again?"""
        wall._walls[event_id].mark_missed()
        now[0] = moment
        wall.sold_out_seen(event_id)
        if not wall._walls[event_id].busy:
            return False  # no look started
        await wait_for(lambda: wall.is_up(event_id))
        return True

    assert await down_then_seen_at(t0)  # not flapping: the next look may come 1 s later
    assert await down_then_seen_at(t0 + 1.5)  # raised again within FLAP_S: 2 s next time
    assert not await down_then_seen_at(t0 + 2.1)
    assert await down_then_seen_at(t0 + 3.6)  # and 4 s after that
    assert not await down_then_seen_at(t0 + 5.0)
    assert await down_then_seen_at(t0 + 7.7)
    assert wall._walls[event_id].retry_s == 8.0
    assert await down_then_seen_at(t0 + 100)  # quiet for a while: back to the short wait
    assert wall._walls[event_id].retry_s == 1.0
