"""Notifications to buyers: what an email is and how it leaves a transaction (`email`), the
templates of every kind (`templates`) and one function per kind (`kinds`). The notifier worker
(`workers/notifier.py`) sends them over SMTP."""

from booking.notifications.email import EMAIL_SEND, Email, Notifier, OutboxNotifier
from booking.notifications.kinds import (
    confirmation_email,
    email_of,
    hold_expiring_email,
    payment_declined_email,
    refund_email,
    waitlist_offer_email,
)
from booking.notifications.templates import (
    BOOKING_CONFIRMED,
    HOLD_EXPIRING,
    KINDS,
    PAYMENT_DECLINED,
    REFUND,
    WAITLIST_OFFER,
    Rendered,
    render,
)

__all__ = [
    "BOOKING_CONFIRMED",
    "EMAIL_SEND",
    "HOLD_EXPIRING",
    "KINDS",
    "PAYMENT_DECLINED",
    "REFUND",
    "WAITLIST_OFFER",
    "Email",
    "Notifier",
    "OutboxNotifier",
    "Rendered",
    "confirmation_email",
    "email_of",
    "hold_expiring_email",
    "payment_declined_email",
    "refund_email",
    "render",
    "waitlist_offer_email",
]
