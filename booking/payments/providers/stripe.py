"""Stripe over its HTTP API: PaymentIntents and refunds (form-encoded, secret-key auth,
Idempotency-Key per payment), and webhooks verified by `Stripe-Signature`.

The request building is separate from the sending, so it is tested without a network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson

from booking.errors import InvalidRequestError
from booking.payments.providers.base import (
    DEFAULT_TOLERANCE_S,
    Charge,
    ChargeStatus,
    CreatedPayment,
    PaymentRequest,
    ProviderRefusedError,
    ProviderUnavailableError,
    RefundRequest,
    WebhookEvent,
    minor_units,
    read_event_json,
    verify_signature,
)

API_BASE = "https://api.stripe.com"
SIGNATURE_HEADER = "Stripe-Signature"
_OUTCOMES = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.canceled": "failed",
    "charge.refunded": "refunded",
}


@dataclass(frozen=True, slots=True)
class StripeRequest:
    method: str
    url: str
    headers: dict[str, str]
    form: list[tuple[str, str]] = field(default_factory=list)

    def body(self) -> bytes:
        return urlencode(self.form).encode()


def _headers(secret_key: str, idempotency_key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {secret_key}",
        "Idempotency-Key": idempotency_key,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def payment_intent_request(
    request: PaymentRequest, *, secret_key: str, api_base: str = API_BASE
) -> StripeRequest:
    return StripeRequest(
        "POST",
        f"{api_base}/v1/payment_intents",
        _headers(secret_key, f"payment-{request.payment_id}"),
        [
            ("amount", str(request.amount_minor)),
            ("currency", request.currency.lower()),
            ("automatic_payment_methods[enabled]", "true"),
            ("metadata[payment_id]", request.payment_id),
            ("metadata[booking_id]", request.booking_id),
        ],
    )


def refund_request(
    request: RefundRequest, *, secret_key: str, api_base: str = API_BASE
) -> StripeRequest:
    if not request.provider_ref:
        raise ProviderRefusedError("no PaymentIntent to refund")
    return StripeRequest(
        "POST",
        f"{api_base}/v1/refunds",
        _headers(secret_key, f"refund-{request.key or request.payment_id}"),
        [
            ("payment_intent", request.provider_ref),
            *([("amount", str(request.amount_minor))] if request.amount_minor is not None else []),
            ("metadata[payment_id]", request.payment_id),
        ],
    )


# PaymentIntent statuses; the `requires_*` ones have taken no money and can be cancelled.
_CHARGE_STATUS: dict[str, ChargeStatus] = {
    "succeeded": "succeeded",
    "canceled": "canceled",
    "processing": "processing",
    "requires_capture": "processing",
    "requires_payment_method": "pending",
    "requires_confirmation": "pending",
    "requires_action": "pending",
}


def retrieve_request(
    provider_ref: str, *, secret_key: str, api_base: str = API_BASE
) -> StripeRequest:
    return StripeRequest("GET", f"{api_base}/v1/payment_intents/{provider_ref}", _auth(secret_key))


def search_request(payment_id: str, *, secret_key: str, api_base: str = API_BASE) -> StripeRequest:
    """The PaymentIntent carrying our payment id (when we never stored its id)."""
    query = urlencode({"query": f"metadata['payment_id']:'{payment_id}'"})
    return StripeRequest("GET", f"{api_base}/v1/payment_intents/search?{query}", _auth(secret_key))


def cancel_request(
    provider_ref: str, payment_id: str, *, secret_key: str, api_base: str = API_BASE
) -> StripeRequest:
    return StripeRequest(
        "POST",
        f"{api_base}/v1/payment_intents/{provider_ref}/cancel",
        _headers(secret_key, f"cancel-{payment_id}"),
        [("cancellation_reason", "abandoned")],
    )


def _auth(secret_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret_key}"}


def charge_status(intent: Mapping[str, Any]) -> ChargeStatus:
    return _CHARGE_STATUS.get(str(intent.get("status")), "processing")


def intent_amount(intent: Mapping[str, Any]) -> int | None:
    """The PaymentIntent's amount, when what it received (if it says) is that same amount."""
    amount = minor_units(intent.get("amount"))
    received = intent.get("amount_received", amount)
    return amount if minor_units(received) == amount else None


def intent_currency(intent: Mapping[str, Any]) -> str | None:
    currency = intent.get("currency")
    return currency.upper() if isinstance(currency, str) else None


def _our_payment_id(intent: Mapping[str, Any]) -> str | None:
    metadata = intent.get("metadata") or {}
    return str(metadata["payment_id"]) if metadata.get("payment_id") else None


def charge_of(intent: Mapping[str, Any]) -> Charge:
    return Charge(
        charge_status(intent),
        provider_ref=str(intent["id"]) if intent.get("id") else None,
        amount_minor=intent_amount(intent),
        currency=intent_currency(intent),
        payment_id=_our_payment_id(intent),
    )


def parse_event(body: bytes) -> WebhookEvent:
    event = read_event_json(body, "a Stripe event")
    try:
        type_ = str(event["type"])
        obj: dict[str, Any] = event["data"]["object"]
        ref = obj.get("payment_intent") if type_.startswith("charge.") else obj.get("id")
        intent = type_.startswith("payment_intent.")
        return WebhookEvent(
            event_id=str(event["id"]),
            type=type_,
            outcome=_OUTCOMES.get(type_, "ignored"),  # type: ignore[arg-type]
            payment_id=_our_payment_id(obj),
            provider_ref=str(ref) if ref else None,
            amount_minor=intent_amount(obj) if intent else None,
            currency=intent_currency(obj) if intent else None,
            payload=event,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidRequestError(f"not a Stripe event: {exc}") from None


class StripeProvider:
    name = "stripe"
    supports_test_outcome = False

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        api_base: str = API_BASE,
        tolerance_s: int = DEFAULT_TOLERANCE_S,
    ) -> None:
        if not secret_key or not webhook_secret:
            raise ValueError("stripe needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET")
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.api_base = api_base
        self.tolerance_s = tolerance_s
        self._session: aiohttp.ClientSession | None = None

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        answer = await self._send(
            payment_intent_request(request, secret_key=self.secret_key, api_base=self.api_base)
        )
        return CreatedPayment(provider_ref=str(answer["id"]))

    async def refund(self, request: RefundRequest) -> str:
        answer = await self._send(
            refund_request(request, secret_key=self.secret_key, api_base=self.api_base)
        )
        return str(answer["id"])

    async def retrieve(self, payment_id: str, provider_ref: str | None) -> Charge:
        if not provider_ref:
            found = await self._send(
                search_request(payment_id, secret_key=self.secret_key, api_base=self.api_base)
            )
            intents = found.get("data") or []
            return charge_of(intents[0]) if intents else Charge("not_found")
        intent = await self._send(
            retrieve_request(provider_ref, secret_key=self.secret_key, api_base=self.api_base)
        )
        return charge_of(intent)

    async def cancel(self, payment_id: str, provider_ref: str | None) -> Charge:
        if not provider_ref:
            found = await self.retrieve(payment_id, None)
            if found.provider_ref is None:
                return found
            provider_ref = found.provider_ref
        request = cancel_request(
            provider_ref, payment_id, secret_key=self.secret_key, api_base=self.api_base
        )
        try:
            return charge_of(await self._send(request))
        except ProviderRefusedError:
            # Stripe refuses to cancel an intent that succeeded or is processing: say where it is.
            return await self.retrieve(payment_id, provider_ref)

    def start(self) -> None:
        """Stripe sends its own webhooks."""

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], *, now_s: float
    ) -> WebhookEvent:
        verify_signature(
            self.webhook_secret,
            body,
            headers.get(SIGNATURE_HEADER),
            now_s=now_s,
            tolerance_s=self.tolerance_s,
        )
        return parse_event(body)

    async def _send(self, request: StripeRequest) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        try:
            data = request.body() if request.method != "GET" else None
            async with self._session.request(
                request.method, request.url, data=data, headers=request.headers
            ) as response:
                text = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderUnavailableError(f"stripe unreachable: {exc}") from exc
        # 409: a request with the same Idempotency-Key is still running at Stripe (a buyer's
        # retry overtaking its first try); the answer will come, it is no refusal.
        if status in (409, 429) or status >= 500:
            raise ProviderUnavailableError(f"stripe answered {status}")
        try:
            answer: dict[str, Any] = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ProviderUnavailableError(f"stripe answered {status} without JSON") from None
        if status >= 400:
            message = (answer.get("error") or {}).get("message") or f"status {status}"
            raise ProviderRefusedError(f"stripe refused: {message}")
        return answer

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
