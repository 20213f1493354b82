"""The fault drop, small: `make chaos`'s scenario code (`loadtests/chaos.py`) run the way it runs
for real, as a subprocess with a stack of its own (own Redis, PostgreSQL and broker under
`.run/test/faults/<scenario>/`, so the fault may kill them), 30 buyers, 30 seats, one fault
mid-drop. Every figure of the audit must be zero: no oversell, no drift, no money taken that is
neither confirmed nor refunded, nothing PENDING after settlement, no paid hold lost, ready again
within 30 s of the fault, and every process stopped on SIGTERM within 10 s."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# It starts processes of its own.
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
USERS, SEATS, DURATION_S = 30, 30, 10
# Stack start (~10 s) + drop (~15 s) + settlement (bounded: 2 x SAGA_TIMEOUT_S + 20) + stop.
SCENARIO_TIMEOUT_S = 150


def _run(scenario: str, tmp_path: Path) -> dict[str, object]:
    out = tmp_path / "chaos.json"
    command = [sys.executable, "-m", "loadtests.chaos", "--scenarios", scenario]
    command += ["--users", str(USERS), "--seats", str(SEATS), "--duration", str(DURATION_S)]
    command += ["--out", str(out), "--run-root", str(ROOT / ".run" / "test" / "faults")]
    completed = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT_S,
        check=False,
    )
    report = completed.stdout[-6000:] + completed.stderr[-3000:]
    assert out.exists(), report
    (row,) = json.loads(out.read_text())["rows"]
    assert row["error"] is None, report
    assert row["violations"] == [], report
    assert completed.returncode == 0, report
    return dict(row)


def _zero_figures(row: dict[str, object]) -> None:
    audit = row["audit"]
    assert isinstance(audit, dict)
    for figure in (
        "oversell",
        "capacity_breaks",
        "drift",
        "money_violations",
        "pending",
        "paid_holds_lost",
        "overdue_reserved",
    ):
        assert audit[figure] == 0, (figure, audit)
    assert row["settled"], row
    assert row["ready_s"] is not None and float(row["ready_s"]) <= 30, row  # type: ignore[arg-type]
    assert row["sigterm_ignored"] == [] and row["stop_problem"] is None, row
    drop = row["drop"]
    assert isinstance(drop, dict) and drop["confirmed"] > 0, drop


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 20)
def test_broker_restarted_empty_mid_drop_loses_nothing(tmp_path: Path) -> None:
    _zero_figures(_run("broker-restart-empty", tmp_path))


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 20)
def test_redis_restarted_mid_drop_loses_nothing(tmp_path: Path) -> None:
    _zero_figures(_run("redis-restart", tmp_path))


@pytest.mark.timeout(SCENARIO_TIMEOUT_S + 20)
def test_saga_orchestrator_sigkilled_mid_drop_loses_nothing(tmp_path: Path) -> None:
    _zero_figures(_run("saga-orchestrator-kill", tmp_path))
