"""Money matches (issue 18): a provider success confirms a payment only when it is for the
payment's own PaymentIntent, amount and currency; anything else is recorded, refused, flagged and
its money refunded, and the payment's own success still confirms it.

Stripe is the stand-in of `tests/payments/stripe_standin.py` (the outside world); everything else
is real."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from typing import Any

import pytest

from tests.payments.conftest import SagaRig, wait_for
from tests.payments.money_helpers import (
    PRICE_MINOR,
    _counted,
    _deliver,
    _event_outcomes,
    _first_step,
    _mismatches,
    _mock_refunded,
    _mock_success,
    _mock_webhook,
    _pay,
    _provider_ref,
    _refunded,
    _saga_is,
    _settled,
    paying_with_stripe,
    stripe_workers,
)


async def test_a_stripe_success_for_other_money_is_refunded_and_the_real_one_confirms(
    rig: SagaRig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.app.state.services.payments.hold_grace_s = 60  # the hold outlives the test
    rig.worker_settings = replace(rig.worker_settings, saga_timeout_s=60)  # nobody cancels
    event = await rig.event(capacity=2, price_minor=PRICE_MINOR)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event)
    async with paying_with_stripe(rig) as stripe:
        paid = await _pay(rig, buyer, booking["booking_id"])
        assert paid.status_code == 201, paid.text
        payment_id = paid.json()["payment_id"]
        own = stripe.intent_of(payment_id)
        assert await _provider_ref(rig, payment_id) == own["id"]
        # The probe: the payment's own PaymentIntent, said to have taken 1 USD.
        probe = {**own, "status": "succeeded", "amount": 100, "amount_received": 100}
        probe["currency"] = "usd"
        # Real money, the right sum, but on another PaymentIntent that names this payment.
        other = stripe.add_intent(
            amount=PRICE_MINOR, currency="eur", payment_id=payment_id, status="succeeded"
        )
        before = {r: _counted(r, "webhook") for r in ("payment_intent", "amount", "currency")}
        caplog.set_level(logging.WARNING)
        for intent in (probe, other):
            answer = await _deliver(rig, *stripe.event("payment_intent.succeeded", intent))
            assert answer.status_code == 200, answer.text
            assert answer.json()["result"] == "mismatched"

        # Refused: no message, nothing moved; recorded and flagged.
        assert await rig.outbox_types(rig.topics.payments, booking["booking_id"]) == []
        assert await rig.payment_status(payment_id) == "PENDING"
        assert await rig.booking_status(booking["booking_id"]) == "RESERVED"
        assert await _event_outcomes(rig, payment_id) == ["mismatched", "mismatched"]
        recorded = await _mismatches(rig, payment_id)
        assert [
            (r["provider_ref"], r["amount_minor"], r["currency"], sorted(r["reasons"]))
            for r in recorded
        ] == [
            (own["id"], 100, "USD", ["amount", "currency"]),
            (other["id"], PRICE_MINOR, "EUR", ["payment_intent"]),
        ]
        after = {r: _counted(r, "webhook") for r in before}
        assert {r: after[r] - before[r] for r in before} == {
            "payment_intent": 1,
            "amount": 1,
            "currency": 1,
        }
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(payment_id in w and "amount, currency" in w for w in warnings), warnings
        assert any(payment_id in w and other["id"] in w for w in warnings), warnings

        async with stripe_workers(rig, stripe):
            # The money that arrived on the other PaymentIntent goes back, all of it.
            await wait_for(lambda: _refunded(stripe, other["id"]), within=20)
            assert await rig.booking_status(booking["booking_id"]) == "RESERVED"
            # The buyer completes the payment: its own success still confirms it.
            real = stripe.pay(own["id"])
            confirmed = await _deliver(rig, *stripe.event("payment_intent.succeeded", real))
            assert confirmed.json()["result"] == "recorded"
            await wait_for(lambda: _saga_is(rig, payment_id, "COMPLETED"), within=20)
            # The probe named the payment's own PaymentIntent: its money is the payment's.
            await wait_for(lambda: _settled(rig, recorded[0]["id"]), within=20)
    assert [(r["payment_intent"], r["amount"]) for r in stripe.refunds] == [
        (other["id"], PRICE_MINOR)
    ]
    assert await rig.booking_status(booking["booking_id"]) == "CONFIRMED"
    assert await rig.payment_status(payment_id) == "SUCCEEDED"
    statuses = [r["refund_status"] for r in await _mismatches(rig, payment_id)]
    assert statuses == ["nothing_to_refund", "refunded"]


async def test_a_mock_success_that_is_not_the_payments_own_confirms_nothing(rig: SagaRig) -> None:
    """The mock's webhooks are checked the same way; and a failure reported for another
    PaymentIntent does not fail the payment either."""
    event = await rig.event(capacity=2, price_minor=PRICE_MINOR)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event)
    payment_id = (await rig.pay(buyer, booking["booking_id"])).json()["payment_id"]
    own_ref = await _provider_ref(rig, payment_id)
    assert own_ref is not None
    strays = [
        _mock_success(payment_id, own_ref, 1, "USD"),
        _mock_success(payment_id, own_ref, PRICE_MINOR + 1, "EUR"),
        _mock_success(payment_id, "pay_mock_someone_else", PRICE_MINOR, "EUR"),
        {
            **_mock_success(payment_id, own_ref, PRICE_MINOR, "EUR"),
            "data": {"payment_id": payment_id},
        },
    ]
    for stray in strays:
        answer = await _deliver(rig, *_mock_webhook(rig, stray))
        assert answer.json()["result"] == "mismatched", (stray, answer.text)
    failure = {**_mock_success(payment_id, "pay_mock_someone_else", 0, "EUR")}
    failure["type"] = "payment.failed"
    assert (await _deliver(rig, *_mock_webhook(rig, failure))).json()["result"] == "ignored"
    assert await rig.outbox_types(rig.topics.payments, booking["booking_id"]) == []
    assert await rig.payment_status(payment_id) == "PENDING"
    reasons = [sorted(r["reasons"]) for r in await _mismatches(rig, payment_id)]
    # One row per PaymentIntent the money was said to be on (the own one twice: one row), and
    # one for the event that named none.
    assert reasons == [
        ["amount", "currency"],
        ["payment_intent"],
        ["amount", "currency", "payment_intent"],
    ]

    real = _mock_success(payment_id, own_ref, PRICE_MINOR, "EUR")
    assert (await _deliver(rig, *_mock_webhook(rig, real))).json()["result"] == "recorded"
    assert await rig.outbox_types(rig.topics.payments, booking["booking_id"]) == [
        "payment.succeeded"
    ]


async def test_a_success_the_provider_reports_with_other_money_is_refunded_never_confirmed(
    rig: SagaRig, saga_workers: Any
) -> None:
    """No webhook came; asked, the provider says the payment's charge took 1 USD, not 4,500 EUR:
    not confirmed, that money refunded, the payment failed and the seats released."""
    event = await rig.event(capacity=2, price_minor=PRICE_MINOR)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event)
    payment_id = (await rig.pay(buyer, booking["booking_id"])).json()["payment_id"]
    await rig.pool.execute(
        """UPDATE mock_charges SET status = 'succeeded', amount_minor = 1, currency = 'USD'
           WHERE payment_id = $1""",
        uuid.UUID(payment_id),
    )
    before = _counted("amount", "provider")
    rig.worker_settings = replace(rig.worker_settings, saga_timeout_s=0.6)
    async with saga_workers():
        await wait_for(lambda: _saga_is(rig, payment_id, "COMPLETED", "COMPENSATED"), within=30)
        assert await rig.payment_status(payment_id) == "FAILED"
        await wait_for(lambda: _mock_refunded(rig, payment_id), within=20)
    assert await rig.booking_status(booking["booking_id"]) in ("CANCELLED", "EXPIRED")
    assert await _first_step(rig, payment_id) == ("payment", "mismatched_by_provider")
    (recorded,) = await _mismatches(rig, payment_id)
    assert (recorded["source"], recorded["amount_minor"], recorded["currency"]) == (
        "provider",
        1,
        "USD",
    )
    assert sorted(recorded["reasons"]) == ["amount", "currency"]
    assert recorded["refund_status"] == "refunded"
    assert _counted("amount", "provider") == before + 1
