"""The buyer emails the saga writes besides the confirmation: a declined (or unsettled) payment
and a refund, each in the transaction that records the payment's new status."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from booking.payments import Notifier, Payment, payment_declined_email, refund_email
from booking.store import find_email_address

# How the saga's outcome for a payment that took no money reads to the buyer.
_DECLINED_REASONS = {
    "failed": "declined by the payment provider",
    "declined_by_provider": "declined by the payment provider",
    "timed_out": "not completed in time",
    "unknown_to_provider": "never completed at the payment provider",
    "mismatched_by_provider": "the amount charged did not match",
}


async def send_declined(
    conn: asyncpg.Connection, notifier: Notifier, payment: Payment, outcome: str, now: datetime
) -> None:
    address = await find_email_address(conn, payment.user_id)
    if address is None:
        return
    email = payment_declined_email(
        address,
        booking_id=payment.booking_id,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        reason=_DECLINED_REASONS.get(outcome, "declined"),
    )
    await notifier.send(conn, email, now=now)


async def send_refunded(
    conn: asyncpg.Connection, notifier: Notifier, payment: Payment, refund_ref: str, now: datetime
) -> None:
    address = await find_email_address(conn, payment.user_id)
    if address is None:
        return
    email = refund_email(
        address,
        booking_id=payment.booking_id,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        refund_ref=refund_ref,
    )
    await notifier.send(conn, email, now=now)
