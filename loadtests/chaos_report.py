"""The report of `make chaos` (`loadtests/chaos.py`): one row per scenario, its violations and
the table printed at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loadtests.chaos_scenarios import READY_LIMIT_S


@dataclass
class Row:
    scenario: str
    fault: str
    users: int
    seats: int
    error: str | None = None
    fault_at_s: float | None = None
    ready_s: float | None = None
    settled: bool = False
    settle_s: float | None = None
    still_moving: list[str] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)
    drop: dict[str, Any] = field(default_factory=dict)
    stop_s: dict[str, float] = field(default_factory=dict)
    sigterm_ignored: list[str] = field(default_factory=list)
    stop_problem: str | None = None
    violations: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def violations(row: Row) -> list[str]:
    """What makes a row fail (empty: the scenario passed)."""
    found: list[str] = []
    if row.error:
        found.append(f"scenario error: {row.error}")
    a = row.audit
    for key, label in (
        ("oversell", "oversell"),
        ("capacity_breaks", "available+held+sold != capacity"),
        ("drift", "drift at the end"),
        ("money_violations", "money violations"),
        ("pending", "payments PENDING after settlement"),
        ("paid_holds_lost", "paid holds lost"),
        ("overdue_reserved", "bookings RESERVED past deadline"),
    ):
        if a.get(key):
            found.append(f"{label}: {a[key]}")
    if row.fault_at_s is not None and (row.ready_s is None or row.ready_s > READY_LIMIT_S):
        found.append(f"not ready within {READY_LIMIT_S:.0f} s of the fault ({row.ready_s})")
    if row.sigterm_ignored:
        found.append("needed SIGKILL / > 10 s to stop: " + ", ".join(row.sigterm_ignored))
    if row.stop_problem:
        found.append(row.stop_problem)
    if row.scenario == "booking-kill" and row.drop.get("reserve_failed"):
        found.append(f"failed reserves: {row.drop['reserve_failed']}")
    if not row.error and row.audit and not row.drop.get("confirmed"):
        found.append("the drop confirmed no booking")
    return found


COLUMNS = (
    ("scenario", 22),
    ("fault@s", 7),
    ("conf", 5),
    ("res-fail", 8),
    ("res-5xx", 7),
    ("oversell", 8),
    ("cap", 4),
    ("drift", 5),
    ("money", 5),
    ("pending", 7),
    ("lost", 4),
    ("overdue", 7),
    ("ready-s", 7),
    ("sigkill", 7),
    ("settle-s", 8),
    ("verdict", 7),
)


def _cells(row: Row) -> list[str]:
    a, d = row.audit, row.drop

    def fig(value: Any) -> str:
        return "-" if value is None else str(value)

    sigkill = "?" if row.stop_problem else str(len(row.sigterm_ignored))
    return [
        row.scenario,
        fig(row.fault_at_s),
        fig(d.get("confirmed")),
        fig(d.get("reserve_failed")),
        fig(d.get("reserve_retried_errors")),
        fig(a.get("oversell")),
        fig(a.get("capacity_breaks")),
        fig(a.get("drift")),
        fig(a.get("money_violations")),
        fig(a.get("pending")),
        fig(a.get("paid_holds_lost")),
        fig(a.get("overdue_reserved")),
        fig(row.ready_s),
        sigkill,
        fig(row.settle_s),
        "ok" if not row.violations else "FAIL",
    ]


def table(rows: list[Row]) -> str:
    head = " ".join(f"{name:<{width}}" for name, width in COLUMNS)
    lines = [head, "-" * len(head)]
    for row in rows:
        cells = _cells(row)
        lines.append(" ".join(f"{cell:<{w}}" for cell, (_, w) in zip(cells, COLUMNS, strict=True)))
    for row in rows:
        for violation in row.violations:
            lines.append(f"  {row.scenario}: {violation}")
        for problem in row.audit.get("problems", [])[:8]:
            lines.append(f"    {row.scenario}: {problem}")
    return "\n".join(lines)
