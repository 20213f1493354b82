"""The scenarios of `make chaos` (`loadtests/chaos.py`): the faults, one per scenario, and the
settings of a chaos drop."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "loadtests" / "results"
API = "/api/v1"
READY_LIMIT_S = 30.0
STOP_LIMIT_S = 10.0
JOURNEY_LIMIT_S = 90.0  # one buyer's whole journey (queue, reserve, pay, confirmation)
RETRY_STATUSES = {429, 502, 503, 504}
BUSINESS_409 = {"sold_out", "seat_unavailable", "user_limit_exceeded"}
SAGA_WORKERS = ("saga-orchestrator", "saga-step")
WORKERS = (
    "outbox-relay",
    "seat-release",
    "reconciler",
    "saga-orchestrator",
    "saga-step",
    "queue-release",
)


@dataclass(frozen=True)
class Fault:
    """One fault: `kind` process (SIGKILL `target`), server (kill `target`, maybe wiped), or
    rebalance (a second copy of each of `copies`, stopped again a while later)."""

    kind: str
    target: str = ""
    wipe: bool = False
    copies: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "process":
            return f"SIGKILL {self.target}"
        if self.kind == "server":
            return f"kill {self.target}" + (" (back empty)" if self.wipe else " (data kept)")
        return "second copy of " + ", ".join(self.copies)


SCENARIOS: dict[str, Fault] = {
    "booking-kill": Fault("process", "booking"),
    "gateway-kill": Fault("process", "gateway"),
    **{f"{worker}-kill": Fault("process", worker) for worker in WORKERS},
    "redis-restart": Fault("server", "redis"),
    "redis-wipe": Fault("server", "redis", wipe=True),
    "broker-restart-empty": Fault("server", "kafka", wipe=True),
    "postgres-restart": Fault("server", "postgres"),
    "rebalance": Fault("rebalance", copies=SAGA_WORKERS),
}


@dataclass(frozen=True)
class ChaosConfig:
    users: int = 60
    seats: int = 60
    duration_s: float = 20.0  # buyers arrive over this; the fault hits at fault_at of it
    fault_at: float = 0.4
    hold_ttl_s: int = 20
    saga_timeout_s: int = 8
    run_root: Path = ROOT / ".run" / "chaos"
    seed: int = 12
    settle_s: float = 0.0  # 0: 2 x SAGA_TIMEOUT_S + 20
    # Shares of buyers (the rest pay `succeed`).
    decline_share: float = 0.10
    no_answer_share: float = 0.08
    lapse_share: float = 0.10

    @property
    def settle_bound_s(self) -> float:
        return self.settle_s or self.saga_timeout_s * 2 + 20.0


def say(scenario: str, text: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {scenario}: {text}", flush=True)
