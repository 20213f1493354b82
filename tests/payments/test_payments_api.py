"""POST/GET /payments and the webhook intake, in-process against the real PostgreSQL/Redis."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from booking.payments.providers.stripe import StripeProvider
from tests.payments.conftest import SagaRig


async def test_pay_is_idempotent_and_only_for_a_live_hold_of_the_caller(rig: SagaRig) -> None:
    event = await rig.event(capacity=4, price_minor=1999)
    _, buyer = await rig.user()
    _, stranger = await rig.user()
    _, admin = await rig.user("admin")
    booking = await rig.reserve(buyer, event, quantity=2)
    body = {"booking_id": booking["booking_id"], "test_outcome": "no_answer"}

    missing = await rig.client.post("/api/v1/payments", headers=buyer, json=body)
    assert (missing.status_code, missing.json()["code"]) == (400, "idempotency_key_required")

    keyed = {**buyer, "Idempotency-Key": "pay-1"}
    first = await rig.client.post("/api/v1/payments", headers=keyed, json=body)
    assert first.status_code == 201, first.text
    payment = first.json()
    assert payment["status"] == "PENDING" and payment["provider"] == "mock"
    assert (payment["amount_minor"], payment["currency"]) == (2 * 1999, "EUR")
    again = await rig.client.post("/api/v1/payments", headers=keyed, json=body)
    assert (again.status_code, again.json()) == (201, payment)
    other_body = {"booking_id": booking["booking_id"], "test_outcome": "decline"}
    reused = await rig.client.post("/api/v1/payments", headers=keyed, json=other_body)
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    second = await rig.pay(buyer, booking["booking_id"])
    assert (second.status_code, second.json()["code"]) == (409, "invalid_state")

    theirs = await rig.pay(stranger, booking["booking_id"])
    assert (theirs.status_code, theirs.json()["code"]) == (404, "not_found")
    path = f"/api/v1/payments/{payment['payment_id']}"
    assert (await rig.client.get(path, headers=stranger)).status_code == 404
    assert (await rig.client.get(path, headers=admin)).json()["status"] == "PENDING"
    assert (await rig.client.get(path, headers=buyer)).json()["booking_id"] == booking["booking_id"]


async def test_pay_refuses_lapsed_cancelled_holds_and_test_outcome_with_stripe(
    rig: SagaRig,
) -> None:
    event = await rig.event(capacity=4)
    _, buyer = await rig.user()
    lapsed = await rig.reserve(buyer, event)
    await rig.pool.execute(
        "UPDATE bookings SET expires_at = $2 WHERE booking_id = $1",
        uuid.UUID(lapsed["booking_id"]),
        datetime.now(UTC) - timedelta(seconds=1),
    )
    answer = await rig.pay(buyer, lapsed["booking_id"])
    assert (answer.status_code, answer.json()["code"]) == (410, "reservation_expired")

    cancelled = await rig.reserve(buyer, event)
    await rig.client.post(f"/api/v1/bookings/{cancelled['booking_id']}/cancel", headers=buyer)
    answer = await rig.pay(buyer, cancelled["booking_id"])
    assert (answer.status_code, answer.json()["code"]) == (409, "invalid_state")

    live = await rig.reserve(buyer, event)
    mock = rig.app.state.services.payments.provider
    rig.app.state.services.payments.provider = StripeProvider(secret_key="sk", webhook_secret="wh")
    try:
        answer = await rig.pay(buyer, live["booking_id"], outcome="succeed")
    finally:
        rig.app.state.services.payments.provider = mock
    assert (answer.status_code, answer.json()["code"]) == (422, "invalid_request")
    assert answer.json()["errors"][0]["field"] == "test_outcome"


async def test_webhook_is_recorded_once_with_its_outbox_message(rig: SagaRig) -> None:
    event = await rig.event(capacity=4)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event)
    payment_id = (await rig.pay(buyer, booking["booking_id"])).json()["payment_id"]
    body, signature = await rig.signed_webhook(payment_id)

    forged = await rig.deliver(body, signature[:-4] + "0000")
    assert forged.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"
    assert forged.json()["code"] == "invalid_signature"
    assert await rig.pool.fetchval("SELECT count(*) FROM payment_events") == 0
    assert await rig.outbox_types(rig.topics.payments, booking["booking_id"]) == []

    assert (await rig.deliver(body, signature)).json() == {"received": True, "result": "recorded"}
    assert (await rig.deliver(body, signature)).json()["result"] == "duplicate"
    assert await rig.pool.fetchval("SELECT count(*) FROM payment_events") == 1
    assert await rig.outbox_types(rig.topics.payments, booking["booking_id"]) == [
        "payment.succeeded"
    ]
