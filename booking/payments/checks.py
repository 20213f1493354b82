"""Money matches: a provider success counts only for the payment it belongs to.

A success (a signed webhook, or the provider's answer when the orchestrator asks) confirms a
payment only when it is for the payment's own PaymentIntent, with the payment's own amount and
currency. Anything else is recorded (`payment_mismatches`), never confirms, is flagged (metric
and a WARNING naming the payment and what differed) and its money is refunded at the provider
(`workers/saga_orchestrator.py`). The payment itself is left as it was: its own success may
still come, and a stray event must not fail it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from booking.metrics import PAYMENT_MISMATCHES
from booking.payments import mismatch_store
from booking.payments import store as payment_store
from booking.payments.providers.base import Charge, WebhookEvent
from booking.payments.store import Payment
from booking.store import Conn

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Arrived:
    """A success as the provider reported it."""

    provider_ref: str | None  # the PaymentIntent
    amount_minor: int | None
    currency: str | None
    payment_id: str | None  # ours, as the provider names it

    @classmethod
    def of_event(cls, event: WebhookEvent) -> Arrived:
        return cls(event.provider_ref, event.amount_minor, event.currency, event.payment_id)

    @classmethod
    def of_charge(cls, charge: Charge) -> Arrived:
        return cls(charge.provider_ref, charge.amount_minor, charge.currency, charge.payment_id)


async def mismatches(conn: Conn, payment: Payment, arrived: Arrived) -> list[str]:
    """What differs (`payment_intent`, `amount`, `currency`); empty when the success is the
    payment's own. When we never learnt the payment's PaymentIntent (the answer to our create
    was lost), the one named is accepted if it names this payment and no other payment has it:
    only we set that id, when we open the payment."""
    reasons = []
    if not await own_intent(conn, payment, arrived):
        reasons.append("payment_intent")
    if arrived.amount_minor != payment.amount_minor:
        reasons.append("amount")
    if (arrived.currency or "").upper() != payment.currency.upper():
        reasons.append("currency")
    return reasons


async def own_intent(conn: Conn, payment: Payment, arrived: Arrived) -> bool:
    """Whether the report is about the payment's own PaymentIntent (a failure for another one
    must not fail the payment either)."""
    if arrived.provider_ref is None:
        return False
    if arrived.payment_id is not None and arrived.payment_id != payment.payment_id:
        return False
    if payment.provider_ref is not None:
        return arrived.provider_ref == payment.provider_ref
    if arrived.payment_id != payment.payment_id:
        return False
    owner = await payment_store.find_by_provider_ref(conn, payment.provider, arrived.provider_ref)
    return owner is None or owner.payment_id == payment.payment_id


async def record(
    conn: Conn, payment: Payment, arrived: Arrived, reasons: list[str], *, source: str
) -> bool:
    """Records the mismatch (in the caller's transaction); True the first time its money (its
    PaymentIntent) is reported."""
    return await mismatch_store.record_mismatch(
        conn,
        payment_id=payment.payment_id,
        provider=payment.provider,
        source=source,
        provider_ref=arrived.provider_ref,
        amount_minor=arrived.amount_minor,
        currency=arrived.currency,
        reasons=reasons,
    )


def flag(payment: Payment, arrived: Arrived, reasons: list[str], *, seen_in: str) -> None:
    """Metric and log, once the mismatch is on record (`seen_in`: webhook or provider)."""
    for reason in reasons:
        PAYMENT_MISMATCHES.labels(reason, seen_in).inc()
    log.warning(
        "payment %s: provider success refused (%s differ): it names PaymentIntent %s, "
        "%s %s, payment %s; the payment is %s, %s %s",
        payment.payment_id,
        ", ".join(reasons),
        arrived.provider_ref,
        arrived.amount_minor,
        arrived.currency,
        arrived.payment_id,
        payment.provider_ref,
        payment.amount_minor,
        payment.currency,
    )
