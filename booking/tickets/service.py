"""The ticket use-cases of the booking service: check-in at the door, and the tickets a booking
shows its owner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from booking import errors
from booking.auth import require_role
from booking.domain import CONFIRMED, Booking, rfc3339
from booking.metrics import CHECKINS
from booking.store import bookings as booking_store
from booking.tickets import store
from booking.tickets.codes import TicketSigner
from booking.tickets.issue import issue_tickets
from booking.tickets.model import VOID, Ticket
from common.tokens import Identity

# Who may scan: door staff and admins anywhere, an organizer at their own events.
CHECK_IN_ROLES = ("staff", "admin", "organizer")


@dataclass
class Tickets:
    pool: asyncpg.Pool
    signer: TicketSigner

    async def check_in(self, identity: Identity, code: str) -> Ticket:
        """Admits the holder of `code` once. The signature is checked before anything is read,
        so a forged or garbled code costs no database round trip."""
        try:
            return await self._check_in(identity, code)
        except errors.BookingError as exc:
            CHECKINS.labels(exc.code).inc()
            raise

    async def _check_in(self, identity: Identity, code: str) -> Ticket:
        require_role(identity, *CHECK_IN_ROLES)
        claim = self.signer.verify(code)
        if claim is None:
            raise errors.TicketInvalidError("the code is not a ticket of ours")
        if identity.role == "organizer":
            owner = await store.event_organizer(self.pool, claim.event_id)
            if owner != identity.user_id:
                raise errors.ForbiddenError("an organizer checks in tickets of their own events")
        now = datetime.now(UTC)
        admitted = await store.check_in(
            self.pool, claim.ticket_id, event_id=claim.event_id, by=identity.user_id, now=now
        )
        if admitted is not None:
            CHECKINS.labels("admitted").inc()
            return admitted
        ticket = await store.find_ticket(self.pool, claim.ticket_id)
        if ticket is None:
            # Signed by us, yet not in the table: a database restored from before its issue.
            raise errors.NotFoundError("no such ticket (signed, but not on record)")
        if ticket.status == VOID:
            raise errors.TicketVoidError(
                f"void since {rfc3339(ticket.voided_at)}: its booking was refunded or cancelled",
                extra={"voided_at": rfc3339(ticket.voided_at)},
            )
        when = rfc3339(ticket.checked_in_at)
        raise errors.AlreadyCheckedInError(
            f"checked in already at {when}", extra={"checked_in_at": when}
        )

    async def of_bookings(self, bookings: Sequence[Booking]) -> dict[str, list[Ticket]]:
        """booking id -> its tickets (void ones included); a confirmed booking that has none
        (confirmed before tickets existed) gets them issued now."""
        found = await store.tickets_of(self.pool, [b.booking_id for b in bookings])
        for booking in bookings:
            if booking.status == CONFIRMED and booking.booking_id not in found:
                issued = await self._issue_missing(booking.booking_id)
                if issued:
                    found[booking.booking_id] = issued
        return found

    async def _issue_missing(self, booking_id: str) -> list[Ticket]:
        async with self.pool.acquire() as conn, conn.transaction():
            # Locked as a refund locks it: tickets are issued before the refund or not at all.
            locked = await booking_store.lock_status(conn, booking_id)
            booking = await booking_store.find_booking(conn, booking_id)
            if locked is None or booking is None or booking.status != CONFIRMED:
                return []
            return await issue_tickets(conn, booking, now=datetime.now(UTC), signer=self.signer)
