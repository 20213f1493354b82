"""Issue 5 acceptance through the real processes and broker: pay -> CONFIRMED, decline, duplicate
webhooks, a payment after the hold was resold, cancel of a confirmed booking, a SIGKILLed
worker, a poison message, and the invariants after a mixed run of 200 buyers."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer

from booking.kafka import create_producer
from tests.payments.e2e.conftest import HOLD_TTL_S, SAGA_TIMEOUT_S, TOPICS, Buyers

TOPIC_BOOKINGS, TOPIC_NOTIFICATIONS, TOPIC_PAYMENTS = (
    TOPICS.bookings,
    TOPICS.notifications,
    TOPICS.payments,
)


async def _until(check: Callable[[], Awaitable[Any]], within: float, every: float = 0.1) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within} s")
        await asyncio.sleep(every)


async def _status_is(
    buyers: Buyers, headers: dict[str, str], booking_id: str, *statuses: str
) -> bool:
    return (await buyers.booking(headers, booking_id))["status"] in statuses


async def test_paid_hold_confirms_within_10_s_and_a_decline_puts_seats_back(
    buyers: Buyers,
) -> None:
    event = await buyers.event(4)
    payer, decliner = await buyers.user(), await buyers.user()
    paid = (await buyers.reserve(payer, event, quantity=2)).json()
    declined = (await buyers.reserve(decliner, event, quantity=2)).json()
    assert await buyers.available(event) == 0

    started = time.monotonic()
    paid_payment = await buyers.pay(payer, paid["booking_id"], "succeed")
    declined_payment = await buyers.pay(decliner, declined["booking_id"], "decline")
    await _until(lambda: _status_is(buyers, payer, paid["booking_id"], "CONFIRMED"), 10)
    assert time.monotonic() - started < 10
    confirmed = await buyers.booking(payer, paid["booking_id"])
    assert confirmed["payment_id"] == paid_payment
    assert (await buyers.payment(payer, paid_payment))["status"] == "SUCCEEDED"

    await _until(lambda: _status_is(buyers, decliner, declined["booking_id"], "CANCELLED"), 10)
    assert (await buyers.payment(decliner, declined_payment))["status"] == "FAILED"
    assert await buyers.available(event) == 2


async def test_the_same_webhook_three_times_confirms_once(buyers: Buyers) -> None:
    event = await buyers.event(3)
    buyer = await buyers.user()
    booking = (await buyers.reserve(buyer, event, quantity=3)).json()
    payment_id = await buyers.pay(buyer, booking["booking_id"], "no_answer")
    body, headers = await buyers.webhook(payment_id)
    answers = [
        await buyers.gw.post("/payments/webhook", content=body, headers=headers) for _ in range(3)
    ]
    assert [a.json()["result"] for a in answers] == ["recorded", "duplicate", "duplicate"]
    await _until(lambda: _status_is(buyers, buyer, booking["booking_id"], "CONFIRMED"), 10)
    await _until(
        lambda: buyers.outbox_count(TOPIC_NOTIFICATIONS, booking["booking_id"], "email.send"), 10
    )
    await asyncio.sleep(0.5)  # room for a second effect, if there were one
    await _effects_once(buyers, booking["booking_id"])
    sold = await buyers.db.fetchval(
        "SELECT sold FROM zones WHERE zone_id = $1", uuid.UUID(event["zones"][0]["zone_id"])
    )
    assert sold == 3


async def test_payment_after_the_hold_lapsed_and_was_resold_is_refunded(buyers: Buyers) -> None:
    event = await buyers.event(2)
    late, next_buyer = await buyers.user(), await buyers.user()
    lapsed = (await buyers.reserve(late, event, quantity=2)).json()
    payment_id = await buyers.pay(late, lapsed["booking_id"], "no_answer")
    await _until(lambda: _status_is(buyers, late, lapsed["booking_id"], "EXPIRED"), HOLD_TTL_S + 10)
    resold = await buyers.reserve(next_buyer, event, quantity=2)
    assert resold.status_code == 201, resold.text

    body, headers = await buyers.webhook(payment_id)
    assert (await buyers.gw.post("/payments/webhook", content=body, headers=headers)).json()[
        "result"
    ] == "recorded"
    await _until(lambda: _payment_is(buyers, late, payment_id, "REFUNDED"), 10)
    assert (await buyers.booking(late, lapsed["booking_id"]))["status"] == "EXPIRED"
    assert (await buyers.booking(next_buyer, resold.json()["booking_id"]))["status"] == "RESERVED"
    zone = await buyers.db.fetchrow(
        "SELECT held, sold, capacity FROM zones WHERE zone_id = $1",
        uuid.UUID(event["zones"][0]["zone_id"]),
    )
    assert (zone["held"], zone["sold"]) == (2, 0)


async def _effects_once(buyers: Buyers, booking_id: str) -> None:
    assert await buyers.outbox_count(TOPIC_BOOKINGS, booking_id, "booking.confirmed") == 1
    assert await buyers.outbox_count(TOPIC_NOTIFICATIONS, booking_id, "email.send") == 1


async def _payment_is(
    buyers: Buyers, headers: dict[str, str], payment_id: str, status: str
) -> bool:
    return (await buyers.payment(headers, payment_id))["status"] == status


async def test_cancelling_a_confirmed_booking_refunds_and_frees_the_seats(buyers: Buyers) -> None:
    event = await buyers.event(2)
    buyer = await buyers.user()
    booking = (await buyers.reserve(buyer, event, quantity=2)).json()
    payment_id = await buyers.pay(buyer, booking["booking_id"], "succeed")
    await _until(lambda: _status_is(buyers, buyer, booking["booking_id"], "CONFIRMED"), 10)
    assert await buyers.available(event) == 0

    answer = await buyers.gw.post(f"/bookings/{booking['booking_id']}/cancel", headers=buyer)
    assert answer.status_code == 200, answer.text
    await _until(lambda: _status_is(buyers, buyer, booking["booking_id"], "REFUNDED"), 10)
    assert (await buyers.payment(buyer, payment_id))["status"] == "REFUNDED"
    assert await buyers.available(event) == 2


async def test_saga_workers_killed_mid_saga_finish_it_exactly_once(buyers: Buyers) -> None:
    event = await buyers.event(2)
    buyer = await buyers.user()
    booking = (await buyers.reserve(buyer, event, quantity=2)).json()
    managed = {m.spec.name: m for m in buyers.stack.stack._managed}
    step_process = managed["saga-step"].process
    orchestrator_process = managed["saga-orchestrator"].process
    assert step_process is not None and orchestrator_process is not None
    step_pid, orchestrator_pid = step_process.pid, orchestrator_process.pid

    # The step dies first, so the confirm command waits for its successor; the orchestrator
    # dies once it has moved the saga on (its reply handling is then in flight too).
    os.kill(step_pid, signal.SIGKILL)
    payment_id = await buyers.pay(buyer, booking["booking_id"], "succeed")
    await _until(lambda: _saga_state_is(buyers, payment_id, "CONFIRMING"), 10, every=0.02)
    os.kill(orchestrator_pid, signal.SIGKILL)

    # Normally it confirms; on a slow machine the restart may outlast the hold, and then the
    # saga must refund instead. Either way it ends once, with one effect.
    final = await _until(
        lambda: _ended(buyers, buyer, booking["booking_id"], payment_id), HOLD_TTL_S + 30
    )
    for name, pid in (("saga-step", step_pid), ("saga-orchestrator", orchestrator_pid)):
        await _until(functools.partial(_restarted, managed[name], pid), 10)
    sold = await buyers.db.fetchval(
        "SELECT sold FROM zones WHERE zone_id = $1", uuid.UUID(event["zones"][0]["zone_id"])
    )
    confirmations = await buyers.outbox_count(
        TOPIC_BOOKINGS, booking["booking_id"], "booking.confirmed"
    )
    if final == "CONFIRMED":
        await _until(
            lambda: buyers.outbox_count(TOPIC_NOTIFICATIONS, booking["booking_id"], "email.send"),
            10,
        )
        await _effects_once(buyers, booking["booking_id"])
        assert sold == 2
    else:
        assert (final, confirmations, sold) == ("REFUNDED", 0, 0)
    refunds = await buyers.db.fetchval(
        "SELECT count(*) FROM saga_steps WHERE saga_id = $1 AND outcome = 'refunded'",
        uuid.UUID(payment_id),
    )
    assert refunds == (0 if final == "CONFIRMED" else 1)


async def _saga_state_is(buyers: Buyers, saga_id: str, state: str) -> bool:
    found = await buyers.db.fetchval(
        "SELECT state FROM sagas WHERE saga_id = $1", uuid.UUID(saga_id)
    )
    return found == state


async def _restarted(managed: Any, old_pid: int) -> bool:
    return managed.process is not None and managed.process.pid != old_pid


async def _ended(
    buyers: Buyers, headers: dict[str, str], booking_id: str, payment_id: str
) -> str | None:
    if (await buyers.booking(headers, booking_id))["status"] == "CONFIRMED":
        return "CONFIRMED"
    if (await buyers.payment(headers, payment_id))["status"] == "REFUNDED":
        return "REFUNDED"
    return None


async def test_a_malformed_message_goes_to_the_dlq_and_sagas_go_on(buyers: Buyers) -> None:
    poison = b"{not an envelope " + uuid.uuid4().hex.encode()
    bootstrap = buyers.stack.endpoints.kafka_bootstrap
    producer = create_producer(bootstrap, idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC_PAYMENTS, value=poison, key=b"poison")
    finally:
        await producer.stop()

    event = await buyers.event(1)
    buyer = await buyers.user()
    booking = (await buyers.reserve(buyer, event)).json()
    await buyers.pay(buyer, booking["booking_id"], "succeed")
    await _until(lambda: _status_is(buyers, buyer, booking["booking_id"], "CONFIRMED"), 10)

    dead = AIOKafkaConsumer(
        f"{TOPIC_PAYMENTS}.dlq",
        bootstrap_servers=bootstrap,
        group_id=f"dlq-reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        session_timeout_ms=1000,
        heartbeat_interval_ms=300,
    )
    await dead.start()
    try:
        async with asyncio.timeout(20):
            found = None
            while found is None:
                for batch in (await dead.getmany(timeout_ms=200)).values():
                    found = next((m for m in batch if m.value == poison), found)
    finally:
        await dead.stop()
    assert dict(found.headers)["dlq-reason"].startswith(b"malformed")


async def test_mixed_run_of_200_buyers_keeps_the_invariants(buyers: Buyers) -> None:
    capacities = (50, 40)
    event = await buyers.event(*capacities)
    people = [await buyers.user() for _ in range(200)]
    outcomes = ("succeed", "succeed", "succeed", "decline", "succeed", "succeed")

    async def buy(i: int, person: dict[str, str]) -> tuple[int, Any, str | None]:
        answer = await buyers.reserve(person, event, zone=i % 2)
        if answer.status_code != 201:
            return answer.status_code, answer.json(), None
        booking = answer.json()
        paid = await buyers.gw.post(
            "/payments",
            headers={**person, "Idempotency-Key": uuid.uuid4().hex},
            json={"booking_id": booking["booking_id"], "test_outcome": outcomes[i % 6]},
        )
        # 410: this buyer was too slow and the hold lapsed (a legitimate end of the story).
        assert paid.status_code in (201, 410), paid.text
        return 201, booking, paid.json()["payment_id"] if paid.status_code == 201 else None

    results = await asyncio.gather(*[buy(i, person) for i, person in enumerate(people)])
    # Declined payments put seats back mid-run, so more than the capacity may get a hold.
    assert sum(1 for status, _, _ in results if status == 201) >= sum(capacities)
    assert {body["code"] for status, body, _ in results if status != 201} == {"sold_out"}
    holds = [
        (person, body)
        for person, (status, body, payment) in zip(people, results, strict=True)
        if payment is not None
    ]
    payment_ids = [payment for _, _, payment in results if payment is not None]
    assert len(payment_ids) > sum(capacities) // 2
    # Some buyers cancel once confirmed (refund, then release).
    cancellers = holds[::9]
    for person, booking in cancellers:
        await _until(
            functools.partial(
                _status_is,
                buyers,
                person,
                booking["booking_id"],
                "CONFIRMED",
                "CANCELLED",
                "EXPIRED",
            ),
            20,
        )
        await buyers.gw.post(f"/bookings/{booking['booking_id']}/cancel", headers=person)

    async def settled() -> bool:
        running = await buyers.db.fetchval(
            """SELECT count(*) FROM payments p LEFT JOIN sagas s ON s.payment_id = p.payment_id
               WHERE p.payment_id = ANY($1::uuid[])
                 AND (p.status = 'PENDING' OR s.state NOT IN ('COMPLETED', 'COMPENSATED'))""",
            [uuid.UUID(p) for p in payment_ids],
        )
        return running == 0

    await _until(settled, SAGA_TIMEOUT_S + 40, every=0.5)
    rows = await buyers.db.fetch(
        """SELECT p.payment_id, p.status, b.status AS booking_status, b.payment_id AS paid_by
           FROM payments p JOIN bookings b USING (booking_id)
           WHERE p.payment_id = ANY($1::uuid[])""",
        [uuid.UUID(p) for p in payment_ids],
    )
    assert len(rows) == len(payment_ids)
    for row in rows:
        confirmed_by_it = (
            row["booking_status"] == "CONFIRMED" and row["paid_by"] == row["payment_id"]
        )
        if row["status"] == "SUCCEEDED":
            assert confirmed_by_it, dict(row)
        else:
            assert row["status"] in ("REFUNDED", "FAILED"), dict(row)
            assert not confirmed_by_it, dict(row)
    statuses = [row["status"] for row in rows]
    assert statuses.count("SUCCEEDED") > 0 and statuses.count("FAILED") > 0
    assert statuses.count("REFUNDED") >= len(cancellers) // 2

    for zone, capacity in zip(event["zones"], capacities, strict=True):
        counts = await buyers.db.fetchrow(
            """SELECT z.sold, z.held,
                      (SELECT coalesce(sum(quantity), 0) FROM bookings
                       WHERE zone_id = z.zone_id AND status = 'CONFIRMED') AS confirmed
               FROM zones z WHERE z.zone_id = $1""",
            uuid.UUID(zone["zone_id"]),
        )
        assert counts["confirmed"] == counts["sold"] <= capacity
        assert counts["sold"] + counts["held"] <= capacity
    admin = await buyers.user("admin")
    stats = (await buyers.gw.get(f"/admin/events/{event['event_id']}/stats", headers=admin)).json()
    for zone in stats["zones"]:
        assert zone["postgres"] == {"held": zone["held"], "sold": zone["sold"]}
