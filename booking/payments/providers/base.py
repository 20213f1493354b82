"""The payment-provider interface, the values it exchanges, and the shared webhook signature.

A provider creates a payment, refunds one, answers where a payment stands and what money it
carries (`retrieve`, like Stripe's retrieve-PaymentIntent), cancels one that has not settled,
and turns a signed webhook into a `WebhookEvent`. The saga never assumes what happened to money:
a payment nobody heard of is settled by asking the provider.
Both built-in providers sign webhooks the way Stripe does: a header `t=<unix ts>,v1=<hex>`
where each v1 is HMAC-SHA256 over `"<t>.<raw body>"` with the endpoint secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

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
PROVIDER_RETRY_AFTER_S = 5


class InvalidSignatureError(errors.BookingError):
    code = "invalid_signature"


class ProviderUnavailableError(errors.ServiceUnavailableError):
    """The provider did not answer (network, 5xx, 429): try again later.

    `reason` (also `str()`) is for our log; a client is only told the provider is not
    answering: DNS names, addresses and library messages are none of its business."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            "the payment provider is not answering; try again",
            retry_after_s=PROVIDER_RETRY_AFTER_S,
        )
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


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
    amount_minor: int | None  # None: whatever the PaymentIntent took
    currency: str
    # Refunds are idempotent per key: the payment's own refund uses the payment id; money that
    # arrived for a payment but was not its own (a mismatch) is refunded under its own key.
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Charge:
    """Where a payment stands at the provider, and the money the provider says it carries."""

    status: ChargeStatus
    provider_ref: str | None = None  # the PaymentIntent
    amount_minor: int | None = None
    currency: str | None = None  # upper case
    payment_id: str | None = None  # ours, as the provider has it on record


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    event_id: str
    type: str  # the provider's own event type
    outcome: WebhookOutcome
    payment_id: str | None  # ours, when the event names it
    provider_ref: str | None
    amount_minor: int | None = None  # what the event says the payment carries
    currency: str | None = None  # upper case
    payload: Any = None  # the parsed body, as it is stored


class PaymentProvider(Protocol):
    name: str
    supports_test_outcome: bool

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment: ...

    async def refund(self, request: RefundRequest) -> str:
        """Refunds the payment (`amount_minor`, or all it took when None); idempotent per
        `key` (the payment id when None). Returns the refund reference."""
        ...

    async def retrieve(self, payment_id: str, provider_ref: str | None) -> Charge:
        """Where the payment stands now: the PaymentIntent `provider_ref`, or when that is None,
        the one carrying our payment id (ProviderUnavailableError when it cannot tell)."""
        ...

    async def cancel(self, payment_id: str, provider_ref: str | None) -> Charge:
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


def read_event_json(body: bytes, what: str) -> Any:
    """The parsed webhook body; InvalidRequestError (422) for what is not JSON or carries a NUL
    (`\\u0000`: PostgreSQL refuses it in text and jsonb, so it must never get that far)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidRequestError(f"not {what}: {exc}") from None
    pending = [document]
    while pending:  # no recursion: a deeply nested body must not cost a RecursionError
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and "\x00" in value:
            raise errors.InvalidRequestError.field("body", "must not contain NUL characters")
    return document


def minor_units(value: Any) -> int | None:
    """An amount as an event or an API answer carries it: an integer, never a bool or text."""
    return value if type(value) is int else None


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
