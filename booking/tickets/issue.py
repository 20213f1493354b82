"""Issuing tickets: called inside the transaction that makes a booking CONFIRMED."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from booking.domain import CONFIRMED, Booking
from booking.metrics import TICKETS_ISSUED
from booking.tickets.codes import TicketClaim, TicketSigner
from booking.tickets.model import VALID, Ticket
from booking.tickets.store import insert_tickets, tickets_of


async def issue_tickets(
    conn: asyncpg.Connection, booking: Booking, *, now: datetime, signer: TicketSigner
) -> list[Ticket]:
    """The booking's tickets, one per seat (in the order of `booking.seats`) or per
    general-admission unit, each with its signed code; written now unless they already exist,
    so calling it again (a redelivered confirm, the notify step) returns the same tickets.

    Call it in the transaction that confirms the booking, or with the booking's row locked: a
    refund ending the booking meanwhile would otherwise miss tickets it should void."""
    existing = (await tickets_of(conn, [booking.booking_id])).get(booking.booking_id, [])
    if existing:
        return existing  # written by one statement: all of them or none
    if booking.status != CONFIRMED:
        raise ValueError(f"booking {booking.booking_id} is {booking.status}, not confirmed")
    new = []
    for unit in range(1, booking.quantity + 1):
        seat_id = booking.seats[unit - 1] if booking.seats else None
        ticket_id = str(uuid.uuid4())
        claim = TicketClaim(ticket_id, booking.event_id, unit, seat_id)
        new.append(
            Ticket(
                ticket_id=ticket_id,
                booking_id=booking.booking_id,
                event_id=booking.event_id,
                zone_id=booking.zone_id,
                unit=unit,
                seat_id=seat_id,
                code=signer.sign(claim),
                status=VALID,
                issued_at=now,
            )
        )
    written = await insert_tickets(conn, new)
    TICKETS_ISSUED.inc(written)
    if written == len(new):
        return new
    return (await tickets_of(conn, [booking.booking_id]))[booking.booking_id]
