"""Provider adapters without a network: webhook signatures, Stripe request building and events."""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
import pytest

from booking.errors import InvalidRequestError
from booking.providers import PaymentConfig, create_provider, derived_webhook_secret
from booking.providers.base import (
    InvalidSignatureError,
    PaymentRequest,
    ProviderRefusedError,
    RefundRequest,
    sign_payload,
    signature_header,
    verify_signature,
)
from booking.providers.mock import MockProvider
from booking.providers.stripe import (
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
