"""The chaos auditor's judgement (`loadtests/audit.py`), fed by hand: each way money, inventory
or settlement can break is counted, and a clean drop counts nothing."""

from __future__ import annotations

from typing import Any

from loadtests.audit import judge, money_problems

ZONE = "0f5a1c2e-0000-0000-0000-000000000000"


def _pay(
    payment: str = "SUCCEEDED",
    booking: str = "CONFIRMED",
    charge: str | None = "succeeded",
    refunded: bool = False,
    webhook: bool = True,
    live: bool = True,
) -> dict[str, Any]:
    return {
        "payment_id": "7d0c6a1e-0000-0000-0000-000000000000",
        "booking_id": "1b2c3d4e-0000-0000-0000-000000000000",
        "payment": payment,
        "booking": booking,
        "is_bookings_payment": True,
        "paid_while_live": live,
        "charge": charge,
        "charge_refunded": refunded,
        "webhook_ok": webhook,
    }


def _facts(zone: dict[str, int] | None = None, **extra: Any) -> dict[str, Any]:
    counters = {"capacity": 10, "held": 2, "sold": 3, "suspended": 0}
    counters.update(zone or {})
    row = {
        "zone_id": ZONE,
        **counters,
        "booked_held": counters["held"],
        "booked_sold": counters["sold"],
    }
    facts = {
        "zones": [row],
        "double_seats": [],
        "payments": {"SUCCEEDED": 1},
        "bookings": {"CONFIRMED": 1},
        "charges": {"succeeded": 1},
        "ledger": True,
        "running_sagas": 0,
        "overdue": 0,
        "money_rows": [_pay()],
    }
    facts.update(extra)
    return facts


def _redis(**counters: int) -> dict[str, dict[str, int]]:
    zone = {"capacity": 10, "available": 5, "held": 2, "sold": 3, "suspended": 0}
    zone.update(counters)
    return {ZONE: zone}


def test_a_clean_drop_counts_nothing() -> None:
    audit = judge(_facts(), _redis())
    assert audit.problems == []
    assert (audit.oversell, audit.drift, audit.money_violations, audit.pending) == (0, 0, 0, 0)


def test_money_taken_then_failed_is_a_violation_and_a_lost_hold() -> None:
    violations, lost, problems = money_problems([_pay("FAILED", "CANCELLED")])
    assert (violations, lost) == (1, 1), problems


def test_refunded_because_redis_forgot_is_a_lost_hold_not_a_money_violation() -> None:
    row = _pay("REFUNDED", "REFUNDED", refunded=True)
    assert money_problems([row])[:2] == (0, 1)
    late = _pay("REFUNDED", "EXPIRED", refunded=True, live=False)  # paid after the hold lapsed
    assert money_problems([late])[:2] == (0, 0)


def test_ledger_and_app_disagreeing_are_violations() -> None:
    assert money_problems([_pay("FAILED", "CANCELLED", refunded=True, live=False)])[0] == 1
    assert money_problems([_pay("SUCCEEDED", "CONFIRMED", charge="processing")])[0] == 1
    declined = _pay("FAILED", "CANCELLED", charge="failed", webhook=False)
    assert money_problems([declined])[:2] == (0, 0)


def test_without_a_ledger_the_succeeded_webhook_says_money_was_taken() -> None:
    assert money_problems([_pay("FAILED", "CANCELLED", charge=None)])[0] == 1
    assert money_problems([_pay("REFUNDED", "REFUNDED", charge=None)])[0] == 0
    assert money_problems([_pay("FAILED", "CANCELLED", charge=None, webhook=False)])[0] == 0


def test_inventory_breaks_are_counted() -> None:
    assert judge(_facts(), _redis(held=3, available=4)).drift == 1
    oversold = judge(_facts(), _redis(sold=9, available=-1))
    assert oversold.oversell == 1 and oversold.drift == 6
    assert judge(_facts(), {}).capacity_breaks == 1  # Redis lost the event
    assert judge(_facts(), None).capacity_breaks == 1  # Redis unreadable
    assert judge(_facts(), None, redis_checked=False).problems == []  # not asked (make drop)
    counters_off = _facts()
    counters_off["zones"][0]["booked_sold"] = 2
    assert judge(counters_off, _redis()).capacity_breaks == 1
    double = _facts(double_seats=[{"zone_id": ZONE, "label": "A1", "n": 2}])
    assert judge(double, _redis()).oversell == 1


def test_pending_and_overdue_are_problems() -> None:
    audit = judge(_facts(payments={"PENDING": 2}, overdue=1), _redis())
    assert (audit.pending, audit.overdue_reserved) == (2, 1)
    assert len(audit.problems) == 2
