"""The subject, text and HTML of every email kind.

Each template is a `string.Template`; its values are plain strings made from the email's data.
The HTML part receives every value through `html.escape`, so a name or an address a buyer typed
cannot inject markup; the only pre-built HTML is the tickets list, built here from escaped parts.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from string import Template
from typing import Any

BOOKING_CONFIRMED = "booking_confirmed"
REFUND = "refund"
PAYMENT_DECLINED = "payment_declined"
HOLD_EXPIRING = "hold_expiring"
WAITLIST_OFFER = "waitlist_offer"
KINDS = (BOOKING_CONFIRMED, REFUND, PAYMENT_DECLINED, HOLD_EXPIRING, WAITLIST_OFFER)


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class _Template:
    subject: Template
    text: Template
    html: Template


def _template(subject: str, text: str, body: str) -> _Template:
    return _Template(Template(subject), Template(text), Template(body))


_TEMPLATES: dict[str, _Template] = {
    BOOKING_CONFIRMED: _template(
        "Your booking $booking_ref is confirmed",
        "$quantity ticket(s) confirmed for $amount. Booking id: $booking_id.\n$tickets_text",
        "<p>$quantity ticket(s) confirmed for <strong>$amount</strong>.</p>\n"
        "<p>Booking id: <code>$booking_id</code></p>\n$tickets_html",
    ),
    REFUND: _template(
        "Your refund for booking $booking_ref",
        "We refunded $amount for booking $booking_id. It reaches your account within a few "
        "days.\nRefund reference: $refund_ref",
        "<p>We refunded <strong>$amount</strong> for booking <code>$booking_id</code>. It "
        "reaches your account within a few days.</p>\n<p>Refund reference: $refund_ref</p>",
    ),
    PAYMENT_DECLINED: _template(
        "Your payment for booking $booking_ref did not go through",
        "Your payment of $amount for booking $booking_id did not go through ($reason); no "
        "money was taken and the seats were released.",
        "<p>Your payment of <strong>$amount</strong> for booking <code>$booking_id</code> did "
        "not go through ($reason); no money was taken and the seats were released.</p>",
    ),
    HOLD_EXPIRING: _template(
        "Your hold on $event_name ends soon",
        "Your $quantity ticket(s) for $event_name are held until $expires_at. Pay before then "
        "or they go back on sale. Booking id: $booking_id.",
        "<p>Your $quantity ticket(s) for <strong>$event_name</strong> are held until "
        "$expires_at. Pay before then or they go back on sale.</p>\n"
        "<p>Booking id: <code>$booking_id</code></p>",
    ),
    WAITLIST_OFFER: _template(
        "Tickets for $event_name are yours to take",
        "$quantity ticket(s) for $event_name (zone $zone_id) are offered to you until "
        "$expires_at.$offer_text",
        "<p>$quantity ticket(s) for <strong>$event_name</strong> (zone $zone_id) are offered "
        "to you until $expires_at.</p>$offer_html",
    ),
}

_PAGE = Template(
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>$title</title></head>\n'
    "<body>\n$body\n</body></html>\n"
)


def amount(amount_minor: Any, currency: Any) -> str:
    return f"{int(amount_minor) / 100:.2f} {currency}"


def _tickets(tickets: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    if not tickets:
        return "", ""
    lines = ["Your tickets:"]
    items = []
    for ticket in tickets:
        seat = ticket.get("seat_id") or "general admission"
        where = f"zone {ticket.get('zone_id', '')}, seat {seat}"
        lines.append(f"- {where}: {ticket.get('code', '')}")
        items.append(
            f"<li>{html.escape(where)}: <code>{html.escape(str(ticket.get('code', '')))}</code>"
            "</li>"
        )
    return "\n".join(lines) + "\n", "<p>Your tickets:</p>\n<ul>\n" + "\n".join(items) + "\n</ul>"


def _offer(link: str, offer_id: str, seats: Sequence[str]) -> tuple[str, str]:
    text, markup = "", ""
    if seats:
        listed = ", ".join(str(seat) for seat in seats)
        text += f"\nSeats: {listed}"
        markup += f"\n<p>Seats: {html.escape(listed)}</p>"
    if offer_id:
        text += f"\nReserve them with the offer {offer_id} (header X-Waitlist-Offer)."
        markup += (
            f"\n<p>Reserve them with the offer <code>{html.escape(offer_id)}</code>"
            " (header X-Waitlist-Offer).</p>"
        )
    if link:
        text += f"\nTake them: {link}"
        markup += f'\n<p><a href="{html.escape(link)}">Take them</a></p>'
    return text, markup


def _values(data: Mapping[str, Any]) -> dict[str, str]:
    values = {key: "" if value is None else str(value) for key, value in data.items()}
    booking_id = values.get("booking_id", "")
    values.setdefault("booking_ref", booking_id[:8])
    if "amount_minor" in data and "currency" in data:
        values["amount"] = amount(data["amount_minor"], data["currency"])
    values.setdefault("reason", "declined")
    values.setdefault("refund_ref", "-")
    values.setdefault("event_name", "your event")
    return values


def render(kind: str, data: Mapping[str, Any]) -> Rendered:
    """The email of `kind` for `data`; KeyError names an unknown kind or a missing value."""
    template = _TEMPLATES[kind]
    values = _values(data)
    tickets_text, tickets_html = _tickets(list(data.get("tickets") or ()))
    offer_text, offer_html = _offer(
        str(data.get("offer_url") or ""),
        str(data.get("offer_id") or ""),
        list(data.get("seats") or ()),
    )
    escaped = {key: html.escape(value) for key, value in values.items()}
    subject = " ".join(template.subject.substitute(values).split())  # one header line
    text = template.text.substitute(values, tickets_text=tickets_text, offer_text=offer_text)
    body = template.html.substitute(escaped, tickets_html=tickets_html, offer_html=offer_html)
    page = _PAGE.substitute(title=html.escape(subject), body=body)
    return Rendered(subject=subject, text=text.rstrip("\n") + "\n", html=page)
