"""Kept for the payment package's callers: the notifications live in `booking.notifications`."""

from booking.notifications import (
    Email,
    Notifier,
    OutboxNotifier,
    confirmation_email,
    payment_declined_email,
    refund_email,
)

__all__ = [
    "Email",
    "Notifier",
    "OutboxNotifier",
    "confirmation_email",
    "payment_declined_email",
    "refund_email",
]
