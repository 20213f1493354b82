"""Gives back money a refused provider success named (`booking/payments/checks.py`), for the
saga-orchestrator's housekeeping.

The provider is asked what the PaymentIntent really holds, since what we refused may have been
wrong about it: money there that is some payment's own correct charge is left to that payment
(its saga confirms or refunds it); other money taken is refunded in full, idempotently (one key
per PaymentIntent); a PaymentIntent that took nothing leaves nothing to refund; one still
settling is asked again later. Nothing here touches the payment or its hold.
"""

from __future__ import annotations

import logging

import asyncpg

from booking.metrics import MISMATCH_REFUNDS
from booking.payments import (
    MISMATCH_NOTHING_TO_REFUND,
    MISMATCH_REFUNDED,
    MISMATCH_REFUSED,
    Arrived,
    Charge,
    Mismatch,
    PaymentProvider,
    ProviderRefusedError,
    RefundRequest,
    find_payment,
    find_payment_by_provider_ref,
    lease_due_mismatches,
    payment_mismatches,
    retry_mismatch_later,
    settle_mismatch,
)

log = logging.getLogger(__name__)

LEASE_S = 60.0  # a copy that died mid-refund gives the row back after this long
MAX_DELAY_S = 60.0
BATCH = 50


async def refund_mismatches(pool: asyncpg.Pool, provider: PaymentProvider) -> int:
    """Deals with every mismatch due; returns how many were tried."""
    due = await lease_due_mismatches(pool, provider=provider.name, lease_s=LEASE_S, limit=BATCH)
    for mismatch in due:
        await _deal_with(pool, provider, mismatch)
    return len(due)


async def _deal_with(pool: asyncpg.Pool, provider: PaymentProvider, mismatch: Mismatch) -> None:
    assert mismatch.provider_ref is not None  # rows naming no PaymentIntent are never due
    try:
        charge = await provider.retrieve(mismatch.payment_id, mismatch.provider_ref)
        if charge.status in ("pending", "processing"):
            await _later(pool, mismatch, f"PaymentIntent {charge.status}: not settled yet")
            return
        if charge.status != "succeeded":
            await _settle(pool, mismatch, MISMATCH_NOTHING_TO_REFUND, note=charge.status)
            return
        if await _someones_own(pool, provider, mismatch, charge):
            await _settle(pool, mismatch, MISMATCH_NOTHING_TO_REFUND, note="own charge")
            return
        refund_ref = await provider.refund(
            RefundRequest(
                payment_id=mismatch.payment_id,
                provider_ref=mismatch.provider_ref,
                amount_minor=None,  # all of it: none of it was owed to us
                currency=charge.currency or mismatch.currency or "",
                key=f"mismatch-{mismatch.provider_ref}",
            )
        )
    except ProviderRefusedError as exc:
        log.error(
            "payment %s: the provider refused to refund PaymentIntent %s (%s); look at it",
            mismatch.payment_id,
            mismatch.provider_ref,
            exc.detail or exc.code,
        )
        await _settle(pool, mismatch, MISMATCH_REFUSED, note=exc.detail or exc.code)
        return
    except Exception as exc:  # the provider is not answering: ask again later
        await _later(pool, mismatch, f"{type(exc).__name__}: {exc}")
        return
    log.warning(
        "payment %s: refunded PaymentIntent %s (%s %s), a success that was not the payment's",
        mismatch.payment_id,
        mismatch.provider_ref,
        charge.amount_minor,
        charge.currency,
    )
    await _settle(pool, mismatch, MISMATCH_REFUNDED, refund_ref=refund_ref)


async def _someones_own(
    pool: asyncpg.Pool, provider: PaymentProvider, mismatch: Mismatch, charge: Charge
) -> bool:
    """The provider's charge is the correct charge of the payment named or of the payment that
    owns its PaymentIntent (the refused report was wrong about it, not the money)."""
    arrived = Arrived.of_charge(charge)
    named = await find_payment(pool, mismatch.payment_id)
    owner = None
    if charge.provider_ref:
        owner = await find_payment_by_provider_ref(pool, provider.name, charge.provider_ref)
    for payment in (named, owner):
        if payment is not None and not await payment_mismatches(pool, payment, arrived):
            return True
    return False


async def _settle(
    pool: asyncpg.Pool,
    mismatch: Mismatch,
    status: str,
    *,
    refund_ref: str | None = None,
    note: str | None = None,
) -> None:
    await settle_mismatch(pool, mismatch.mismatch_id, status, refund_ref=refund_ref, note=note)
    MISMATCH_REFUNDS.labels(status).inc()


async def _later(pool: asyncpg.Pool, mismatch: Mismatch, note: str) -> None:
    delay = min(float(2 ** min(mismatch.attempts, 6)), MAX_DELAY_S)
    await retry_mismatch_later(pool, mismatch.mismatch_id, delay_s=delay, note=note)
