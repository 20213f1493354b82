from __future__ import annotations

import uuid
from typing import Any

import pytest
from prometheus_client import REGISTRY

from booking.errors import UserLimitExceededError
from booking.inventory.keys import event_keys
from booking.inventory.scripts import epoch_ms
from booking.schemas import ReserveBody
from tests.workers.test_seat_release import _published, _reserve, _user
from workers.reconciler import Reconciler
from workers.settings import WorkerSettings


def _gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_reports_no_drift_then_rebuilds_lost_inventory(
    booking_parts: Any, redis_url: str, migrated_database: str
) -> None:
    event = await _published(booking_parts, capacity=10)
    bookings = booking_parts.bookings()
    buyer = await _user(booking_parts.pool)
    key = uuid.uuid4().hex
    body = ReserveBody.model_validate(
        {"event_id": event.event_id, "zone_id": event.zones[0].zone_id, "quantity": 3}, strict=False
    )
    first, _ = await bookings.reserve(
        buyer, body, idempotency_key=key, queue_pass=None, now_ms=epoch_ms()
    )
    await _reserve(bookings, event, 2)

    worker = Reconciler.provisioned(
        WorkerSettings(redis_url=redis_url, database_url=migrated_database)
    )
    await worker.start()
    try:
        await worker.tick()
        assert _gauge("booking_rush_inventory_drift_seats") == 0
        assert _gauge("booking_rush_oversold_zones") == 0
        assert _gauge("booking_rush_event_seats", event_id=event.event_id, state="held") == 5
        assert _gauge("booking_rush_event_seats", event_id=event.event_id, state="available") == 5

        # Redis restarts with no persistence: the event's state is gone.
        await booking_parts.redis.delete(*event_keys(event.event_id).stored())
        assert await booking_parts.scripts.availability(event.event_id) == {}
        await worker.tick()
    finally:
        await worker.stop()

    zone = (await booking_parts.scripts.availability(event.event_id))[event.zones[0].zone_id]
    assert (zone.available, zone.held, zone.sold) == (5, 5, 0)
    # An idempotent retry still answers the first booking and takes nothing more.
    replay, was_replay = await bookings.reserve(
        buyer, body, idempotency_key=key, queue_pass=None, now_ms=epoch_ms()
    )
    assert was_replay and replay.booking_id == first.booking_id
    # The buyer's tickets still count toward the limit (4): 3 held, so 2 more is refused.
    more = ReserveBody.model_validate(
        {"event_id": event.event_id, "zone_id": event.zones[0].zone_id, "quantity": 2}, strict=False
    )
    with pytest.raises(UserLimitExceededError):
        await bookings.reserve(
            buyer, more, idempotency_key=uuid.uuid4().hex, queue_pass=None, now_ms=epoch_ms()
        )
