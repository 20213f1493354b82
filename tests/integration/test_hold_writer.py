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


async def test_a_hold_refused_while_a_lapse_is_recorded_commits_once_it_is(
    clean_db: Any,
) -> None:
    """Seat-release ends a lapsed hold in Redis first and in PostgreSQL a moment later; a reserve
    that takes the freed seats in between must not be told "sold out". Without the late retry
    this write is refused with SoldOutError (zones_no_oversell)."""
    from booking.bookings import record_ended

    event, _ = await _event(clean_db)
    ga, seated = event.zones  # GA capacity 3; seats A1, A2
    committed: list[list[str]] = []
    writer = await _writer(clean_db, committed)
    lapsed_ga = _hold(event, ga, await _buyer(clean_db), 2)
    lapsed_seat = _hold(event, seated, await _buyer(clean_db), 1, ("A1",))
    try:
        await writer.write(lapsed_ga)
        await writer.write(lapsed_seat)
        ids = [lapsed_ga.booking.booking_id, lapsed_seat.booking.booking_id]

        async def record_the_lapse_late() -> None:
            await asyncio.sleep(0.15)
            await record_ended(clean_db, ids, status="EXPIRED")

        recorder = asyncio.create_task(record_the_lapse_late())
        fresh_ga = _hold(event, ga, await _buyer(clean_db), 2)
        fresh_seat = _hold(event, seated, await _buyer(clean_db), 1, ("A1",))
        bystander = _hold(event, seated, await _buyer(clean_db), 1, ("A2",))
        started = asyncio.get_running_loop().time()
        results = await asyncio.gather(
            writer.write(fresh_ga), writer.write(fresh_seat), writer.write(bystander)
        )
        await recorder
    finally:
        await writer.stop()
    assert list(results) == [None, None, None]
    assert asyncio.get_running_loop().time() - started < 2.0
    assert sorted(committed[-1]) == sorted(
        [fresh_ga.booking.booking_id, fresh_seat.booking.booking_id]
    )
    assert bystander.booking.booking_id in committed[-2]  # answered without waiting for them
    held = await clean_db.fetchval("SELECT held FROM zones WHERE zone_id = $1::uuid", ga.zone_id)
    assert held == 2


async def test_a_database_outage_fails_the_batch_at_once_and_writes_resume_after(
    clean_db: Any, migrated_database: str
) -> None:
    """PostgreSQL unreachable: every request of the batch gets 503 at once (no row-by-row retry
    of each hold); once it is back the pool reconnects and holds commit again."""
    from booking.db import create_pool
    from tests.integration.tcp_proxy import TcpProxy

    event, _ = await _event(clean_db)
    ga, seated = event.zones
    proxy, url = await TcpProxy.to_url(migrated_database)
    pool = await create_pool(url, min_size=2, max_size=4)
    committed: list[list[str]] = []
    writer = await _writer(pool, committed)
    inserts: list[int] = []
    real_insert = writer._insert

    async def counting_insert(holds: list[NewHold]) -> None:
        inserts.append(len(holds))
        await real_insert(holds)

    writer._insert = counting_insert  # type: ignore[method-assign]
    try:
        first = _hold(event, ga, await _buyer(clean_db), 1)
        await writer.write(first)

        await proxy.cut()
        inserts.clear()
        buyers = [await _buyer(clean_db) for _ in range(4)]
        doomed = [_hold(event, seated, buyer, 1, (f"A{i + 1}",)) for i, buyer in enumerate(buyers)]
        started = asyncio.get_running_loop().time()
        results = await asyncio.gather(
            *(writer.write(hold) for hold in doomed), return_exceptions=True
        )
        assert asyncio.get_running_loop().time() - started < 3
        for result in results:
            assert isinstance(result, errors.ServiceUnavailableError), result
            assert result.headers and int(result.headers["Retry-After"]) >= 1
        # Each hold was tried once, in batches: none was retried on its own.
        assert sum(inserts) == len(doomed) and len(inserts) < len(doomed), inserts

        await proxy.restore()
        again = _hold(event, seated, buyers[0], 1, ("A1",))
        await asyncio.wait_for(writer.write(again), 10)
    finally:
        await writer.stop()
        await pool.close()
        await proxy.close()
    written = {booking_id for batch in committed for booking_id in batch}
    assert written == {first.booking.booking_id, again.booking.booking_id}
    live = await clean_db.fetchval("SELECT count(*) FROM bookings")
    assert live == 2  # nothing of the failed batch reached the database
