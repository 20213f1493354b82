"""Money matches (issue 18): a provider success confirms a payment only when it is for the
payment's own PaymentIntent, amount and currency; anything else is recorded, refused, flagged and
its money refunded, and the payment's own success still confirms it. A webhook PostgreSQL could
not store is a 4xx. A provider outage while paying is a generic 503 that leaves the hold alive:
a retry opens the payment, and only the provider's answer or the hold's deadline fails it.

Stripe is the stand-in of `tests/payments/stripe_standin.py` (the outside world); everything else
is real."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from booking.errors import InvalidRequestError
from booking.inventory.scripts import Scripts
from booking.payments.providers.base import signature_header
from booking.payments.providers.mock import SIGNATURE_HEADER as MOCK_SIGNATURE
from stack.processes import free_port
from tests.payments.conftest import SagaRig, running, wait_for
from tests.payments.stripe_standin import WEBHOOK_SECRET, StripeStandIn
from workers.outbox_relay import OutboxRelay
from workers.saga_orchestrator import SagaOrchestrator
from workers.saga_step import SagaStep

PRICE_MINOR = 4500  # EUR, the rig's currency


@contextlib.asynccontextmanager
async def paying_with_stripe(rig: SagaRig, api_base: str | None = None) -> AsyncIterator[Any]:
    """The booking service pays through Stripe (the stand-in, or `api_base`) for the block."""
    stand_in = StripeStandIn()
    async with stand_in.serving():
        mock = rig.app.state.services.payments.provider
        stripe = stand_in.provider(api_base)
        rig.app.state.services.payments.provider = stripe
        try:
            yield stand_in
        finally:
            rig.app.state.services.payments.provider = mock
            await stripe.aclose()


@contextlib.asynccontextmanager
async def stripe_workers(rig: SagaRig, stand_in: StripeStandIn) -> AsyncIterator[None]:
    """Relay, orchestrator and step, the latter two talking to the Stripe stand-in."""
    options: dict[str, Any] = {"topics": rig.topics, "poll_timeout_ms": 100}
    asking, refunding = stand_in.provider(), stand_in.provider()
    try:
        async with running(
            OutboxRelay.provisioned(rig.worker_settings),
            SagaOrchestrator.provisioned(
                rig.worker_settings, group_id=f"orch-{rig.unique}", provider=asking, **options
            ),
            SagaStep.provisioned(
                rig.worker_settings, group_id=f"step-{rig.unique}", provider=refunding, **options
            ),
        ):
            yield
    finally:
        await asking.aclose()
        await refunding.aclose()


async def _pay(
    rig: SagaRig, buyer: dict[str, str], booking_id: str, key: str | None = None
) -> httpx.Response:
    return await rig.client.post(
        "/api/v1/payments",
        headers={**buyer, "Idempotency-Key": key or uuid.uuid4().hex},
        json={"booking_id": booking_id},
    )


async def _deliver(rig: SagaRig, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await rig.client.post("/api/v1/payments/webhook", content=body, headers=headers)


def _mock_webhook(rig: SagaRig, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(event)
    signature = signature_header(rig.settings.payments.webhook_secret, body, int(time.time()))
    return body, {MOCK_SIGNATURE: signature, "Content-Type": "application/json"}


def _mock_success(payment_id: str, provider_ref: str, amount_minor: int, currency: str) -> Any:
    return {
        "id": f"evt_mock_{uuid.uuid4().hex}",
        "type": "payment.succeeded",
        "created": int(time.time()),
        "data": {
            "payment_id": payment_id,
            "provider_ref": provider_ref,
            "amount_minor": amount_minor,
            "currency": currency,
        },
    }


def _counted(reason: str, source: str) -> float:
    value = REGISTRY.get_sample_value(
        "booking_rush_payment_mismatch_total", {"reason": reason, "source": source}
    )
    return value or 0.0


async def _provider_ref(rig: SagaRig, payment_id: str) -> str | None:
    value = await rig.pool.fetchval(
        "SELECT provider_ref FROM payments WHERE payment_id = $1", uuid.UUID(payment_id)
    )
    return None if value is None else str(value)


async def _event_outcomes(rig: SagaRig, payment_id: str) -> list[str]:
    rows = await rig.pool.fetch(
        "SELECT outcome FROM payment_events WHERE payment_id = $1 ORDER BY received_at",
        uuid.UUID(payment_id),
    )
    return [row["outcome"] for row in rows]


async def _mismatches(rig: SagaRig, payment_id: str) -> list[Any]:
    return list(
        await rig.pool.fetch(
            "SELECT * FROM payment_mismatches WHERE payment_id = $1 ORDER BY id",
            uuid.UUID(payment_id),
        )
    )


async def _first_step(rig: SagaRig, saga_id: str) -> tuple[str, str]:
    row = await rig.pool.fetchrow(
        "SELECT step, outcome FROM saga_steps WHERE saga_id = $1 ORDER BY id LIMIT 1",
        uuid.UUID(saga_id),
    )
    return (row["step"], row["outcome"])


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


async def _refunded(stripe: StripeStandIn, intent_id: str) -> bool:
    return any(refund["payment_intent"] == intent_id for refund in stripe.refunds)


async def _saga_is(rig: SagaRig, saga_id: str, *states: str) -> bool:
    return await rig.saga_state(saga_id) in states


async def _settled(rig: SagaRig, mismatch_id: int) -> bool:
    status = await rig.pool.fetchval(
        "SELECT refund_status FROM payment_mismatches WHERE id = $1", mismatch_id
    )
    return status != "pending"


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


async def _mock_refunded(rig: SagaRig, payment_id: str) -> bool:
    refunded_at = await rig.pool.fetchval(
        "SELECT refunded_at FROM mock_charges WHERE payment_id = $1", uuid.UUID(payment_id)
    )
    return refunded_at is not None


async def test_a_signed_webhook_carrying_a_nul_is_a_422_and_changes_nothing(rig: SagaRig) -> None:
    event = await rig.event(capacity=2)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event)
    payment_id = (await rig.pay(buyer, booking["booking_id"])).json()["payment_id"]
    own_ref = await _provider_ref(rig, payment_id)
    assert own_ref is not None
    success = _mock_success(payment_id, own_ref, 2500, "EUR")
    for broken in (
        {**success, "id": "evt_\x00nul"},
        {**success, "data": {**success["data"], "note": "a\x00b"}},
        {**success, "data": {**success["data"], "a\x00key": 1}},
    ):
        body, headers = _mock_webhook(rig, broken)
        assert b"\\u0000" in body
        answer = await _deliver(rig, body, headers)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "invalid_request"
    assert await rig.pool.fetchval("SELECT count(*) FROM payment_events") == 0
    assert await rig.outbox_types(rig.topics.payments, booking["booking_id"]) == []
    assert await rig.payment_status(payment_id) == "PENDING"

    stripe = StripeStandIn().provider("http://127.0.0.1:9")
    stripe_body = orjson.dumps(
        {
            "id": "evt_1",
            "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_1", "metadata": {"payment_id": "p\x00"}}},
        }
    )
    signed = {"Stripe-Signature": signature_header(WEBHOOK_SECRET, stripe_body, int(time.time()))}
    with pytest.raises(InvalidRequestError):
        stripe.parse_webhook(stripe_body, signed, now_s=time.time())


async def test_a_provider_outage_while_paying_is_a_generic_503_and_a_retry_opens_the_payment(
    rig: SagaRig,
) -> None:
    event = await rig.event(capacity=2, price_minor=PRICE_MINOR)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event)
    closed = free_port()
    key = uuid.uuid4().hex
    async with paying_with_stripe(rig, api_base="http://api.stripe.invalid") as stripe:
        stripe_provider = rig.app.state.services.payments.provider
        for api_base in ("http://api.stripe.invalid", f"http://127.0.0.1:{closed}"):
            stripe_provider.api_base = api_base  # DNS fails, then the connection is refused
            answer = await _pay(rig, buyer, booking["booking_id"], key)
            assert answer.status_code == 503, answer.text
            problem = answer.json()
            assert problem["code"] == "service_unavailable"
            assert int(answer.headers["retry-after"]) > 0
            for leak in ("stripe.invalid", "127.0.0.1", str(closed), "Cannot connect", "Errno"):
                assert leak not in problem["detail"], problem
        payment_id = await rig.pool.fetchval("SELECT payment_id FROM payments")
        assert await rig.payment_status(str(payment_id)) == "PENDING"
        assert stripe.creates == 0

        stripe_provider.api_base = stripe.base_url  # Stripe answers again
        retried = await _pay(rig, buyer, booking["booking_id"], key)
        assert retried.status_code == 201, retried.text
        assert retried.json()["payment_id"] == str(payment_id)
        assert retried.json()["status"] == "PENDING"
        assert stripe.creates == 1
        opened = stripe.intent_of(str(payment_id))
        assert (opened["amount"], opened["currency"]) == (PRICE_MINOR, "eur")
        assert await _provider_ref(rig, str(payment_id)) == opened["id"]
        again = await _pay(rig, buyer, booking["booking_id"], key)
        assert (again.status_code, stripe.creates) == (201, 1)  # opened: a plain replay now


async def test_a_payment_the_provider_never_accepted_keeps_its_hold_until_the_deadline(
    rig: SagaRig, redis_url: str
) -> None:
    """Stripe was unreachable when the buyer paid, then answers again; nobody retries. The
    orchestrator keeps asking, and fails the payment once the hold is over, not before."""
    grace_s = 6
    rig.app.state.services.payments.hold_grace_s = grace_s
    rig.worker_settings = replace(rig.worker_settings, saga_timeout_s=0.6)
    event = await rig.event(capacity=2, price_minor=PRICE_MINOR)
    _, buyer = await rig.user()
    booking = await rig.reserve(buyer, event)
    async with paying_with_stripe(rig, api_base=f"http://127.0.0.1:{free_port()}") as stripe:
        answer = await _pay(rig, buyer, booking["booking_id"])
        assert answer.status_code == 503, answer.text
        payment_id = str(await rig.pool.fetchval("SELECT payment_id FROM payments"))
        deadline = await rig.pool.fetchval(
            "SELECT expires_at FROM bookings WHERE booking_id = $1",
            uuid.UUID(booking["booking_id"]),
        )
        client = aioredis.Redis.from_url(redis_url)
        try:
            scripts = Scripts(client)
            await scripts.load()
            async with stripe_workers(rig, stripe):
                # Many SAGA_TIMEOUT_S later, well before the deadline: still paying.
                started = time.monotonic()
                while time.monotonic() - started < grace_s / 2:
                    assert await rig.payment_status(payment_id) == "PENDING"
                    await asyncio.sleep(0.2)
                hold = await scripts.get_hold(event["event_id"], booking["booking_id"])
                assert hold is not None and hold.status == "RESERVED"
                assert await rig.booking_status(booking["booking_id"]) == "RESERVED"
                await wait_for(lambda: _saga_is(rig, payment_id, "COMPENSATED"), within=30)
        finally:
            await client.aclose()
    assert await rig.payment_status(payment_id) == "FAILED"
    failed_at = await rig.pool.fetchval(
        "SELECT updated_at FROM payments WHERE payment_id = $1", uuid.UUID(payment_id)
    )
    assert failed_at >= deadline
    assert await _first_step(rig, payment_id) == ("payment", "unknown_to_provider")
    assert await rig.booking_status(booking["booking_id"]) in ("CANCELLED", "EXPIRED")
