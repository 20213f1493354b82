"""The ticket record: one seat or general-admission unit of a confirmed booking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from booking.domain import rfc3339

VALID = "valid"
VOID = "void"  # its booking was refunded or cancelled: it admits nobody


@dataclass(frozen=True, slots=True)
class Ticket:
    ticket_id: str
    booking_id: str
    event_id: str
    zone_id: str
    unit: int
    seat_id: str | None
    code: str
    status: str
    issued_at: datetime
    voided_at: datetime | None = None
    checked_in_at: datetime | None = None
    checked_in_by: str | None = None

    def body(self) -> dict[str, Any]:
        """As the booking's `tickets` list shows it (to its owner)."""
        return {
            "ticket_id": self.ticket_id,
            "code": self.code,
            "zone_id": self.zone_id,
            "seat_id": self.seat_id,
            "status": self.status,
            "checked_in_at": rfc3339(self.checked_in_at),
        }

    def admission(self) -> dict[str, Any]:
        """As a successful check-in answers it (to the door)."""
        return {
            "ticket_id": self.ticket_id,
            "booking_id": self.booking_id,
            "event_id": self.event_id,
            "zone_id": self.zone_id,
            "seat_id": self.seat_id,
            "checked_in_at": rfc3339(self.checked_in_at),
        }
