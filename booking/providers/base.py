"""The payment-provider interface, the values it exchanges, and the shared webhook signature.

A provider creates a payment, refunds one, answers where a payment stands (`retrieve`, like
Stripe's retrieve-PaymentIntent), cancels one that has not settled, and turns a signed webhook
into a `WebhookEvent`. The saga never assumes what happened to money: a payment nobody heard of
is settled by asking the provider.
Both built-in providers sign webhooks the way Stripe does: a header `t=<unix ts>,v1=<hex>`
where each v1 is HMAC-SHA256 over `"<t>.<raw body>"` with the endpoint secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from booking import errors

WebhookOutcome = Literal["succeeded", "failed", "refunded", "ignored"]
# Where a payment stands at the provider:
#   succeeded  the money was taken           failed     declined, nothing taken (final)
#   canceled   we cancelled it (final)       pending    not settled, can still be cancelled
#   processing settling now, cannot be cancelled: ask again later
#   not_found  the provider never saw it (we crashed before asking it to charge)
ChargeStatus = Literal["succeeded", "failed", "canceled", "pending", "processing", "not_found"]
SETTLED_WITHOUT_MONEY = ("failed", "canceled")
DEFAULT_TOLERANCE_S = 300


class InvalidSignatureError(errors.BookingError):
    code = "invalid_signature"


class ProviderUnavailableError(errors.ServiceUnavailableError):
    """The provider did not answer (network, 5xx, 429): try again later."""


class ProviderRefusedError(errors.BookingError):
    """The provider answered no (4xx): retrying the same request cannot help."""

    code = "invalid_state"


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    payment_id: str
    booking_id: str
    amount_minor: int
    currency: str
    test_outcome: str | None = None  # the mock provider's scripted answer


@dataclass(frozen=True, slots=True)
class CreatedPayment:
    provider_ref: str


@dataclass(frozen=True, slots=True)
class RefundRequest:
    payment_id: str
    provider_ref: str | None
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    event_id: str
    type: str  # the provider's own event type
    outcome: WebhookOutcome
    payment_id: str | None  # ours, when the event names it
    provider_ref: str | None


class PaymentProvider(Protocol):
    name: str
    supports_test_outcome: bool

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment: ...

    async def refund(self, request: RefundRequest) -> str:
        """Refunds the whole payment; idempotent per payment. Returns the refund reference."""
        ...

    async def retrieve(self, payment_id: str, provider_ref: str | None) -> ChargeStatus:
        """Where the payment stands now (ProviderUnavailableError when it cannot tell)."""
        ...

    async def cancel(self, payment_id: str, provider_ref: str | None) -> ChargeStatus:
        """Cancels a payment that has not settled; returns where it stands afterwards (a
        payment that succeeded meanwhile answers `succeeded`, never `canceled`)."""
        ...

    def start(self) -> None:
        """Background work of the serving process (the mock's webhook sender); may be a no-op."""
        ...

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], *, now_s: float
    ) -> WebhookEvent:
        """Verifies the signature (InvalidSignatureError) and reads the event."""
        ...

    async def aclose(self) -> None: ...


def sign_payload(secret: str, payload: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return digest.hexdigest()


def signature_header(secret: str, payload: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={sign_payload(secret, payload, timestamp)}"


def verify_signature(
    secret: str,
    payload: bytes,
    header: str | None,
    *,
    now_s: float,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """Raises InvalidSignatureError unless one v1 value matches and t is within tolerance.

    Several v1 values are allowed (the provider signs with old and new secret while rolling)."""
    if not header or not secret:
        raise InvalidSignatureError("missing signature")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise InvalidSignatureError("malformed signature timestamp") from None
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignatureError("malformed signature header")
    if abs(now_s - timestamp) > tolerance_s:
        raise InvalidSignatureError("signature timestamp outside the tolerance window")
    expected = sign_payload(secret, payload, timestamp)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise InvalidSignatureError("signature does not match")
