"""The post-payment saga with the real workers (relay, orchestrator, step) on real Kafka,
PostgreSQL and Redis: each outcome and compensation, and redelivery changing nothing."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from booking.inventory.scripts import Scripts
from tests.payments.conftest import SAGA_HOLD_TTL_S, SagaRig, wait_for
from workers.runtime import PeriodicWorker
from workers.seat_release import SeatRelease


async def _zone(rig: SagaRig, event: dict[str, Any]) -> Any:
    return await rig.pool.fetchrow(
        "SELECT held, sold FROM zones WHERE zone_id = $1",
        uuid.UUID(event["zones"][0]["zone_id"]),
    )


async def _available(rig: SagaRig, event: dict[str, Any]) -> int:
    answer = await rig.client.get(f"/api/v1/events/{event['event_id']}/availability")
    return int(answer.json()["zones"][0]["available"])


async def test_paid_hold_is_confirmed_once_though_the_webhook_comes_three_times(
    rig: SagaRig, saga_workers: Any
) -> None:
    event = await rig.event(capacity=4)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event, quantity=2)
    paid = await rig.pay(buyer, booking["booking_id"])
    assert paid.status_code == 201, paid.text
    payment_id = paid.json()["payment_id"]
    body, signature = await rig.signed_webhook(payment_id)
    results = [(await rig.deliver(body, signature)).json()["result"] for _ in range(3)]
    assert results == ["recorded", "duplicate", "duplicate"]

    async with saga_workers():
        await wait_for(lambda: _completed(rig, payment_id))
    assert await rig.booking_status(booking["booking_id"]) == "CONFIRMED"
    assert await rig.payment_status(payment_id) == "SUCCEEDED"
    zone = await _zone(rig, event)
    assert (zone["held"], zone["sold"]) == (0, 2)
    assert await _available(rig, event) == 2
    assert await rig.outbox_types(rig.topics.bookings, booking["booking_id"]) == [
        "booking.confirmed"
    ]
    assert await rig.outbox_types(rig.topics.notifications, booking["booking_id"]) == ["email.send"]
    steps = await rig.pool.fetch(
        "SELECT step, outcome FROM saga_steps WHERE saga_id = $1 ORDER BY id",
        uuid.UUID(payment_id),
    )
    # The payment message, or the orchestrator's re-read of the recorded webhook if it comes
    # first (the workers here start after the webhooks), begins the saga: once either way.
    assert [(s["step"], s["outcome"]) for s in steps] in (
        [("payment", first), ("confirm_booking", "confirmed"), ("notify", "sent")]
        for first in ("succeeded", "succeeded_on_record")
    )
    got = await rig.client.get(f"/api/v1/bookings/{booking['booking_id']}", headers=buyer)
    assert got.json()["payment_id"] == payment_id


async def _completed(rig: SagaRig, payment_id: str) -> bool:
    return await rig.saga_state(payment_id) == "COMPLETED"


async def test_declined_payment_fails_and_puts_the_seats_back(
    rig: SagaRig, saga_workers: Any
) -> None:
    event = await rig.event(capacity=3)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event, quantity=3)
    assert await _available(rig, event) == 0
    payment_id = (await rig.pay(buyer, booking["booking_id"])).json()["payment_id"]
    assert (await rig.deliver(*await rig.signed_webhook(payment_id, "decline"))).status_code == 200

    async with saga_workers():
        await wait_for(lambda: _state_is(rig, payment_id, "COMPENSATED"))
    assert await rig.payment_status(payment_id) == "FAILED"
    assert await rig.booking_status(booking["booking_id"]) == "CANCELLED"
    assert await _available(rig, event) == 3
    zone = await _zone(rig, event)
    assert (zone["held"], zone["sold"]) == (0, 0)
    assert await _email_kinds(rig, booking["booking_id"]) == ["payment_declined"]


async def _email_kinds(rig: SagaRig, booking_id: str) -> list[str]:
    """The kinds of the buyer emails written for the booking, in order."""
    rows = await rig.pool.fetch(
        "SELECT payload FROM outbox WHERE topic = $1 AND key = $2 ORDER BY id",
        rig.topics.notifications,
        booking_id,
    )
    return [row["payload"]["data"]["kind"] for row in rows]


async def _state_is(rig: SagaRig, saga_id: str, state: str) -> bool:
    return await rig.saga_state(saga_id) == state


async def test_payment_after_the_hold_lapsed_and_was_resold_is_refunded(
    rig: SagaRig, saga_workers: Any
) -> None:
    event = await rig.event(capacity=2)
    _, late_buyer = await rig.user()
    _, next_buyer = await rig.user()
    lapsed = await rig.reserve(late_buyer, event, quantity=2)
    payment_id = (await rig.pay(late_buyer, lapsed["booking_id"])).json()["payment_id"]

    sweeper = SeatRelease.provisioned(rig.worker_settings)
    await sweeper.start()
    try:
        await wait_for(
            lambda: _swept(rig, sweeper, lapsed["booking_id"]),
            within=SAGA_HOLD_TTL_S + 5,
            every=0.2,
        )
    finally:
        await sweeper.stop()
    resold = await rig.reserve(next_buyer, event, quantity=2)
    assert (await rig.deliver(*await rig.signed_webhook(payment_id))).json()["result"] == "recorded"
    # The answer is slow but comes: the orchestrator must not give up on the payment first.
    rig.worker_settings = replace(rig.worker_settings, saga_timeout_s=60)

    async with saga_workers():
        await wait_for(lambda: _state_is(rig, payment_id, "COMPENSATED"))
    assert await rig.payment_status(payment_id) == "REFUNDED"
    assert await rig.booking_status(lapsed["booking_id"]) == "EXPIRED"
    assert await rig.booking_status(resold["booking_id"]) == "RESERVED"
    zone = await _zone(rig, event)
    assert (zone["held"], zone["sold"]) == (2, 0)
    outcomes = await rig.pool.fetch(
        "SELECT step, outcome FROM saga_steps WHERE saga_id = $1 ORDER BY id",
        uuid.UUID(payment_id),
    )
    assert [(r["step"], r["outcome"]) for r in outcomes][1:] == [
        ("confirm_booking", "refused"),
        ("refund_payment", "refunded"),
    ]


async def _swept(rig: SagaRig, sweeper: PeriodicWorker, booking_id: str) -> bool:
    await sweeper.tick()
    return await rig.booking_status(booking_id) == "EXPIRED"


async def test_cancelling_a_confirmed_booking_refunds_then_releases(
    rig: SagaRig, saga_workers: Any
) -> None:
    event = await rig.event(capacity=2)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event, quantity=2)
    payment_id = (await rig.pay(buyer, booking["booking_id"])).json()["payment_id"]
    await rig.deliver(*await rig.signed_webhook(payment_id))
    async with saga_workers():
        await wait_for(lambda: _completed(rig, payment_id))
        assert await _available(rig, event) == 0
        cancelled = await rig.client.post(
            f"/api/v1/bookings/{booking['booking_id']}/cancel", headers=buyer
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "REFUNDED"
        again = await rig.client.post(
            f"/api/v1/bookings/{booking['booking_id']}/cancel", headers=buyer
        )
        assert again.json()["status"] == "REFUNDED"
        await wait_for(lambda: _cancel_saga_done(rig, booking["booking_id"]))
    assert await rig.payment_status(payment_id) == "REFUNDED"
    assert await _available(rig, event) == 2
    zone = await _zone(rig, event)
    assert (zone["held"], zone["sold"]) == (0, 0)
    kinds = await rig.pool.fetch(
        "SELECT kind, state FROM sagas WHERE booking_id = $1 ORDER BY created_at",
        uuid.UUID(booking["booking_id"]),
    )
    assert [(k["kind"], k["state"]) for k in kinds] == [
        ("payment", "COMPLETED"),
        ("cancel", "COMPLETED"),
    ]
    assert await _email_kinds(rig, booking["booking_id"]) == ["booking_confirmed", "refund"]


async def _cancel_saga_done(rig: SagaRig, booking_id: str) -> bool:
    state = await rig.pool.fetchval(
        "SELECT state FROM sagas WHERE booking_id = $1 AND kind = 'cancel'", uuid.UUID(booking_id)
    )
    return state == "COMPLETED"


async def test_unanswered_payment_times_out_and_releases_the_hold(
    rig: SagaRig, saga_workers: Any
) -> None:
    event = await rig.event(capacity=2)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event, quantity=1)
    payment_id = (await rig.pay(buyer, booking["booking_id"])).json()["payment_id"]
    async with saga_workers():
        await wait_for(lambda: _state_is(rig, payment_id, "COMPENSATED"))
        assert await rig.payment_status(payment_id) == "FAILED"
        assert await rig.booking_status(booking["booking_id"]) in ("CANCELLED", "EXPIRED")
        # The provider answers after all: the money goes back.
        await rig.deliver(*await rig.signed_webhook(payment_id))
        await wait_for(lambda: _payment_is(rig, payment_id, "REFUNDED"))


async def _payment_is(rig: SagaRig, payment_id: str, status: str) -> bool:
    return await rig.payment_status(payment_id) == status


async def test_crash_between_redis_and_postgres_confirm_is_finished_on_redelivery(
    rig: SagaRig, saga_workers: Any, redis_url: str
) -> None:
    import redis.asyncio as aioredis

    event = await rig.event(capacity=2)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event, quantity=1)
    payment_id = (await rig.pay(buyer, booking["booking_id"])).json()["payment_id"]
    # The step already ran Redis's confirm, then died before PostgreSQL.
    client = aioredis.Redis.from_url(redis_url)
    scripts = Scripts(client)
    try:
        first = await scripts.confirm(event["event_id"], booking["booking_id"])
    finally:
        await scripts.aclose()
        await client.aclose()
    assert not first.already_confirmed
    await rig.deliver(*await rig.signed_webhook(payment_id))
    async with saga_workers():
        await wait_for(lambda: _completed(rig, payment_id))
    assert await rig.booking_status(booking["booking_id"]) == "CONFIRMED"
    zone = await _zone(rig, event)
    assert (zone["held"], zone["sold"]) == (0, 1)
    assert await _available(rig, event) == 1
