"""Payment intake under faults (issue 18): a webhook PostgreSQL could not store is a 4xx and
changes nothing; a provider outage while paying is a generic 503 that leaves the hold alive: a
retry opens the payment, and only the provider's answer or the hold's deadline fails it."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

import orjson
import pytest
import redis.asyncio as aioredis

from booking.errors import InvalidRequestError
from booking.inventory.scripts import Scripts
from booking.payments.providers.base import signature_header
from stack.processes import free_port
from tests.payments.conftest import SagaRig, wait_for
from tests.payments.money_helpers import (
    PRICE_MINOR,
    _deliver,
    _first_step,
    _mock_success,
    _mock_webhook,
    _pay,
    _provider_ref,
    _saga_is,
    paying_with_stripe,
    stripe_workers,
)
from tests.payments.stripe_standin import WEBHOOK_SECRET, StripeStandIn


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
        scripts = Scripts(client)
        try:
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
            await scripts.aclose()
            await client.aclose()
    assert await rig.payment_status(payment_id) == "FAILED"
    failed_at = await rig.pool.fetchval(
        "SELECT updated_at FROM payments WHERE payment_id = $1", uuid.UUID(payment_id)
    )
    assert failed_at >= deadline
    assert await _first_step(rig, payment_id) == ("payment", "unknown_to_provider")
    assert await rig.booking_status(booking["booking_id"]) in ("CANCELLED", "EXPIRED")
