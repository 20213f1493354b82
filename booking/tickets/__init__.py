"""Signed tickets and check-in.

`codes` signs and verifies ticket codes (offline-verifiable, HMAC-SHA256); `issue` writes a
confirmed booking's tickets in the confirming transaction; `store` is their SQL (voided by
`booking.store.bookings.end_bookings` when a confirmed booking is refunded); `service` is the
check-in use-case and the tickets a booking shows; `routes` is `POST /checkin`.

What workers may use is listed in `__all__` (the saga's confirm issues tickets; an email composer
reads them with `booking_tickets`).
"""

from __future__ import annotations

from booking.tickets.codes import TicketClaim, TicketSigner
from booking.tickets.issue import issue_tickets
from booking.tickets.model import VALID, VOID, Ticket
from booking.tickets.store import tickets_of as booking_tickets

__all__ = [
    "VALID",
    "VOID",
    "Ticket",
    "TicketClaim",
    "TicketSigner",
    "booking_tickets",
    "issue_tickets",
]
