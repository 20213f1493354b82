"""Provider adapters without a network: webhook signatures, Stripe request building and events."""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
import pytest

from booking.errors import InvalidRequestError
from booking.payments.providers import PaymentConfig, create_provider, derived_webhook_secret
from booking.payments.providers.base import (
    InvalidSignatureError,
    PaymentRequest,
    ProviderRefusedError,
    RefundRequest,
    sign_payload,
    signature_header,
    verify_signature,
)
from booking.payments.providers.mock import MockProvider
from booking.payments.providers.stripe import (
    StripeProvider,
    payment_intent_request,
    refund_request,
)

SECRET = "whsec_test_secret"
BODY = b'{"id":"evt_1","type":"payment_intent.succeeded"}'
NOW = 1_700_000_000


def test_a_correct_signature_passes_and_any_change_fails() -> None:
    verify_signature(SECRET, BODY, signature_header(SECRET, BODY, NOW), now_s=NOW + 10)
    bad = [
        None,
        "",
        "t=abc,v1=00",
        f"v1={sign_payload(SECRET, BODY, NOW)}",
        f"t={NOW}",
        signature_header("other-secret", BODY, NOW),
        signature_header(SECRET, BODY + b" ", NOW),
        signature_header(SECRET, BODY, NOW - 301),  # outside the 300 s tolerance
    ]
    for header in bad:
        with pytest.raises(InvalidSignatureError):
            verify_signature(SECRET, BODY, header, now_s=NOW)
    with pytest.raises(InvalidSignatureError):  # signed with the right secret, but replayed late
        verify_signature(SECRET, BODY, signature_header(SECRET, BODY, NOW), now_s=NOW + 301)


def test_any_of_several_v1_values_may_match() -> None:
    good = sign_payload(SECRET, BODY, NOW)
    header = f"t={NOW},v1={'0' * 64},v1={good},v0=ignored"
    verify_signature(SECRET, BODY, header, now_s=NOW)


def test_payment_intent_request_is_form_encoded_with_idempotency_key() -> None:
    request = payment_intent_request(
        PaymentRequest(payment_id="p-1", booking_id="b-1", amount_minor=5000, currency="EUR"),
        secret_key="sk_test_123",
    )
    assert (request.method, request.url) == ("POST", "https://api.stripe.com/v1/payment_intents")
    assert request.headers["Authorization"] == "Bearer sk_test_123"
    assert request.headers["Idempotency-Key"] == "payment-p-1"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = dict(parse_qsl(request.body().decode()))
    assert form == {
        "amount": "5000",
        "currency": "eur",
        "automatic_payment_methods[enabled]": "true",
        "metadata[payment_id]": "p-1",
        "metadata[booking_id]": "b-1",
    }


def test_refund_request_names_the_payment_intent() -> None:
    refund = RefundRequest(payment_id="p-1", provider_ref="pi_9", amount_minor=5000, currency="EUR")
    request = refund_request(refund, secret_key="sk_test_123")
    assert request.url == "https://api.stripe.com/v1/refunds"
    assert request.headers["Idempotency-Key"] == "refund-p-1"
    assert dict(parse_qsl(request.body().decode()))["payment_intent"] == "pi_9"
    with pytest.raises(ProviderRefusedError):
        refund_request(
            RefundRequest(payment_id="p-1", provider_ref=None, amount_minor=1, currency="EUR"),
            secret_key="sk",
        )


def test_stripe_webhook_events_are_verified_and_read() -> None:
    provider = StripeProvider(secret_key="sk_test", webhook_secret=SECRET)
    body = orjson.dumps(
        {
            "id": "evt_42",
            "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_7", "metadata": {"payment_id": "p-7"}}},
        }
    )
    headers = {"Stripe-Signature": signature_header(SECRET, body, NOW)}
    event = provider.parse_webhook(body, headers, now_s=NOW)
    assert (event.event_id, event.outcome, event.payment_id, event.provider_ref) == (
        "evt_42",
        "succeeded",
        "p-7",
        "pi_7",
    )
    failed = orjson.dumps(
        {
            "id": "evt_43",
            "type": "payment_intent.payment_failed",
            "data": {"object": {"id": "pi_7", "metadata": {}}},
        }
    )
    headers = {"Stripe-Signature": signature_header(SECRET, failed, NOW)}
    event = provider.parse_webhook(failed, headers, now_s=NOW)
    assert (event.outcome, event.payment_id, event.provider_ref) == ("failed", None, "pi_7")
    with pytest.raises(InvalidSignatureError):
        provider.parse_webhook(body, {"Stripe-Signature": "t=1,v1=ff"}, now_s=NOW)
    garbage = b"[1, 2]"
    with pytest.raises(InvalidRequestError):
        provider.parse_webhook(
            garbage, {"Stripe-Signature": signature_header(SECRET, garbage, NOW)}, now_s=NOW
        )


def test_provider_choice_and_defaults() -> None:
    config = PaymentConfig.from_env({"INTERNAL_SECRET": "s" * 40, "BOOKING_PORT": "8123"})
    assert config.provider == "mock"
    assert config.webhook_url == "http://127.0.0.1:8123/api/v1/payments/webhook"
    assert config.webhook_secret == derived_webhook_secret("s" * 40)
    assert isinstance(create_provider(config), MockProvider)
    with pytest.raises(ValueError):
        PaymentConfig.from_env({"PAYMENT_PROVIDER": "paypal"})
    stripe = PaymentConfig.from_env(
        {"PAYMENT_PROVIDER": "stripe", "STRIPE_SECRET_KEY": "sk", "STRIPE_WEBHOOK_SECRET": "wh"}
    )
    assert isinstance(create_provider(stripe), StripeProvider)
    with pytest.raises(ValueError):
        create_provider(PaymentConfig(provider="stripe"))


async def test_stripe_status_and_cancel_against_a_stand_in_api() -> None:
    """Retrieve, search and cancel over HTTP against a stand-in for Stripe's API (the outside
    world): where each PaymentIntent status lands, and a cancel refused because the money was
    already taken answers `succeeded`, never `canceled`."""
    from aiohttp import web

    from stack.processes import free_port

    intents = {
        "pi_open": {"id": "pi_open", "status": "requires_payment_method"},
        "pi_paid": {"id": "pi_paid", "status": "succeeded"},
        "pi_busy": {"id": "pi_busy", "status": "processing"},
    }
    by_payment = {"p-open": "pi_open"}
    seen: list[tuple[str, str, str | None]] = []

    async def retrieve(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer sk_test"
        intent = intents.get(request.match_info["id"])
        if intent is None:
            return web.json_response({"error": {"message": "no such intent"}}, status=404)
        return web.json_response(intent)

    async def search(request: web.Request) -> web.Response:
        query = request.query["query"]
        found = [intents[ref] for pid, ref in by_payment.items() if f"'{pid}'" in query]
        return web.json_response({"data": found})

    async def cancel(request: web.Request) -> web.Response:
        seen.append(("cancel", request.match_info["id"], request.headers.get("Idempotency-Key")))
        intent = intents[request.match_info["id"]]
        if intent["status"] in ("succeeded", "processing"):
            return web.json_response({"error": {"message": "unexpected state"}}, status=400)
        intent["status"] = "canceled"
        return web.json_response(intent)

    app = web.Application()
    app.router.add_get("/v1/payment_intents/search", search)
    app.router.add_get("/v1/payment_intents/{id}", retrieve)
    app.router.add_post("/v1/payment_intents/{id}/cancel", cancel)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    provider = StripeProvider(
        secret_key="sk_test", webhook_secret=SECRET, api_base=f"http://127.0.0.1:{port}"
    )
    try:
        assert (await provider.retrieve("p-1", "pi_paid")).status == "succeeded"
        assert (await provider.retrieve("p-2", "pi_busy")).status == "processing"
        assert (
            await provider.retrieve("p-open", None)
        ).status == "pending"  # found by our payment id
        assert (await provider.retrieve("p-never", None)).status == "not_found"
        assert (await provider.cancel("p-1", "pi_paid")).status == "succeeded"
        assert (await provider.cancel("p-2", "pi_busy")).status == "processing"
        assert (await provider.cancel("p-open", None)).status == "canceled"
        assert (await provider.retrieve("p-open", "pi_open")).status == "canceled"
        assert (await provider.cancel("p-never", None)).status == "not_found"
    finally:
        await provider.aclose()
        await runner.cleanup()
    assert ("cancel", "pi_open", "cancel-p-open") in seen
