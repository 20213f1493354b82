"""The drop's ledger (what the buyers did) and the invariant checks run when it ends.

Plain `requests` (the locust process is gevent-patched). The checks first let the saga settle
(every payment reaches a final state), then read every booking back and the admin stats:
- no oversell, in Redis and PostgreSQL; available + held + sold = capacity in every zone;
- each succeeded payment confirmed exactly its booking; declined, refunded or unanswered ones
  confirmed nothing; no booking is CONFIRMED without a succeeded payment of ours;
- sold (Redis and PostgreSQL) equals the tickets of the CONFIRMED bookings; no seat is in two
  confirmed bookings;
- the money audit (`loadtests/audit.py`, read from PostgreSQL, the provider's ledger included):
  no charge the provider took that is neither confirmed nor refunded, no payment still PENDING,
  no paid live hold lost, no booking RESERVED past its deadline. It runs as a subprocess
  (asyncpg, outside locust's gevent) and is skipped, with a visible warning, when PostgreSQL
  cannot be reached.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

from loadtests.target import zone_breaks

FINAL_PAYMENT = {"SUCCEEDED", "FAILED", "REFUNDED"}
RETRIES_ON_429 = 20


@dataclass
class Ledger:
    """Filled by the buyers as they go (one process: plain lists are enough under gevent)."""

    bookings: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> booking + token
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> payment + meta
    outcomes: Counter[str] = field(default_factory=Counter)
    finished: int = 0

    def booking(self, body: dict[str, Any], token: str) -> None:
        self.bookings[body["booking_id"]] = {**body, "token": token}

    def payment(self, body: dict[str, Any], token: str, outcome: str) -> None:
        self.payments[body["payment_id"]] = {**body, "token": token, "test_outcome": outcome}

    def finish(self, outcome: str) -> None:
        self.outcomes[outcome] += 1
        self.finished += 1


def get_json(http: requests.Session, url: str, token: str) -> dict[str, Any]:
    """GET with the caller's token; a 429 waits its Retry-After (the limiter stays in the path)."""
    for _ in range(RETRIES_ON_429):
        answer = http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        if answer.status_code == 429:
            time.sleep(float(answer.headers.get("Retry-After") or 1))
            continue
        answer.raise_for_status()
        return dict(answer.json())
    raise RuntimeError(f"still rate limited: {url}")


def settle_payments(
    http: requests.Session, api: str, ledger: Ledger, deadline_s: float
) -> dict[str, dict[str, Any]]:
    """Every payment's latest state, polled until all are final or the deadline passes."""
    latest: dict[str, dict[str, Any]] = {}
    pending = set(ledger.payments)
    deadline = time.monotonic() + deadline_s
    while pending:
        for payment_id in sorted(pending):
            token = ledger.payments[payment_id]["token"]
            latest[payment_id] = get_json(http, f"{api}/payments/{payment_id}", token)
        pending = {p for p in pending if latest[p]["status"] not in FINAL_PAYMENT}
        if pending and time.monotonic() > deadline:
            break
        if pending:
            time.sleep(1.0)
    return latest


def _booking_states(
    http: requests.Session, api: str, ledger: Ledger, payments: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Bookings read back; a succeeded payment's booking is re-read until the saga moved it."""
    states: dict[str, dict[str, Any]] = {}
    for booking_id, booked in ledger.bookings.items():
        states[booking_id] = get_json(http, f"{api}/bookings/{booking_id}", booked["token"])
    waiting = {
        p["booking_id"]
        for p in payments.values()
        if p["status"] == "SUCCEEDED" and states[p["booking_id"]]["status"] == "RESERVED"
    }
    deadline = time.monotonic() + 30
    while waiting and time.monotonic() < deadline:
        time.sleep(1.0)
        for booking_id in list(waiting):
            token = ledger.bookings[booking_id]["token"]
            states[booking_id] = get_json(http, f"{api}/bookings/{booking_id}", token)
            if states[booking_id]["status"] != "RESERVED":
                waiting.discard(booking_id)
    return states


def check_drop(
    api: str, event_id: str, admin_token: str, ledger: Ledger, settle_s: float = 60.0
) -> tuple[list[str], dict[str, Any]]:
    """(problems, facts): an empty problem list means every invariant held."""
    problems: list[str] = []
    with requests.Session() as http:
        payments = settle_payments(http, api, ledger, settle_s)
        bookings = _booking_states(http, api, ledger, payments)
        stats = get_json(http, f"{api}/admin/events/{event_id}/stats", admin_token)
    problems += zone_breaks(stats)
    paid_by = {p["booking_id"]: p for p in payments.values()}
    for payment_id, payment in payments.items():
        booking = bookings.get(payment["booking_id"])
        if booking is None:
            problems.append(f"payment {payment_id[:8]}: its booking is not in the ledger")
            continue
        status, booked = payment["status"], booking["status"]
        if status not in FINAL_PAYMENT:
            problems.append(f"payment {payment_id[:8]} still {status} after {settle_s:.0f} s")
        elif status == "SUCCEEDED" and (
            booked != "CONFIRMED" or booking.get("payment_id") != payment_id
        ):
            problems.append(f"payment {payment_id[:8]} SUCCEEDED but its booking is {booked}")
        elif status != "SUCCEEDED" and booked == "CONFIRMED":
            problems.append(f"payment {payment_id[:8]} {status} but its booking is CONFIRMED")
    confirmed_qty: Counter[str] = Counter()
    seats_sold: Counter[tuple[str, str]] = Counter()
    for booking_id, booking in bookings.items():
        if booking["status"] != "CONFIRMED":
            continue
        paid = paid_by.get(booking_id)
        if paid is None or paid["status"] != "SUCCEEDED":
            problems.append(f"booking {booking_id[:8]} CONFIRMED without a succeeded payment")
        confirmed_qty[booking["zone_id"]] += int(booking["quantity"])
        for seat in booking.get("seats") or []:
            seats_sold[(booking["zone_id"], seat)] += 1
    problems += [f"seat {seat} sold {n} times" for (_, seat), n in seats_sold.items() if n > 1]
    for zone in stats.get("zones", []):
        want = confirmed_qty.get(zone["zone_id"], 0)
        if zone["sold"] != want or zone["postgres"]["sold"] != want:
            problems.append(
                f"zone {zone['zone_id'][:8]}: sold Redis {zone['sold']} / PostgreSQL "
                f"{zone['postgres']['sold']}, confirmed bookings hold {want}"
            )
    facts = {
        "stats": stats,
        "bookings": Counter(b["status"] for b in bookings.values()),
        "payments": Counter(p["status"] for p in payments.values()),
        "tickets_confirmed": sum(confirmed_qty.values()),
    }
    return problems, facts


MONEY_AUDIT_TIMEOUT_S = 30.0


def money_audit(
    database_url: str | None, event_id: str, settle_s: float = 30.0
) -> tuple[list[str], dict[str, Any] | None, str | None]:
    """(problems, figures, warning) of `python -m loadtests.audit` for the drop's event.

    The audit first waits up to `settle_s` for sagas and payments to settle. `warning` is set
    (and nothing is checked) when the database cannot be found or read."""
    if not database_url:
        return [], None, "no DATABASE_URL found: the money audit was SKIPPED"
    command = [sys.executable, "-m", "loadtests.audit", "--database-url", database_url]
    command += ["--event-id", event_id, "--settle", str(settle_s), "--json"]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=settle_s + MONEY_AUDIT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [], None, "the money audit timed out: SKIPPED"
    try:
        figures = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return [], None, f"the money audit could not read PostgreSQL ({detail[0][:300]}): SKIPPED"
    problems = [f"money audit: {problem}" for problem in figures.get("problems", [])]
    if not figures.get("settled", True):
        problems.append("money audit: sagas/payments still moving after the settle bound")
    return problems, figures, None
