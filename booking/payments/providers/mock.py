"""The mock provider (default): behaves like a real provider, with its books in PostgreSQL
(`mock_charges`, `mock_webhooks`; migration 0006) so that nothing it owes dies with a process.

- Creating a payment records the charge and, for an answer, the webhook it owes us, in one
  transaction. `test_outcome` scripts the answer: `succeed` (money taken at once), `decline`,
  or `no_answer` (the charge stays pending until someone cancels it).
- Webhooks are sent by a background sender in every serving process (`start()`): due ones are
  leased (`FOR UPDATE SKIP LOCKED`), POSTed signed, and retried with exponential backoff until
  one answers 2xx, the way Stripe retries. A process that dies mid-send loses nothing: the
  lease runs out and another sender (or the restarted one) delivers it.
- `retrieve` answers from the books (Stripe's retrieve-PaymentIntent), with the charge's amount
  and currency; `cancel` cancels a pending charge, and can never cancel money already taken;
  `refund` is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping

import aiohttp
import asyncpg
import orjson

from booking.errors import InvalidRequestError
from booking.payments.providers.base import (
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
    signature_header,
    verify_signature,
)

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Mock-Signature"
TEST_OUTCOMES = ("succeed", "decline", "no_answer")
_EVENT_TYPES = {"succeed": "payment.succeeded", "decline": "payment.failed"}
_CHARGE_STATUS = {"succeed": "succeeded", "decline": "failed", "no_answer": "processing"}
_OUTCOMES = {
    "payment.succeeded": "succeeded",
    "payment.failed": "failed",
    "payment.refunded": "refunded",
}
# The books say `processing` for a charge that has no answer yet; to us that is `pending`
# (it can still be cancelled).
_STATUS_OF_BOOKS: dict[str, ChargeStatus] = {
    "processing": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}
SEND_LEASE_S = 15.0  # a sender that died mid-send gives its webhooks back after this long
MAX_BACKOFF_S = 30.0
SEND_BATCH = 100


def mock_event(
    outcome: str,
    payment_id: str,
    provider_ref: str,
    *,
    amount_minor: int,
    currency: str,
    now_s: float,
) -> bytes:
    """The webhook body the mock sends (tests use it to deliver events themselves)."""
    return orjson.dumps(
        {
            "id": f"evt_mock_{uuid.uuid4().hex}",
            "type": _EVENT_TYPES.get(outcome, outcome),
            "created": int(now_s),
            "data": {
                "payment_id": payment_id,
                "provider_ref": provider_ref,
                "amount_minor": amount_minor,
                "currency": currency,
            },
        }
    )


def provider_ref_of(payment_id: str) -> str:
    return f"pay_mock_{payment_id.replace('-', '')}"


def retry_delay_s(attempts: int) -> float:
    """Backoff after `attempts` failed deliveries: 0.5 s, 1 s, 2 s, ... capped at 30 s."""
    return float(min(0.5 * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S))


class MockProvider:
    name = "mock"
    supports_test_outcome = True

    def __init__(
        self,
        *,
        webhook_url: str,
        webhook_secret: str,
        delay_s: float = 0.2,
        pool: asyncpg.Pool | None = None,
        poll_s: float = 0.1,
    ) -> None:
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.delay_s = delay_s
        self.pool = pool
        self.poll_s = poll_s
        self._session: aiohttp.ClientSession | None = None
        self._sender: asyncio.Task[None] | None = None

    def _books(self) -> asyncpg.Pool:
        if self.pool is None:
            raise RuntimeError("the mock provider keeps its books in PostgreSQL: give it a pool")
        return self.pool

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        outcome = request.test_outcome or "succeed"
        if outcome not in TEST_OUTCOMES:
            raise InvalidRequestError.field("test_outcome", f"one of {', '.join(TEST_OUTCOMES)}")
        provider_ref = provider_ref_of(request.payment_id)
        try:
            async with self._books().acquire() as conn, conn.transaction():
                fresh = await conn.fetchval(
                    """INSERT INTO mock_charges (payment_id, provider_ref, amount_minor, currency,
                           status)
                       VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true""",
                    uuid.UUID(request.payment_id),
                    provider_ref,
                    request.amount_minor,
                    request.currency,
                    _CHARGE_STATUS[outcome],
                )
                if fresh and outcome != "no_answer":
                    body = mock_event(
                        outcome,
                        request.payment_id,
                        provider_ref,
                        amount_minor=request.amount_minor,
                        currency=request.currency,
                        now_s=time.time(),
                    )
                    await conn.execute(
                        """INSERT INTO mock_webhooks (payment_id, body, next_attempt_at)
                           VALUES ($1, $2, now() + make_interval(secs => $3))""",
                        uuid.UUID(request.payment_id),
                        body.decode(),
                        self.delay_s,
                    )
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
            raise ProviderUnavailableError(f"mock provider unreachable: {exc}") from exc
        return CreatedPayment(provider_ref=provider_ref)

    async def retrieve(self, payment_id: str, provider_ref: str | None) -> Charge:
        row = await _charge_row(self._books(), payment_id, provider_ref)
        if row is None:
            return Charge("not_found")
        return Charge(
            _STATUS_OF_BOOKS[row["status"]],
            provider_ref=row["provider_ref"],
            amount_minor=row["amount_minor"],
            currency=row["currency"].upper(),
            payment_id=str(row["payment_id"]),
        )

    async def cancel(self, payment_id: str, provider_ref: str | None) -> Charge:
        await self._books().execute(
            """UPDATE mock_charges SET status = 'canceled', updated_at = now()
               WHERE payment_id = $1 AND status = 'processing'""",
            uuid.UUID(payment_id),
        )
        return await self.retrieve(payment_id, provider_ref)

    async def refund(self, request: RefundRequest) -> str:
        refund_ref = f"re_mock_{(request.key or request.payment_id).replace('-', '')}"
        async with self._books().acquire() as conn, conn.transaction():
            row = await _charge_row(conn, request.payment_id, request.provider_ref, lock=True)
            if row is None:
                raise ProviderRefusedError("no such payment at the provider")
            if row["status"] == "processing":  # nothing taken yet: make sure nothing ever is
                await conn.execute(
                    """UPDATE mock_charges SET status = 'canceled', updated_at = now()
                       WHERE payment_id = $1""",
                    row["payment_id"],
                )
            elif row["status"] == "succeeded":
                await conn.execute(
                    """UPDATE mock_charges SET refunded_at = coalesce(refunded_at, now()),
                           refund_ref = coalesce(refund_ref, $2), updated_at = now()
                       WHERE payment_id = $1""",
                    row["payment_id"],
                    refund_ref,
                )
        return refund_ref

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], *, now_s: float
    ) -> WebhookEvent:
        verify_signature(self.webhook_secret, body, headers.get(SIGNATURE_HEADER), now_s=now_s)
        return parse_event(body)

    def start(self) -> None:
        if self._sender is None and self.pool is not None:
            self._sender = asyncio.create_task(self._send_forever(), name="mock-webhook-sender")

    async def _send_forever(self) -> None:
        while True:
            try:
                sent = await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # PostgreSQL away: the webhooks wait in its books
                log.warning("mock webhook sender: %s", exc)
                sent = 0
                await asyncio.sleep(1.0)
            if sent == 0:
                await asyncio.sleep(self.poll_s)

    async def send_due(self) -> int:
        """Sends every due webhook once (leased, so other senders skip them); returns how many
        were tried."""
        rows = await self._books().fetch(
            """UPDATE mock_webhooks SET attempts = attempts + 1,
                   next_attempt_at = now() + make_interval(secs => $1)
               WHERE id IN (SELECT id FROM mock_webhooks
                            WHERE delivered_at IS NULL AND next_attempt_at <= now()
                            ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
               RETURNING id, body, attempts""",
            SEND_LEASE_S,
            SEND_BATCH,
        )
        if rows:
            await asyncio.gather(*(self._send_one(r["id"], r["body"], r["attempts"]) for r in rows))
        return len(rows)

    async def _send_one(self, webhook_id: int, body: str, attempts: int) -> None:
        error = await self._post(body.encode())
        if error is None:
            await self._books().execute(
                "UPDATE mock_webhooks SET delivered_at = now(), last_error = NULL WHERE id = $1",
                webhook_id,
            )
            return
        delay = retry_delay_s(attempts)
        log.warning("mock webhook %s not delivered (%s); again in %.1f s", webhook_id, error, delay)
        await self._books().execute(
            """UPDATE mock_webhooks SET next_attempt_at = now() + make_interval(secs => $2),
                   last_error = $3 WHERE id = $1""",
            webhook_id,
            delay,
            error,
        )

    async def _post(self, body: bytes) -> str | None:
        """None when the webhook was acknowledged (2xx), else why not."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(self.webhook_secret, body, int(time.time())),
        }
        try:
            async with self._session.post(self.webhook_url, data=body, headers=headers) as answer:
                return None if 200 <= answer.status < 300 else f"status {answer.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"

    async def aclose(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _charge_row(
    conn: asyncpg.Connection | asyncpg.Pool,
    payment_id: str,
    provider_ref: str | None,
    *,
    lock: bool = False,
) -> asyncpg.Record | None:
    """The charge the PaymentIntent names, or when there is none, the one of our payment id."""
    suffix = " FOR UPDATE" if lock else ""
    if provider_ref:
        sql = f"SELECT * FROM mock_charges WHERE provider_ref = $1{suffix}"
        return await conn.fetchrow(sql, provider_ref)
    sql = f"SELECT * FROM mock_charges WHERE payment_id = $1{suffix}"
    return await conn.fetchrow(sql, uuid.UUID(payment_id))


def parse_event(body: bytes) -> WebhookEvent:
    event = read_event_json(body, "a webhook event")
    try:
        data = event["data"]
        currency = data.get("currency")
        return WebhookEvent(
            event_id=str(event["id"]),
            type=str(event["type"]),
            outcome=_OUTCOMES.get(str(event["type"]), "ignored"),  # type: ignore[arg-type]
            payment_id=str(data["payment_id"]) if data.get("payment_id") else None,
            provider_ref=str(data["provider_ref"]) if data.get("provider_ref") else None,
            amount_minor=minor_units(data.get("amount_minor")),
            currency=currency.upper() if isinstance(currency, str) else None,
            payload=event,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidRequestError(f"not a webhook event: {exc}") from None
