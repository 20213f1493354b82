"""The small ticket drop (the one tests/loadtests runs on a single Redis) on the cluster's
stack: two gateways, two booking processes, two copies of every worker, a 3-master cluster."""

from __future__ import annotations

from pathlib import Path

from tests.live import LiveStack
from tests.loadtests.test_drop_smoke import SEATS, run_small_drop


def test_small_drop_on_the_cluster_keeps_every_invariant(
    cluster_stack: LiveStack, tmp_path: Path
) -> None:
    summary = run_small_drop(cluster_stack, tmp_path)
    assert summary["tickets_confirmed"] <= SEATS
