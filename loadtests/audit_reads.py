"""What the fault auditor (`loadtests/audit.py`) reads: the event's facts in PostgreSQL (zones,
seats, payments, bookings, sagas, the mock provider's ledger) and its Redis inventory."""

from __future__ import annotations

import time
from typing import Any, cast

from booking.inventory.keys import event_keys

GRACE_S = 5.0
PAID_BEFORE_DEADLINE_S = 2.0
RUNNING_SAGA = "state NOT IN ('COMPLETED', 'COMPENSATED', 'FAILED')"


# --- PostgreSQL ------------------------------------------------------------------------------

ZONES_SQL = """
SELECT z.zone_id::text AS zone_id, z.capacity, z.held, z.sold, z.suspended,
       COALESCE(SUM(b.quantity) FILTER (WHERE b.status = 'RESERVED'), 0)::int AS booked_held,
       COALESCE(SUM(b.quantity) FILTER (WHERE b.status = 'CONFIRMED'), 0)::int AS booked_sold
FROM zones z LEFT JOIN bookings b ON b.zone_id = z.zone_id
WHERE z.event_id = $1
GROUP BY z.zone_id ORDER BY z.zone_id
"""

_DOUBLE_SEATS = """
SELECT s.zone_id::text AS zone_id, s.label, count(*) AS n
FROM booking_seats s JOIN bookings b ON b.booking_id = s.booking_id
WHERE b.event_id = $1 AND b.status IN ('RESERVED', 'CONFIRMED')
GROUP BY s.zone_id, s.label HAVING count(*) > 1
"""

_MONEY = """
SELECT p.payment_id::text AS payment_id, p.status AS payment, b.status AS booking,
       b.booking_id::text AS booking_id, p.payment_id = b.payment_id AS is_bookings_payment,
       p.created_at < b.expires_at - make_interval(secs => $2) AS paid_while_live,
       {charge_status} AS charge, {charge_refunded} AS charge_refunded,
       EXISTS (SELECT 1 FROM payment_events e
               WHERE e.payment_id = p.payment_id AND e.type = 'payment.succeeded') AS webhook_ok
FROM payments p JOIN bookings b ON b.booking_id = p.booking_id
{charge_join}
WHERE b.event_id = $1
"""


async def _has_table(conn: Any, name: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name))


async def _money_rows(conn: Any, event_id: str) -> tuple[list[Any], bool]:
    if await _has_table(conn, "mock_charges"):
        sql = _MONEY.format(
            charge_status="c.status",
            charge_refunded="c.refunded_at IS NOT NULL",
            charge_join="LEFT JOIN mock_charges c ON c.payment_id = p.payment_id",
        )
        return list(await conn.fetch(sql, event_id, PAID_BEFORE_DEADLINE_S)), True
    sql = _MONEY.format(charge_status="NULL::text", charge_refunded="false", charge_join="")
    return list(await conn.fetch(sql, event_id, PAID_BEFORE_DEADLINE_S)), False


async def _counts(conn: Any, sql: str, event_id: str) -> dict[str, int]:
    return {row[0]: int(row[1]) for row in await conn.fetch(sql, event_id)}


async def pg_facts(conn: Any, event_id: str, grace_s: float) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    facts["zones"] = [dict(r) for r in await conn.fetch(ZONES_SQL, event_id)]
    facts["double_seats"] = [dict(r) for r in await conn.fetch(_DOUBLE_SEATS, event_id)]
    facts["payments"] = await _counts(
        conn,
        """SELECT p.status, count(*) FROM payments p JOIN bookings b USING (booking_id)
           WHERE b.event_id = $1 GROUP BY p.status""",
        event_id,
    )
    facts["bookings"] = await _counts(
        conn, "SELECT status, count(*) FROM bookings WHERE event_id = $1 GROUP BY status", event_id
    )
    facts["running_sagas"] = int(
        await conn.fetchval(
            f"SELECT count(*) FROM sagas WHERE event_id = $1 AND {RUNNING_SAGA}", event_id
        )
    )
    facts["overdue"] = int(
        await conn.fetchval(
            """SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'RESERVED'
               AND expires_at < now() - make_interval(secs => $2)""",
            event_id,
            grace_s,
        )
    )
    rows, ledger = await _money_rows(conn, event_id)
    facts["money_rows"] = [dict(r) for r in rows]
    facts["ledger"] = ledger
    facts["charges"] = {}
    if ledger:
        facts["charges"] = await _counts(
            conn,
            """SELECT c.status || CASE WHEN c.refunded_at IS NULL THEN '' ELSE '+refunded' END,
                      count(*)
               FROM mock_charges c JOIN payments p USING (payment_id)
               JOIN bookings b ON b.booking_id = p.booking_id
               WHERE b.event_id = $1 GROUP BY 1""",
            event_id,
        )
    return facts


# --- Redis -----------------------------------------------------------------------------------

ZONE_FIELDS = ("capacity", "available", "held", "sold", "suspended")


async def redis_inventory(redis_url: str, event_id: str) -> tuple[dict[str, dict[str, int]], int]:
    """({zone_id: counters}, holds past their deadline + grace in the expiry index)."""
    import redis.asyncio as aioredis

    keys = event_keys(event_id)
    client = aioredis.Redis.from_url(
        redis_url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
    )
    try:
        raw = await client.hgetall(keys.inv)
        due_ms = (time.time() - GRACE_S) * 1000
        overdue = int(await client.zcount(keys.expiry, "-inf", due_ms))
    finally:
        await client.aclose()
    zones: dict[str, dict[str, int]] = {}
    for name, value in cast(dict[str, str], raw).items():  # decode_responses: str, not bytes
        zone_id, _, counter = name.rpartition(":")
        if zone_id and zone_id != "total" and counter in ZONE_FIELDS:
            zones.setdefault(zone_id, {})[counter] = int(value)
    return zones, overdue
