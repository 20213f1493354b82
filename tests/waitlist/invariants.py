"""The inventory invariants of tests/lua over one event, plus PostgreSQL's counters agreeing."""

from __future__ import annotations

import uuid
from typing import Any

from booking.inventory.keys import event_keys
from common.redis_client import connect
from tests.lua.invariants import COUNTERS, assert_consistent


async def assert_counters_agree(
    redis_url: str, pool: Any, event_id: str, *, capacity: int
) -> dict[str, Any]:
    """Redis: every counter invariant (available + held + sold + suspended + withheld ==
    capacity, seats, holds, users); PostgreSQL: the zones' held and sold equal Redis's and the
    live bookings never exceed capacity."""
    redis = await connect(redis_url, cluster=False, decode_responses=True)
    try:
        state = await assert_consistent(redis, event_id)
        inv = state["inv"]
        assert sum(inv.get(f"total:{name}", 0) for name in COUNTERS) == capacity
        rows = await pool.fetch(
            "SELECT zone_id, held, sold, suspended, capacity FROM zones WHERE event_id = $1",
            uuid.UUID(event_id),
        )
        for row in rows:
            zone = str(row["zone_id"])
            assert (row["held"], row["sold"]) == (inv[f"{zone}:held"], inv[f"{zone}:sold"])
            assert row["held"] + row["sold"] + row["suspended"] <= row["capacity"]
        live = await pool.fetchval(
            """SELECT coalesce(sum(quantity), 0) FROM bookings
               WHERE event_id = $1 AND status IN ('RESERVED', 'CONFIRMED')""",
            uuid.UUID(event_id),
        )
        assert live == inv["total:held"] + inv["total:sold"] <= capacity
        assert await redis.exists(event_keys(event_id).meta)
        return state
    finally:
        await redis.aclose()
