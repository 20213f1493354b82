"""The mock provider behaves like a real one: its books are in PostgreSQL, it answers status
queries, cancels only what took no money, refunds idempotently, and owes its webhooks until a
2xx answer, whichever process sends them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web

from booking.payments.providers.base import PaymentRequest, ProviderRefusedError, RefundRequest
from booking.payments.providers.mock import SIGNATURE_HEADER, MockProvider, retry_delay_s
from stack.processes import free_port
from tests.payments.conftest import wait_for

SECRET = "mock-secret-" + "z" * 20


class Receiver:
    """A real HTTP endpoint standing in for our webhook route; refuses the first `fail` posts."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.bodies: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        assert request.headers.get(SIGNATURE_HEADER, "").startswith("t=")
        self.bodies.append(orjson.loads(await request.read()))
        if len(self.bodies) <= self.fail:
            return web.Response(status=503)
        return web.json_response({"result": "recorded"})


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


def _provider(pool: Any, url: str, delay_s: float = 0.0) -> MockProvider:
    return MockProvider(
        webhook_url=url, webhook_secret=SECRET, delay_s=delay_s, pool=pool, poll_s=0.02
    )


def _request(outcome: str) -> PaymentRequest:
    return PaymentRequest(
        payment_id=str(uuid.uuid4()),
        booking_id=str(uuid.uuid4()),
        amount_minor=2500,
        currency="EUR",
        test_outcome=outcome,
    )


def _refund(request: PaymentRequest) -> RefundRequest:
    return RefundRequest(
        payment_id=request.payment_id, provider_ref=None, amount_minor=2500, currency="EUR"
    )


async def _delivered(pool: Any, payment_id: str) -> Any:
    return await pool.fetchrow(
        "SELECT attempts, delivered_at FROM mock_webhooks WHERE payment_id = $1",
        uuid.UUID(payment_id),
    )


async def test_a_webhook_is_retried_with_backoff_until_acknowledged(clean_db: Any) -> None:
    receiver = Receiver(fail=2)
    async with receiving(receiver) as url:
        provider = _provider(clean_db, url)
        provider.start()
        try:
            request = _request("succeed")
            await provider.create_payment(request)

            async def acknowledged() -> bool:
                row = await _delivered(clean_db, request.payment_id)
                return row is not None and row["delivered_at"] is not None

            await wait_for(acknowledged, within=retry_delay_s(1) + retry_delay_s(2) + 10)
        finally:
            await provider.aclose()
    row = await _delivered(clean_db, request.payment_id)
    assert row["attempts"] == 3
    assert len(receiver.bodies) == 3
    assert len({body["id"] for body in receiver.bodies}) == 1  # the same event, redelivered
    assert receiver.bodies[0]["type"] == "payment.succeeded"
    assert receiver.bodies[0]["data"]["payment_id"] == request.payment_id


async def test_a_webhook_owed_by_a_dead_process_is_sent_by_the_next(clean_db: Any) -> None:
    receiver = Receiver()
    async with receiving(receiver) as url:
        first = _provider(clean_db, url, delay_s=0.5)
        first.start()
        request = _request("decline")
        await first.create_payment(request)
        await first.aclose()  # the booking process dies before the webhook was due
        assert receiver.bodies == []
        second = _provider(clean_db, url)
        second.start()
        try:
            await wait_for(lambda: _has_bodies(receiver), within=10)
        finally:
            await second.aclose()
    assert [body["type"] for body in receiver.bodies] == ["payment.failed"]


async def _has_bodies(receiver: Receiver) -> bool:
    return bool(receiver.bodies)


async def test_status_cancel_and_refund_follow_the_money(clean_db: Any) -> None:
    provider = _provider(clean_db, "http://127.0.0.1:9/none")
    unanswered = _request("no_answer")
    paid = _request("succeed")
    declined = _request("decline")
    for request in (unanswered, paid, declined):
        await provider.create_payment(request)
        await provider.create_payment(request)  # creating again is a no-op
    assert (await provider.retrieve(unanswered.payment_id, None)).status == "pending"
    assert (await provider.retrieve(paid.payment_id, None)).status == "succeeded"
    assert (await provider.retrieve(declined.payment_id, None)).status == "failed"
    assert (await provider.retrieve(str(uuid.uuid4()), None)).status == "not_found"

    assert (await provider.cancel(unanswered.payment_id, None)).status == "canceled"
    assert (
        await provider.cancel(paid.payment_id, None)
    ).status == "succeeded"  # money taken stays taken
    assert (await provider.retrieve(unanswered.payment_id, None)).status == "canceled"

    first = await provider.refund(_refund(paid))
    assert await provider.refund(_refund(paid)) == first
    refunded = await clean_db.fetchrow(
        "SELECT status, refund_ref, refunded_at FROM mock_charges WHERE payment_id = $1",
        uuid.UUID(paid.payment_id),
    )
    assert (refunded["status"], refunded["refund_ref"]) == ("succeeded", first)
    assert refunded["refunded_at"] is not None
    with pytest.raises(ProviderRefusedError):
        await provider.refund(_refund(_request("succeed")))  # never charged
    await provider.aclose()
