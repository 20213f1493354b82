"""The hold-expiring warning: seat-release marks each hold about to lapse as warned and writes
its email in one transaction (once per hold, never for a short hold right away, never while a
payment settles), and the email reaches the SMTP server through the relay and the notifier."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.notifier.conftest import MailRig
from tests.polling import wait_for
from tests.workers.kafka_rig import ticking
from tests.workers.test_seat_release import _published, _reserve
from workers.notifier import Notifier
from workers.outbox_relay import OutboxRelay
from workers.resources import open_resources
from workers.seat_release import SeatRelease


async def _move_hold(pool: Any, booking_id: str, *, began_s_ago: float, ends_in_s: float) -> None:
    """As if the hold had been taken `began_s_ago` and lapsed in `ends_in_s` (PostgreSQL only:
    the warning reads nothing else)."""
    now = datetime.now(UTC)
    await pool.execute(
        "UPDATE bookings SET created_at = $2, expires_at = $3 WHERE booking_id = $1",
        uuid.UUID(booking_id),
        now - timedelta(seconds=began_s_ago),
        now + timedelta(seconds=ends_in_s),
    )


async def _being_paid(pool: Any, booking: Any) -> None:
    now = datetime.now(UTC)
    await pool.execute(
        """INSERT INTO payments (payment_id, booking_id, user_id, amount_minor, currency, provider,
               status, idempotency_key, request_fingerprint, first_response, created_at,
               updated_at)
           VALUES ($1, $2, $3, 100, 'EUR', 'mock', 'PENDING', 'k', 'f', '{}'::jsonb, $4, $4)""",
        uuid.uuid4(),
        uuid.UUID(booking.booking_id),
        uuid.UUID(booking.user_id),
        now,
    )


async def test_a_hold_about_to_lapse_is_warned_once_by_email(
    booking_parts: Any, mail_rig: MailRig
) -> None:
    event = await _published(booking_parts, capacity=10)
    bookings = booking_parts.bookings()
    lapsing, short, paying, fresh = [await _reserve(bookings, event, 1) for _ in range(4)]
    pool = booking_parts.pool
    await _move_hold(pool, lapsing.booking_id, began_s_ago=590, ends_in_s=10)
    await _move_hold(pool, short.booking_id, began_s_ago=5, ends_in_s=10)  # half its hold is 7.5 s
    await _move_hold(pool, paying.booking_id, began_s_ago=590, ends_in_s=10)
    await _being_paid(pool, paying)

    settings = mail_rig.settings
    async with open_resources(settings) as resources:
        seat_release = SeatRelease(settings, resources)
        assert await seat_release.warn_expiring() == 1
        assert await seat_release.warn_expiring() == 0  # once

    warned = await pool.fetch(
        "SELECT booking_id::text FROM bookings WHERE expiry_warned_at IS NOT NULL"
    )
    assert [row["booking_id"] for row in warned] == [lapsing.booking_id]
    rows = await pool.fetch(
        "SELECT topic, key, payload FROM outbox WHERE topic = $1", mail_rig.topic
    )
    assert [(row["key"], row["payload"]["data"]["kind"]) for row in rows] == [
        (lapsing.booking_id, "hold_expiring")
    ]
    address = await pool.fetchval(
        "SELECT email FROM users WHERE user_id = $1", uuid.UUID(lapsing.user_id)
    )
    assert fresh.booking_id not in {row["key"] for row in rows}

    async with (
        ticking(OutboxRelay.provisioned(settings)),
        ticking(Notifier.provisioned(settings, poll_timeout_ms=100)),
    ):
        await wait_for(lambda: _delivered(mail_rig, 1))
    (message,) = mail_rig.drop.messages
    assert message["To"] == address
    assert message["X-Booking-Rush-Kind"] == "hold_expiring"
    assert message["Subject"] == "Your hold on E ends soon"


async def test_no_warning_when_switched_off(booking_parts: Any, mail_rig: MailRig) -> None:
    from dataclasses import replace

    event = await _published(booking_parts)
    booking = await _reserve(booking_parts.bookings(), event, 1)
    await _move_hold(booking_parts.pool, booking.booking_id, began_s_ago=590, ends_in_s=10)
    settings = replace(mail_rig.settings, hold_expiry_warning_s=0)
    async with open_resources(settings) as resources:
        assert await SeatRelease(settings, resources).warn_expiring() == 0


async def _delivered(rig: MailRig, count: int) -> bool:
    return len(rig.drop.messages) >= count
