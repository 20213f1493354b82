from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from booking.inventory.scripts import epoch_ms
from booking.schemas import EventBody, ReserveBody
from booking.store.users import insert_user
from common.tokens import Identity
from workers.resources import open_resources
from workers.seat_release import SeatRelease
from workers.settings import WorkerSettings


async def _user(pool: Any, role: str = "customer") -> Identity:
    row = await insert_user(
        pool, email=f"{uuid.uuid4().hex}@x.io", name="U", role=role, password_hash="x"
    )
    assert row is not None
    return Identity(row.user_id, role, 0)


async def _published(parts: Any, capacity: int = 5) -> Any:
    organizer = await _user(parts.pool, "organizer")
    body = EventBody.model_validate(
        {
            "name": "E",
            "venue": "V",
            "starts_at": "2030-01-01T00:00:00Z",
            "sale_starts_at": "2020-01-01T00:00:00Z",
            "max_per_user": 4,
            "currency": "EUR",
            "zones": [{"name": "GA", "capacity": capacity, "price_minor": 100}],
        },
        strict=False,
    )
    event = await parts.catalog.create_event(organizer, body)
    return await parts.catalog.publish_event(organizer, event.event_id, datetime.now(UTC))


async def _reserve(bookings: Any, event: Any, quantity: int) -> Any:
    buyer = await _user(bookings.pool)
    booking, _ = await bookings.reserve(
        buyer,
        ReserveBody.model_validate(
            {"event_id": event.event_id, "zone_id": event.zones[0].zone_id, "quantity": quantity},
            strict=False,
        ),
        idempotency_key=uuid.uuid4().hex,
        queue_pass=None,
        now_ms=epoch_ms(),
    )
    return booking


async def test_lapsed_holds_go_back_on_sale_once(
    booking_parts: Any, redis_url: str, migrated_database: str
) -> None:
    event = await _published(booking_parts)
    short = booking_parts.bookings(hold_ttl_s=1)
    lapsing = [await _reserve(short, event, 2), await _reserve(short, event, 1)]
    kept = await _reserve(booking_parts.bookings(), event, 2)
    zone = event.zones[0].zone_id

    settings = WorkerSettings(redis_url=redis_url, database_url=migrated_database)
    async with open_resources(settings) as one, open_resources(settings) as other:
        workers = [SeatRelease(settings, one), SeatRelease(settings, other)]
        for worker in workers:
            await worker.start()
        try:
            await asyncio.sleep(1.2)
            handled = await asyncio.gather(*(worker.sweep_redis() for worker in workers))
            assert sum(handled) >= 2  # two copies sweeping at once release each hold once
        finally:
            for worker in workers:
                await worker.stop()

    statuses = {
        str(row["booking_id"]): row["status"]
        for row in await booking_parts.pool.fetch("SELECT booking_id, status FROM bookings")
    }
    assert statuses == {
        lapsing[0].booking_id: "EXPIRED",
        lapsing[1].booking_id: "EXPIRED",
        kept.booking_id: "RESERVED",
    }
    row = await booking_parts.pool.fetchrow(
        "SELECT held, sold FROM zones WHERE zone_id = $1", uuid.UUID(zone)
    )
    assert (row["held"], row["sold"]) == (2, 0)
    live = await booking_parts.scripts.availability(event.event_id)
    assert (live[zone].available, live[zone].held) == (3, 2)
    expired_messages = await booking_parts.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE payload->>'type' = 'booking.expired'"
    )
    assert expired_messages == 2
    # The seats are on sale again: someone else can take them.
    assert (await _reserve(booking_parts.bookings(), event, 3)).status == "RESERVED"


async def test_catch_up_ends_what_postgres_still_thinks_is_live(
    booking_parts: Any, redis_url: str, migrated_database: str
) -> None:
    event = await _published(booking_parts)
    booking = await _reserve(booking_parts.bookings(hold_ttl_s=1), event, 2)
    await asyncio.sleep(1.1)
    # Redis swept it, then the worker "crashed" before writing PostgreSQL.
    await booking_parts.scripts.sweep(event.event_id, limit=100)
    await booking_parts.pool.execute(
        "UPDATE bookings SET expires_at = now() - interval '1 minute' WHERE booking_id = $1",
        uuid.UUID(booking.booking_id),
    )
    settings = WorkerSettings(redis_url=redis_url, database_url=migrated_database)
    async with open_resources(settings) as resources:
        worker = SeatRelease(settings, resources)
        await worker.start()
        try:
            assert await worker.catch_up() >= 1
            assert await worker.catch_up() == 0
        finally:
            await worker.stop()
    status = await booking_parts.pool.fetchval(
        "SELECT status FROM bookings WHERE booking_id = $1", uuid.UUID(booking.booking_id)
    )
    assert status == "EXPIRED"
    held = await booking_parts.pool.fetchval(
        "SELECT held FROM zones WHERE zone_id = $1", uuid.UUID(event.zones[0].zone_id)
    )
    assert held == 0
