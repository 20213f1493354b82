"""Issue 8 acceptance through the gateway and the real processes: an SSE and a WebSocket watcher
of one event see the snapshot, then every change (reserve, payment, cancel, expiry, suspend) with
the `available` that GET /availability answers; WebSocket requests; bad tokens close with 1008;
no buyer identity anywhere in the feed."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import LiveStack
from tests.feed.e2e.conftest import HOLD_TTL_S
from tests.feed.e2e.watchers import Received, SSEWatch, Watch, WSWatch, is_type, is_update

DELIVERY_BUDGET_S = 0.2
FEED_FIELDS = {
    "type",
    "event_id",
    "zone_id",
    "event_type",
    "seats",
    "quantity",
    "available",
    "booking_id",
    "timestamp",
}


def _ws_url(stack: LiveStack, event_id: str, base: str | None = None) -> str:
    return re.sub(r"^http", "ws", base or stack.gateway_url) + f"/api/v1/events/{event_id}/live"


async def _event(gw: httpx.AsyncClient, organizer: dict[str, str]) -> dict[str, Any]:
    created = await gw.post(
        "/events",
        headers=organizer,
        json={
            "name": f"feed-{uuid.uuid4().hex[:6]}",
            "venue": "Loopback",
            "starts_at": "2031-01-01T20:00:00Z",
            "sale_starts_at": "2021-01-01T10:00:00Z",
            "max_per_user": 4,
            "currency": "EUR",
            "zones": [
                {"name": "Floor", "capacity": 10, "price_minor": 2500},
                {"name": "Balcony", "price_minor": 4000, "seats": ["A1", "A2", "A3", "A4"]},
            ],
        },
    )
    assert created.status_code == 201, created.text
    published = await gw.post(f"/events/{created.json()['event_id']}/publish", headers=organizer)
    assert published.status_code == 200, published.text
    return dict(published.json())


async def _reserve(gw: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await gw.post(
        "/bookings/reserve", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
    )


class Feed:
    """Both watchers of one event, and the checks every update must pass."""

    def __init__(self, gw: httpx.AsyncClient, event_id: str, sse: SSEWatch, ws: WSWatch) -> None:
        self.gw, self.event_id, self.sse, self.ws = gw, event_id, sse, ws
        self.watches: tuple[Watch, ...] = (sse, ws)

    async def availability(self) -> dict[str, Any]:
        answer = await self.gw.get(f"/events/{self.event_id}/availability")
        assert answer.status_code == 200
        return dict(answer.json())

    async def available(self, zone_id: str) -> int:
        zones = (await self.availability())["zones"]
        return int(next(z["available"] for z in zones if z["zone_id"] == zone_id))

    async def update(
        self, event_type: str, *, within: float = 5.0, **fields: Any
    ) -> tuple[Received, ...]:
        """Each watcher's matching update; its `available` is what the API answers now."""
        found = tuple(
            await asyncio.gather(
                *(w.find(is_update(event_type, **fields), within) for w in self.watches)
            )
        )
        for item in found:
            assert item.message["event_id"] == self.event_id
            assert item.message["available"] == await self.available(item.message["zone_id"])
        return found


async def test_sse_and_websocket_watchers_see_every_change_through_the_gateway(
    feed_stack: LiveStack, gw: httpx.AsyncClient, user: Any
) -> None:
    _, organizer = await user("organizer")
    buyer_id, buyer = await user()
    payer_id, payer = await user()
    admin_id, admin = await user("admin")
    event = await _event(gw, organizer)
    event_id = event["event_id"]
    floor, balcony = event["zones"][0]["zone_id"], event["zones"][1]["zone_id"]

    sse = await SSEWatch.open(
        f"{feed_stack.gateway_url}/api/v1/events/{event_id}/availability/stream"
    )
    ws = await WSWatch.open(_ws_url(feed_stack, event_id))  # no token: public
    feed = Feed(gw, event_id, sse, ws)
    try:
        expected = {"type": "availability", **await feed.availability()}
        for watch in feed.watches:
            assert (await watch.find(is_type("availability"))).message == expected

        # A hold: SEAT_RESERVED reaches both within 200 ms of the 201.
        held = await _reserve(gw, buyer, event_id=event_id, zone_id=floor, quantity=2)
        answered = time.monotonic()
        assert held.status_code == 201, held.text
        booking_id = held.json()["booking_id"]
        for item in await feed.update("SEAT_RESERVED", booking_id=booking_id):
            assert item.at - answered < DELIVERY_BUDGET_S
            assert (item.message["zone_id"], item.message["quantity"]) == (floor, 2)

        # A cancel: SEAT_CANCELLED then SEAT_AVAILABLE.
        cancelled = await gw.post(f"/bookings/{booking_id}/cancel", headers=buyer)
        assert cancelled.status_code == 200, cancelled.text
        back = await feed.update("SEAT_AVAILABLE", booking_id=booking_id)
        for watch, available in zip(feed.watches, back, strict=True):
            cancel = await watch.find(is_update("SEAT_CANCELLED", booking_id=booking_id))
            assert cancel.index < available.index
            assert cancel.message["available"] == 8 and available.message["available"] == 10

        # A hold left to lapse, and a paid one, side by side.
        lapsing = await _reserve(gw, buyer, event_id=event_id, zone_id=balcony, seats=["A1"])
        assert lapsing.status_code == 201, lapsing.text
        lapsing_id = lapsing.json()["booking_id"]
        await feed.update("SEAT_RESERVED", booking_id=lapsing_id, seats=["A1"])
        paid = await _reserve(gw, payer, event_id=event_id, zone_id=floor, quantity=1)
        paid_id = paid.json()["booking_id"]
        payment = await gw.post(
            "/payments",
            json={"booking_id": paid_id},
            headers={**payer, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert payment.status_code == 201, payment.text
        await feed.update("SEAT_CONFIRMED", booking_id=paid_id, quantity=1, within=20)
        expired = await feed.update("SEAT_AVAILABLE", booking_id=lapsing_id, within=HOLD_TTL_S + 5)
        assert expired[0].message["seats"] == ["A1"]

        # An admin suspends a seat: SEAT_SUSPENDED, and it cannot be reserved.
        suspended = await gw.post(
            f"/events/{event_id}/seats/suspend",
            json={"zone_id": balcony, "seats": ["A2"], "reason": "camera position"},
            headers=admin,
        )
        assert suspended.status_code == 200, suspended.text
        await feed.update("SEAT_SUSPENDED", zone_id=balcony, seats=["A2"], quantity=1)
        refused = await _reserve(gw, buyer, event_id=event_id, zone_id=balcony, seats=["A2"])
        assert refused.status_code == 409 and refused.json()["code"] == "seat_unavailable"

        # WebSocket requests.
        await ws.send({"type": "ping"})
        await ws.find(is_type("pong"))
        mark = len(ws.log)
        await ws.send({"type": "get_availability", "event_id": event_id})
        current = await ws.find(is_type("availability"), since=mark)
        assert current.message == {"type": "availability", **await feed.availability()}
        for bad in ({"type": "shout"}, "not json", {"type": "subscribe", "event_id": "x"}):
            mark = len(ws.log)
            await ws.send(bad)
            error = (await ws.find(is_type("error"), since=mark)).message
            assert error["code"] == "invalid_request" and error["message"]
        await ws.send({"type": "ping"})
        await ws.find(is_type("pong"), since=mark)  # still open after bad messages

        # No buyer identity in any message, and nothing but the API's fields.
        secrets = (buyer_id, payer_id, admin_id, "@test.local")
        for watch in feed.watches:
            for item in watch.log:
                assert not any(secret in item.raw for secret in secrets), item.raw
                if item.message["type"] == "seat_update":
                    assert set(item.message) <= FEED_FIELDS
    finally:
        await ws.close()
        await sse.close()


async def _closed_with(url: str, headers: dict[str, str] | None = None) -> int | None:
    watch = await WSWatch.open(url, headers)
    try:
        async with asyncio.timeout(5):
            await watch.socket.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    finally:
        await watch.close()
    pytest.fail("the socket stayed open")


async def test_bad_tokens_close_1008_and_one_socket_watches_several_events(
    feed_stack: LiveStack, gw: httpx.AsyncClient, user: Any
) -> None:
    _, organizer = await user("organizer")
    _, buyer = await user()
    first, second = await _event(gw, organizer), await _event(gw, organizer)
    for base in (feed_stack.gateway_url, feed_stack.booking_url):  # the gateway, and booking too
        url = _ws_url(feed_stack, first["event_id"], base)
        assert await _closed_with(url + "?token=not-a-token") == 1008
        assert await _closed_with(url, {"Authorization": "Bearer forged.token.here"}) == 1008

    token = buyer["Authorization"].removeprefix("Bearer ")
    ws = await WSWatch.open(_ws_url(feed_stack, first["event_id"]) + f"?token={token}")
    try:
        await ws.find(is_type("availability", event_id=first["event_id"]))
        await ws.send({"type": "subscribe", "event_id": second["event_id"]})
        await ws.find(is_type("availability", event_id=second["event_id"]))
        for event in (first, second):
            zone = event["zones"][0]["zone_id"]
            answer = await _reserve(gw, buyer, event_id=event["event_id"], zone_id=zone, quantity=1)
            assert answer.status_code == 201, answer.text
            await ws.find(is_update("SEAT_RESERVED", event_id=event["event_id"]))

        await ws.send({"type": "unsubscribe", "event_id": second["event_id"]})
        await ws.send({"type": "ping"})
        await ws.find(is_type("pong"))
        mark = len(ws.log)
        zone = second["zones"][0]["zone_id"]
        answer = await _reserve(gw, buyer, event_id=second["event_id"], zone_id=zone, quantity=1)
        assert answer.status_code == 201
        await ws.send({"type": "ping"})
        await ws.find(is_type("pong"), since=mark)
        await asyncio.sleep(0.2)
        assert not [i for i in ws.log[mark:] if i.message.get("type") == "seat_update"]

        unknown = str(uuid.uuid4())
        await ws.send({"type": "subscribe", "event_id": unknown})
        error = (await ws.find(is_type("error", event_id=unknown))).message
        assert error["code"] == "not_found"

        async with httpx.AsyncClient(timeout=5) as plain:
            metrics = (await plain.get(f"{feed_stack.booking_url}/metrics")).text
        assert re.search(r'booking_rush_feed_connections\{transport="ws"\} [1-9]', metrics)
        assert re.search(r"booking_rush_feed_rooms [1-9]", metrics)
        assert "booking_rush_feed_messages_sent_total" in metrics
    finally:
        await ws.close()
