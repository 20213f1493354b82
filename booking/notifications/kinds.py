"""One function per email kind: the structured data of the notification, rendered."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from booking.notifications.email import Email
from booking.notifications.templates import (
    BOOKING_CONFIRMED,
    HOLD_EXPIRING,
    PAYMENT_DECLINED,
    REFUND,
    WAITLIST_OFFER,
    render,
)


def email_of(kind: str, to: str, *, key: str, data: Mapping[str, Any]) -> Email:
    rendered = render(kind, data)
    return Email(
        to=to,
        subject=rendered.subject,
        text=rendered.text,
        key=key,
        kind=kind,
        data=dict(data),
        html=rendered.html,
    )


def _when(value: datetime | str) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)


def confirmation_email(
    to: str,
    *,
    booking_id: str,
    quantity: int,
    amount_minor: int,
    currency: str,
    tickets: Sequence[Mapping[str, Any]] = (),
) -> Email:
    """`tickets`: one mapping per ticket with `code`, `zone_id` and `seat_id` (None or "" for
    general admission), listed in the email."""
    listed = [
        {"code": str(t["code"]), "zone_id": str(t["zone_id"]), "seat_id": t.get("seat_id") or ""}
        for t in tickets
    ]
    data = {
        "booking_id": booking_id,
        "quantity": quantity,
        "amount_minor": amount_minor,
        "currency": currency,
        "tickets": listed,
    }
    return email_of(BOOKING_CONFIRMED, to, key=booking_id, data=data)


def refund_email(
    to: str, *, booking_id: str, amount_minor: int, currency: str, refund_ref: str = ""
) -> Email:
    data = {
        "booking_id": booking_id,
        "amount_minor": amount_minor,
        "currency": currency,
        "refund_ref": refund_ref or "-",
    }
    return email_of(REFUND, to, key=booking_id, data=data)


def payment_declined_email(
    to: str, *, booking_id: str, amount_minor: int, currency: str, reason: str = "declined"
) -> Email:
    data = {
        "booking_id": booking_id,
        "amount_minor": amount_minor,
        "currency": currency,
        "reason": reason,
    }
    return email_of(PAYMENT_DECLINED, to, key=booking_id, data=data)


def hold_expiring_email(
    to: str,
    *,
    booking_id: str,
    event_id: str,
    event_name: str,
    quantity: int,
    expires_at: datetime | str,
) -> Email:
    data = {
        "booking_id": booking_id,
        "event_id": event_id,
        "event_name": event_name,
        "quantity": quantity,
        "expires_at": _when(expires_at),
    }
    return email_of(HOLD_EXPIRING, to, key=booking_id, data=data)


def waitlist_offer_email(
    to: str,
    *,
    event_id: str,
    event_name: str,
    zone_id: str,
    quantity: int,
    expires_at: datetime | str,
    offer_url: str = "",
    key: str = "",
    **extra: Any,
) -> Email:
    """An offer from the waitlist. `key` orders the messages (default: the event); `extra`
    (e.g. an offer id) travels in the notification's data."""
    data = {
        **extra,
        "event_id": event_id,
        "event_name": event_name,
        "zone_id": zone_id,
        "quantity": quantity,
        "expires_at": _when(expires_at),
        "offer_url": offer_url,
    }
    return email_of(WAITLIST_OFFER, to, key=key or event_id, data=data)
