"""What the money-matching tests share (tests/payments/test_money_matches.py and
test_payment_intake.py): paying through the rig, webhooks of the mock and of the Stripe
stand-in, and reads of what the saga and the mismatch records say."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from prometheus_client import REGISTRY

from booking.payments.providers.base import signature_header
from booking.payments.providers.mock import SIGNATURE_HEADER as MOCK_SIGNATURE
from tests.payments.conftest import SagaRig, running
from tests.payments.stripe_standin import StripeStandIn
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


async def _refunded(stripe: StripeStandIn, intent_id: str) -> bool:
    return any(refund["payment_intent"] == intent_id for refund in stripe.refunds)


async def _saga_is(rig: SagaRig, saga_id: str, *states: str) -> bool:
    return await rig.saga_state(saga_id) in states


async def _settled(rig: SagaRig, mismatch_id: int) -> bool:
    status = await rig.pool.fetchval(
        "SELECT refund_status FROM payment_mismatches WHERE id = $1", mismatch_id
    )
    return status != "pending"


async def _mock_refunded(rig: SagaRig, payment_id: str) -> bool:
    refunded_at = await rig.pool.fetchval(
        "SELECT refunded_at FROM mock_charges WHERE payment_id = $1", uuid.UUID(payment_id)
    )
    return refunded_at is not None
