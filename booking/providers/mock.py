"""The mock provider (default): settles each payment by calling our webhook, signed, after a
short delay, the way a real provider would. `test_outcome` scripts the answer: `succeed`,
`decline`, or `no_answer` (never calls back; the saga's timeout then gives up on it).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping

import aiohttp
import orjson

from booking.errors import InvalidRequestError
from booking.providers.base import (
    CreatedPayment,
    PaymentRequest,
    RefundRequest,
    WebhookEvent,
    signature_header,
    verify_signature,
)

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Mock-Signature"
TEST_OUTCOMES = ("succeed", "decline", "no_answer")
_EVENT_TYPES = {"succeed": "payment.succeeded", "decline": "payment.failed"}
_OUTCOMES = {
    "payment.succeeded": "succeeded",
    "payment.failed": "failed",
    "payment.refunded": "refunded",
}
_DELIVERY_ATTEMPTS = 5


def mock_event(outcome: str, payment_id: str, provider_ref: str, *, now_s: float) -> bytes:
    """The webhook body the mock sends (tests use it to deliver events themselves)."""
    return orjson.dumps(
        {
            "id": f"evt_mock_{uuid.uuid4().hex}",
            "type": _EVENT_TYPES.get(outcome, outcome),
            "created": int(now_s),
            "data": {"payment_id": payment_id, "provider_ref": provider_ref},
        }
    )


class MockProvider:
    name = "mock"
    supports_test_outcome = True

    def __init__(self, *, webhook_url: str, webhook_secret: str, delay_s: float = 0.2) -> None:
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.delay_s = delay_s
        self._session: aiohttp.ClientSession | None = None
        self._deliveries: set[asyncio.Task[None]] = set()

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        outcome = request.test_outcome or "succeed"
        if outcome not in TEST_OUTCOMES:
            raise InvalidRequestError.field("test_outcome", f"one of {', '.join(TEST_OUTCOMES)}")
        provider_ref = f"pay_mock_{request.payment_id.replace('-', '')}"
        if outcome != "no_answer":
            body = mock_event(outcome, request.payment_id, provider_ref, now_s=time.time())
            task = asyncio.create_task(self._deliver(body))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        return CreatedPayment(provider_ref=provider_ref)

    async def refund(self, request: RefundRequest) -> str:
        return f"re_mock_{request.payment_id.replace('-', '')}"

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], *, now_s: float
    ) -> WebhookEvent:
        verify_signature(self.webhook_secret, body, headers.get(SIGNATURE_HEADER), now_s=now_s)
        return parse_event(body)

    async def _deliver(self, body: bytes) -> None:
        await asyncio.sleep(self.delay_s)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        for attempt in range(_DELIVERY_ATTEMPTS):
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: signature_header(self.webhook_secret, body, int(time.time())),
            }
            try:
                async with self._session.post(self.webhook_url, data=body, headers=headers) as r:
                    if r.status < 500:
                        if r.status >= 300:
                            log.warning("mock webhook refused: %s", r.status)
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("mock webhook delivery failed (attempt %s): %s", attempt + 1, exc)
            await asyncio.sleep(0.2 * 2**attempt)
        log.error("mock webhook not delivered; the saga timeout will settle the payment")

    async def aclose(self) -> None:
        for task in list(self._deliveries):
            task.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


def parse_event(body: bytes) -> WebhookEvent:
    try:
        event = orjson.loads(body)
        data = event["data"]
        return WebhookEvent(
            event_id=str(event["id"]),
            type=str(event["type"]),
            outcome=_OUTCOMES.get(str(event["type"]), "ignored"),  # type: ignore[arg-type]
            payment_id=str(data["payment_id"]) if data.get("payment_id") else None,
            provider_ref=str(data["provider_ref"]) if data.get("provider_ref") else None,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidRequestError(f"not a webhook event: {exc}") from None
