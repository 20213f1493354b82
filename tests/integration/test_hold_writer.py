"""The group commit (booking/hold_writer.py) on a real PostgreSQL: holds sent together share one
statement, a refused hold fails alone with its mapped error, only committed holds reach the
after-commit hook, and seat lists keep their order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from booking import errors
from booking.hold_writer import HoldWriter
from booking.store.bookings import NewHold
from tests.integration.test_oversell_constraints import _buyer, _event, _hold


async def _writer(pool: Any, committed: list[list[str]]) -> HoldWriter:
    async def hook(holds: list[NewHold]) -> None:
        committed.append([hold.booking.booking_id for hold in holds])

    writer = HoldWriter(pool, on_committed=hook)
    writer.start()
    return writer


async def test_holds_sent_together_commit_in_one_batch(clean_db: Any) -> None:
    event, _ = await _event(clean_db)
    ga = event.zones[0]
    committed: list[list[str]] = []
    writer = await _writer(clean_db, committed)
    try:
        holds = [_hold(event, ga, await _buyer(clean_db), 1) for _ in range(3)]
        await asyncio.gather(*(writer.write(hold) for hold in holds))
    finally:
        await writer.stop()
    assert committed == [[hold.booking.booking_id for hold in holds]]
    row = await clean_db.fetchrow("SELECT held FROM zones WHERE zone_id = $1::uuid", ga.zone_id)
    assert row["held"] == 3
    assert await clean_db.fetchval("SELECT sum(tickets) FROM user_tickets") == 3


async def test_a_refused_hold_fails_alone(clean_db: Any) -> None:
    event, _ = await _event(clean_db)
    ga, seated = event.zones
    committed: list[list[str]] = []
    writer = await _writer(clean_db, committed)
    buyer = await _buyer(clean_db)
    good = _hold(event, seated, buyer, 2, ("A2", "A1"))
    over_limit = _hold(event, ga, buyer, 1)  # max_per_user is 2: the third ticket is refused
    other = _hold(event, ga, await _buyer(clean_db), 2)
    try:
        results = await asyncio.gather(
            *(writer.write(hold) for hold in (good, over_limit, other)), return_exceptions=True
        )
    finally:
        await writer.stop()
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], errors.UserLimitExceededError)
    written = [booking_id for batch in committed for booking_id in batch]
    assert sorted(written) == sorted([good.booking.booking_id, other.booking.booking_id])
    seats = await clean_db.fetchval(
        "SELECT seats FROM bookings WHERE booking_id = $1::uuid", good.booking.booking_id
    )
    assert seats == ["A2", "A1"]
    assert await clean_db.fetchval("SELECT count(*) FROM booking_seats") == 2
    assert (
        await clean_db.fetchval(
            "SELECT count(*) FROM bookings WHERE booking_id = $1::uuid",
            over_limit.booking.booking_id,
        )
        == 0
    )


async def test_oversell_is_refused_with_sold_out(clean_db: Any) -> None:
    event, _ = await _event(clean_db)
    ga = event.zones[0]  # capacity 3
    writer = await _writer(clean_db, [])
    try:
        await writer.write(_hold(event, ga, await _buyer(clean_db), 2))
        with pytest.raises(errors.SoldOutError):
            await writer.write(_hold(event, ga, await _buyer(clean_db), 2))
    finally:
        await writer.stop()
