"""Money is never settled by assumption: lost webhooks and lost messages are re-driven from
PostgreSQL and the provider, an unanswered payment is cancelled at the provider before it is
failed, and a paid live hold is confirmed even when Redis lost its event."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from booking.inventory.keys import LIVE_EVENTS, event_keys
from tests.payments.conftest import SAGA_HOLD_TTL_S, SagaRig, running, wait_for
from workers.outbox_relay import OutboxRelay
from workers.resources import open_resources
from workers.saga_orchestrator import SagaOrchestrator
from workers.saga_step import SagaStep
from workers.seat_release import SeatRelease


async def _saga_state(rig: SagaRig, saga_id: str, state: str) -> bool:
    return await rig.saga_state(saga_id) == state


async def _first_step(rig: SagaRig, saga_id: str) -> tuple[str, str]:
    row = await rig.pool.fetchrow(
        "SELECT step, outcome FROM saga_steps WHERE saga_id = $1 ORDER BY id LIMIT 1",
        uuid.UUID(saga_id),
    )
    return (row["step"], row["outcome"])


async def _charge(rig: SagaRig, payment_id: str) -> str:
    return str(
        await rig.pool.fetchval(
            "SELECT status FROM mock_charges WHERE payment_id = $1", uuid.UUID(payment_id)
        )
    )


async def test_a_paid_charge_whose_webhook_never_came_is_confirmed(
    rig: SagaRig, saga_workers: Any
) -> None:
    """The mock took the money but its webhook goes nowhere (the rig's webhook URL is dead):
    the orchestrator asks the provider and confirms."""
    event = await rig.event(capacity=2)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event)
    payment_id = (await rig.pay(buyer, booking["booking_id"], "succeed")).json()["payment_id"]
    assert await _charge(rig, payment_id) == "succeeded"
    # Asked well within the rig's 2 s holds (the timeout only sets when the provider is asked).
    rig.worker_settings = replace(rig.worker_settings, saga_timeout_s=0.6)

    async with saga_workers():
        await wait_for(lambda: _saga_state(rig, payment_id, "COMPLETED"), within=30)
    assert await rig.payment_status(payment_id) == "SUCCEEDED"
    assert await rig.booking_status(booking["booking_id"]) == "CONFIRMED"
    assert await _first_step(rig, payment_id) == ("payment", "succeeded_by_provider")


async def test_a_recorded_webhook_whose_message_the_broker_lost_is_re_driven(
    rig: SagaRig, saga_workers: Any
) -> None:
    """The webhook was recorded and the relay believed it published the message, but the
    broker lost it (restarted empty): nothing on Kafka, yet the payment is confirmed."""
    event = await rig.event(capacity=2)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event)
    payment_id = (await rig.pay(buyer, booking["booking_id"], "succeed")).json()["payment_id"]
    assert (await rig.deliver(*await rig.signed_webhook(payment_id))).json()["result"] == "recorded"
    lost = await rig.pool.execute(
        "UPDATE outbox SET published_at = now() WHERE topic = $1", rig.topics.payments
    )
    assert lost == "UPDATE 1"
    rig.worker_settings = replace(rig.worker_settings, saga_timeout_s=0.6)

    async with saga_workers():
        await wait_for(lambda: _saga_state(rig, payment_id, "COMPLETED"), within=30)
    assert await rig.booking_status(booking["booking_id"]) == "CONFIRMED"
    assert await rig.payment_status(payment_id) == "SUCCEEDED"


async def test_an_unanswered_payment_is_cancelled_at_the_provider_before_it_fails(
    rig: SagaRig, saga_workers: Any
) -> None:
    event = await rig.event(capacity=2)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event)
    payment_id = (await rig.pay(buyer, booking["booking_id"], "no_answer")).json()["payment_id"]
    async with saga_workers():
        await wait_for(lambda: _saga_state(rig, payment_id, "COMPENSATED"), within=30)
    assert await _charge(rig, payment_id) == "canceled"
    assert await rig.payment_status(payment_id) == "FAILED"
    assert await _first_step(rig, payment_id) == ("payment", "timed_out")


async def test_a_charge_settling_late_is_confirmed_not_failed(
    rig: SagaRig, saga_workers: Any
) -> None:
    """The provider took the money after our timeout passed but before we asked, and its
    webhook was lost: asking finds the success, so the payment is never failed."""
    event = await rig.event(capacity=2)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event)
    payment_id = (await rig.pay(buyer, booking["booking_id"], "no_answer")).json()["payment_id"]
    await rig.pool.execute(
        "UPDATE mock_charges SET status = 'succeeded' WHERE payment_id = $1",
        uuid.UUID(payment_id),
    )
    # Asked well within the rig's 2 s holds (the timeout only sets when the provider is asked).
    rig.worker_settings = replace(rig.worker_settings, saga_timeout_s=0.6)
    async with saga_workers():
        await wait_for(lambda: _saga_state(rig, payment_id, "COMPLETED"), within=30)
    assert await rig.payment_status(payment_id) == "SUCCEEDED"
    assert await rig.booking_status(booking["booking_id"]) == "CONFIRMED"


async def test_a_paid_live_hold_is_confirmed_though_redis_lost_the_event(
    rig: SagaRig, saga_workers: Any, redis_url: str
) -> None:
    event = await rig.event(capacity=3)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event, quantity=2)
    payment_id = (await rig.pay(buyer, booking["booking_id"])).json()["payment_id"]
    # Redis restarts without its data before the saga confirms (no reconciler runs here).
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.delete(*event_keys(event["event_id"]).stored())
        await client.zrem(LIVE_EVENTS, event["event_id"])
        assert (await rig.deliver(*await rig.signed_webhook(payment_id))).json()[
            "result"
        ] == "recorded"
        async with saga_workers():
            await wait_for(lambda: _saga_state(rig, payment_id, "COMPLETED"), within=30)
        inventory = await client.hgetall(event_keys(event["event_id"]).inv)
    finally:
        await client.aclose()
    assert await rig.booking_status(booking["booking_id"]) == "CONFIRMED"
    assert await rig.payment_status(payment_id) == "SUCCEEDED"
    zone = event["zones"][0]["zone_id"]
    sold = int(inventory[f"{zone}:sold".encode()])
    available = int(inventory[f"{zone}:available".encode()])
    assert (sold, available) == (2, 1)


async def test_a_stuck_saga_is_retried_past_the_old_give_up_point(rig: SagaRig) -> None:
    """A saga whose step never answered (here: no saga-step runs, then 12 tries are on record)
    is sent again, not failed: a paid booking must end confirmed or refunded without a human."""
    event = await rig.event(capacity=2)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event)
    payment_id = (await rig.pay(buyer, booking["booking_id"])).json()["payment_id"]
    await rig.deliver(*await rig.signed_webhook(payment_id))
    options = {"topics": rig.topics, "poll_timeout_ms": 100}
    orchestrator = SagaOrchestrator.provisioned(
        rig.worker_settings, group_id=f"orch-{rig.unique}", **options
    )
    async with running(OutboxRelay.provisioned(rig.worker_settings), orchestrator):
        await wait_for(lambda: _saga_state(rig, payment_id, "CONFIRMING"), within=30)
    await rig.pool.execute(
        """UPDATE sagas SET attempts = 12, updated_at = now() - interval '1 hour'
           WHERE saga_id = $1""",
        uuid.UUID(payment_id),
    )
    step = SagaStep.provisioned(rig.worker_settings, group_id=f"step-{rig.unique}", **options)
    orchestrator = SagaOrchestrator.provisioned(
        rig.worker_settings, group_id=f"orch-{rig.unique}", **options
    )
    async with running(OutboxRelay.provisioned(rig.worker_settings), orchestrator, step):
        await wait_for(lambda: _saga_ended_well(rig, payment_id), within=30)
    steps = await rig.pool.fetch(
        "SELECT step, outcome FROM saga_steps WHERE saga_id = $1", uuid.UUID(payment_id)
    )
    assert ("confirm_booking", "retried") in [(s["step"], s["outcome"]) for s in steps]
    # The rig's holds last 2 s, so the retried confirm may find the hold lapsed: then the money
    # goes back (no seat-release runs here to mark the booking EXPIRED). Either way the buyer
    # ends with the ticket or the refund.
    booking_status = await rig.booking_status(booking["booking_id"])
    payment_status = await rig.payment_status(payment_id)
    assert (booking_status, payment_status) in (
        ("CONFIRMED", "SUCCEEDED"),
        ("RESERVED", "REFUNDED"),
        ("EXPIRED", "REFUNDED"),
    )


async def _saga_ended_well(rig: SagaRig, saga_id: str) -> bool:
    return await rig.saga_state(saga_id) in ("COMPLETED", "COMPENSATED")


async def test_a_recorded_outcome_is_re_driven_even_if_the_provider_disagrees(
    rig: SagaRig, saga_workers: Any
) -> None:
    """A signed `succeeded` webhook is on record but its message was lost; the provider's books
    (the rig paid `no_answer`) still say pending: what we recorded wins, nothing is cancelled."""
    event = await rig.event(capacity=2)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event)
    payment_id = (await rig.pay(buyer, booking["booking_id"])).json()["payment_id"]
    assert (await rig.deliver(*await rig.signed_webhook(payment_id))).json()["result"] == "recorded"
    await rig.pool.execute("UPDATE outbox SET published_at = now()")
    async with saga_workers():
        await wait_for(lambda: _saga_state(rig, payment_id, "COMPLETED"), within=30)
    assert await _first_step(rig, payment_id) == ("payment", "succeeded_on_record")
    assert await _charge(rig, payment_id) == "processing"  # never cancelled


async def test_a_hold_being_paid_for_outlives_its_deadline_until_the_confirm(
    rig: SagaRig, saga_workers: Any
) -> None:
    """The buyer pays just before the hold's deadline and the confirm is delayed past it (here
    the webhook comes late): the payment kept the hold, so the seats are sold, not lapsed."""
    rig.app.state.services.payments.hold_grace_s = 60
    event = await rig.event(capacity=2)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event, quantity=2)
    payment_id = (await rig.pay(buyer, booking["booking_id"])).json()["payment_id"]
    expires_at = await rig.pool.fetchval(
        "SELECT expires_at FROM bookings WHERE booking_id = $1", uuid.UUID(booking["booking_id"])
    )
    assert (expires_at - datetime.now(UTC)).total_seconds() > 50

    async with open_resources(rig.worker_settings) as resources:
        sweeper = SeatRelease(rig.worker_settings, resources)
        await sweeper.start()
        try:
            await asyncio.sleep(SAGA_HOLD_TTL_S + 0.5)  # past the hold's original deadline
            await sweeper.tick()  # the sweep and the catch-up pass both leave it alone
            hold = await sweeper.scripts.get_hold(event["event_id"], booking["booking_id"])
        finally:
            await sweeper.stop()
    assert hold is not None and hold.status == "RESERVED"
    assert await rig.booking_status(booking["booking_id"]) == "RESERVED"
    assert (await rig.deliver(*await rig.signed_webhook(payment_id))).json()["result"] == "recorded"
    async with saga_workers():
        await wait_for(lambda: _saga_state(rig, payment_id, "COMPLETED"), within=30)
    assert await rig.booking_status(booking["booking_id"]) == "CONFIRMED"
