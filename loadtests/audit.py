"""The fault auditor: what PostgreSQL, Redis and the API say after a drop, as one row of figures.

It plays the operator with the provider's dashboard open: it reads the app's tables (bookings,
payments, sagas, zones), the mock provider's own ledger (`mock_charges`, migration 0006, what
the provider took and refunded) and the event's Redis inventory, and counts what must be zero:

- oversell: zones where held + sold + suspended > capacity (Redis, PostgreSQL), seats in two live
  bookings;
- capacity breaks: Redis available + held + sold + suspended != capacity (or the inventory is
  missing), PostgreSQL's zone counters != the quantities of its RESERVED / CONFIRMED bookings;
- drift: |Redis - PostgreSQL| of held, sold and suspended, summed over the zones;
- money violations: a charge the provider took (succeeded, not refunded) whose payment is not
  SUCCEEDED with its booking CONFIRMED; a refunded charge whose payment is not REFUNDED; a
  SUCCEEDED payment whose charge did not succeed;
- pending: payments still PENDING;
- paid holds lost: money taken for a booking paid while its hold was live (created >= 2 s before
  its deadline) that did not end CONFIRMED (refunded or not);
- overdue: bookings still RESERVED past expires_at + a grace.

"Money taken" is the provider's ledger (`mock_charges.status = 'succeeded'`) and, for payments
the ledger does not know (a provider without one), a recorded `payment.succeeded` webhook;
"refunded" is `mock_charges.refunded_at`, else the payment's REFUNDED status.

`settle()` first waits (bounded) until nothing is in flight: no payment PENDING, no saga
running, no booking RESERVED past its deadline + grace, no Redis hold past it, no drift.

CLI (what `make drop`'s end checks run, outside locust's gevent):
`python -m loadtests.audit --database-url URL --event-id ID [--settle 60] [--json]`
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import click

from loadtests.audit_reads import (
    GRACE_S,
    RUNNING_SAGA,
    ZONE_FIELDS,
    ZONES_SQL,
    pg_facts,
    redis_inventory,
)


@dataclass
class Audit:
    """The figures of one audit; `problems` names each violation (empty: all held)."""

    oversell: int = 0
    capacity_breaks: int = 0
    drift: int = 0
    money_violations: int = 0
    pending: int = 0
    paid_holds_lost: int = 0
    overdue_reserved: int = 0
    running_sagas: int = 0
    payments: dict[str, int] = field(default_factory=dict)
    bookings: dict[str, int] = field(default_factory=dict)
    charges: dict[str, int] = field(default_factory=dict)
    ledger: str = "mock_charges"  # or "webhooks only" when the provider keeps no ledger
    redis_ok: bool = True
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def money_problems(rows: list[Mapping[str, Any]]) -> tuple[int, int, list[str]]:
    """(money violations, paid holds lost, problems) from the payment rows of `_MONEY`."""
    violations = lost = 0
    problems: list[str] = []
    for row in rows:
        pid, status, booked = row["payment_id"][:8], row["payment"], row["booking"]
        charge = row["charge"]
        if charge is not None:
            taken = charge == "succeeded"
            refunded = bool(row["charge_refunded"])
        else:  # the provider's ledger does not know it: the webhooks are all we have
            taken = bool(row["webhook_ok"])
            refunded = status == "REFUNDED"
        confirmed = status == "SUCCEEDED" and booked == "CONFIRMED" and row["is_bookings_payment"]
        if taken and not refunded and not confirmed:
            violations += 1
            problems.append(
                f"payment {pid}: the provider took the money, payment {status}, booking "
                f"{booked}, not refunded"
            )
        if charge is not None and refunded and status != "REFUNDED":
            violations += 1
            problems.append(f"payment {pid}: charge refunded but the payment is {status}")
        if charge is not None and status == "SUCCEEDED" and charge != "succeeded":
            violations += 1
            problems.append(f"payment {pid}: SUCCEEDED but the provider's charge is {charge}")
        if taken and row["paid_while_live"] and booked != "CONFIRMED":
            lost += 1
            problems.append(
                f"payment {pid}: paid while its hold was live, booking ended {booked}"
                + (" (refunded)" if refunded else "")
            )
    return violations, lost, problems


# --- the audit -------------------------------------------------------------------------------


def judge(
    facts: Mapping[str, Any],
    redis_zones: dict[str, dict[str, int]] | None,
    *,
    redis_checked: bool = True,
) -> Audit:
    """The figures from what was read (pure: the unit tests feed it by hand). `redis_zones`
    None with `redis_checked`: Redis could not be read (a finding); without: not asked."""
    audit = Audit(
        payments=dict(facts["payments"]),
        bookings=dict(facts["bookings"]),
        charges=dict(facts["charges"]),
        ledger="mock_charges" if facts["ledger"] else "webhooks only",
        running_sagas=facts["running_sagas"],
        overdue_reserved=facts["overdue"],
        pending=int(facts["payments"].get("PENDING", 0)),
        redis_ok=redis_zones is not None or not redis_checked,
    )
    problems = audit.problems
    for zone in facts["zones"]:
        name, capacity = zone["zone_id"][:8], zone["capacity"]
        taken_pg = zone["held"] + zone["sold"] + zone["suspended"]
        if taken_pg > capacity:
            audit.oversell += 1
            problems.append(f"zone {name}: PostgreSQL held+sold+suspended {taken_pg} > {capacity}")
        if zone["held"] != zone["booked_held"] or zone["sold"] != zone["booked_sold"]:
            audit.capacity_breaks += 1
            problems.append(
                f"zone {name}: PostgreSQL counters held {zone['held']} sold {zone['sold']}, its "
                f"bookings hold {zone['booked_held']} and bought {zone['booked_sold']}"
            )
        if redis_zones is None:
            continue
        live = redis_zones.get(zone["zone_id"])
        if not live or any(f not in live for f in ZONE_FIELDS):
            audit.capacity_breaks += 1
            problems.append(f"zone {name}: no inventory in Redis")
            continue
        taken = live["held"] + live["sold"] + live["suspended"]
        if taken > capacity or live["available"] < 0:
            audit.oversell += 1
            problems.append(f"zone {name}: Redis held+sold+suspended {taken} > {capacity}")
        if live["available"] + taken != capacity or live["capacity"] != capacity:
            audit.capacity_breaks += 1
            problems.append(
                f"zone {name}: Redis available {live['available']} + held {live['held']} + sold "
                f"{live['sold']} + suspended {live['suspended']} != capacity {capacity}"
            )
        drift = sum(abs(live[k] - zone[k]) for k in ("held", "sold", "suspended"))
        if drift:
            audit.drift += drift
            problems.append(
                f"zone {name}: drift {drift} (Redis held/sold {live['held']}/{live['sold']}, "
                f"PostgreSQL {zone['held']}/{zone['sold']})"
            )
    for seat in facts["double_seats"]:
        audit.oversell += 1
        problems.append(f"seat {seat['label']} in {seat['n']} live bookings")
    if redis_zones is None and redis_checked:
        audit.capacity_breaks += 1
        problems.append("Redis could not be read")
    violations, lost, money = money_problems(facts["money_rows"])
    audit.money_violations, audit.paid_holds_lost = violations, lost
    problems += money
    if audit.pending:
        problems.append(f"{audit.pending} payments still PENDING")
    if audit.overdue_reserved:
        problems.append(f"{audit.overdue_reserved} bookings RESERVED past their deadline")
    return audit


async def audit_event(
    database_url: str, redis_url: str | None, event_id: str, *, grace_s: float = GRACE_S
) -> Audit:
    """One audit of `event_id` (Redis skipped when `redis_url` is None)."""
    import asyncpg

    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        facts = await pg_facts(conn, event_id, grace_s)
    finally:
        await conn.close()
    redis_zones: dict[str, dict[str, int]] | None = None
    if redis_url is not None:
        try:
            redis_zones, _ = await redis_inventory(redis_url, event_id)
        except Exception:  # unreachable Redis is itself a finding (capacity_breaks)
            redis_zones = None
    return judge(facts, redis_zones, redis_checked=redis_url is not None)


async def _in_flight(
    database_url: str, redis_url: str | None, event_id: str, grace_s: float
) -> list[str]:
    """What is still moving (empty: settled)."""
    import asyncpg

    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        pending = await conn.fetchval(
            """SELECT count(*) FROM payments p JOIN bookings b USING (booking_id)
               WHERE b.event_id = $1 AND p.status = 'PENDING'""",
            event_id,
        )
        sagas = await conn.fetchval(
            f"SELECT count(*) FROM sagas WHERE event_id = $1 AND {RUNNING_SAGA}", event_id
        )
        overdue = await conn.fetchval(
            """SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'RESERVED'
               AND expires_at < now() - make_interval(secs => $2)""",
            event_id,
            grace_s,
        )
        zones = [dict(r) for r in await conn.fetch(ZONES_SQL, event_id)]
    finally:
        await conn.close()
    moving = []
    if pending:
        moving.append(f"{pending} PENDING")
    if sagas:
        moving.append(f"{sagas} sagas running")
    if overdue:
        moving.append(f"{overdue} RESERVED overdue")
    if redis_url is not None:
        redis_zones, redis_overdue = await redis_inventory(redis_url, event_id)
        if redis_overdue:
            moving.append(f"{redis_overdue} Redis holds overdue")
        drift = sum(
            abs(redis_zones.get(z["zone_id"], {}).get(k, 0) - z[k])
            for z in zones
            for k in ("held", "sold", "suspended")
        )
        if drift:
            moving.append(f"drift {drift}")
    return moving


async def settle(
    database_url: str,
    redis_url: str | None,
    event_id: str,
    *,
    bound_s: float,
    grace_s: float = GRACE_S,
    progress: Any = None,
) -> tuple[bool, float, list[str]]:
    """Wait until nothing is in flight or `bound_s` passes: (settled, seconds, what still moved).

    Errors while reading (a server still coming back) count as "still moving"."""
    started = time.monotonic()
    last_said = 0.0
    moving: list[str] = ["not read yet"]
    while True:
        try:
            moving = await _in_flight(database_url, redis_url, event_id, grace_s)
        except Exception as error:
            moving = [f"unreadable: {type(error).__name__}: {error}"[:200]]
        waited = time.monotonic() - started
        if not moving:
            return True, waited, []
        if waited >= bound_s:
            return False, waited, moving
        if progress is not None and waited - last_said >= 10:
            last_said = waited
            progress(f"settling ({waited:.0f} s): {', '.join(moving)}")
        await asyncio.sleep(1.0)


# --- CLI -------------------------------------------------------------------------------------


@click.command()
@click.option("--database-url", required=True)
@click.option("--event-id", required=True)
@click.option("--redis-url", default=None, help="also audit the Redis inventory")
@click.option("--settle", "settle_s", type=float, default=0.0, help="wait this long to settle")
@click.option("--json", "as_json", is_flag=True, help="print the figures as JSON")
def main(
    database_url: str, event_id: str, redis_url: str | None, settle_s: float, as_json: bool
) -> None:
    """Audit one event; exit 1 on any violation (money, pending, oversell, drift, ...)."""

    async def run() -> tuple[bool, Audit]:
        settled = True
        if settle_s > 0:
            settled, _, _ = await settle(database_url, redis_url, event_id, bound_s=settle_s)
        return settled, await audit_event(database_url, redis_url, event_id)

    settled, audit = asyncio.run(run())
    figures = {"settled": settled, **audit.as_dict()}
    if as_json:
        click.echo(json.dumps(figures))
    else:
        for key, value in figures.items():
            if key != "problems":
                click.echo(f"{key:<18} {value}")
        for problem in audit.problems:
            click.echo(f"BROKEN: {problem}")
    sys.exit(1 if audit.problems else 0)


if __name__ == "__main__":
    main()
