"""asyncpg SQL, one module per noun. Use-case modules call these; nothing else writes SQL."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg

# A connection (inside a transaction) or the pool (a statement on its own).
Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


# What other packages (the workers) use; the modules stay the place to read each statement.
from booking.store.bookings import (  # noqa: E402
    confirm_booking,
    due_reserved,
    end_bookings,
    find_booking,
)
from booking.store.bookings import lock_status as lock_booking_status  # noqa: E402
from booking.store.deliveries import DEAD as EMAIL_DEAD  # noqa: E402
from booking.store.deliveries import SENDING as EMAIL_SENDING  # noqa: E402
from booking.store.deliveries import SENT as EMAIL_SENT  # noqa: E402
from booking.store.deliveries import begin_attempt as begin_email_attempt  # noqa: E402
from booking.store.deliveries import due_deliveries as due_email_deliveries  # noqa: E402
from booking.store.deliveries import lock_delivery as lock_email_delivery  # noqa: E402
from booking.store.deliveries import park as park_email  # noqa: E402
from booking.store.deliveries import record_failure as record_email_failure  # noqa: E402
from booking.store.deliveries import record_sent as record_email_sent  # noqa: E402
from booking.store.deliveries import unlock_delivery as unlock_email_delivery  # noqa: E402
from booking.store.events import find_event, live_event_ids  # noqa: E402
from booking.store.expiry_warnings import ExpiringHold, claim_expiring_holds  # noqa: E402
from booking.store.messages import backlog as outbox_backlog  # noqa: E402
from booking.store.messages import (  # noqa: E402
    claim_message,
    mark_published,
    was_processed,
)
from booking.store.messages import lock_relay as lock_outbox_relay  # noqa: E402
from booking.store.messages import unpublished as unpublished_messages  # noqa: E402
from booking.store.users import find_email_address  # noqa: E402

__all__ = [
    "EMAIL_DEAD",
    "EMAIL_SENDING",
    "EMAIL_SENT",
    "Conn",
    "ExpiringHold",
    "begin_email_attempt",
    "claim_expiring_holds",
    "claim_message",
    "confirm_booking",
    "due_email_deliveries",
    "due_reserved",
    "end_bookings",
    "find_booking",
    "find_email_address",
    "find_event",
    "live_event_ids",
    "lock_booking_status",
    "lock_email_delivery",
    "lock_outbox_relay",
    "mark_published",
    "outbox_backlog",
    "park_email",
    "record_email_failure",
    "record_email_sent",
    "unlock_email_delivery",
    "unpublished_messages",
    "was_processed",
]
