"""A stack of its own for the drop smoke test: the real processes (`make run`'s gateway, booking
service and every worker) on their own PostgreSQL database, Redis db and Kafka topics, with short
hold and saga timeouts so a drop settles within the test."""

from __future__ import annotations

from pathlib import Path

from tests.live import live_stack_fixture

ROOT = Path(__file__).resolve().parents[2]


drop_stack = live_stack_fixture(
    "drop_smoke",
    fixture="drop_stack",
    env={"HOLD_TTL_S": "10", "SAGA_TIMEOUT_S": "12", "RATE_LIMIT_AUTH_PER_IP": "50"},
)
