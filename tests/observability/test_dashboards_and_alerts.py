"""Issue 6 acceptance: every dashboard panel and every alert rule, evaluated by a real Prometheus
that scraped the real processes during a small drop; plus the static checks (promtool, the
dashboard generator, titles and units) that need no servers."""

from __future__ import annotations

import asyncio
import json
import runpy
import shutil
import subprocess
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LiveStack
from tests.observability.conftest import scrape_jobs
from tests.observability.drop import drive_drop
from tests.observability.prometheus_server import query
from tests.observability.promql import (
    DASHBOARDS,
    OBSERVABILITY,
    RULE_FILES,
    PanelQuery,
    alert_rules,
    exported_series_names,
    panel_queries,
    unknown_metrics,
)

# Alerts on invariants: they must be evaluated, have their metric, and not fire after a drop.
INVARIANT_ALERTS = {
    "BookingRushOversell": "booking_rush_oversold_zones",
    "BookingRushInventoryDrift": "booking_rush_inventory_drift_seats",
}
DATA_DEADLINE_S = 30


def test_alert_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("no `promtool` on PATH: run `make tools` (observability/ensure-tools.sh)")
    result = subprocess.run(
        [promtool, "check", "rules", *map(str, RULE_FILES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(INVARIANT_ALERTS) <= {rule.name for rule in alert_rules()}


def test_dashboards_are_what_the_generator_writes() -> None:
    script = OBSERVABILITY / "grafana" / "build_dashboards.py"
    expected = runpy.run_path(str(script))["rendered"]()
    assert sorted(expected) == sorted(path.name for path in DASHBOARDS)
    for path in DASHBOARDS:
        assert path.read_text() == expected[path.name], f"run {script} to refresh {path.name}"


def test_every_panel_has_a_title_a_unit_and_the_fixed_datasource() -> None:
    titles = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        titles.add(board["title"])
        assert board["panels"], path
        for panel in board["panels"]:
            assert panel["title"].strip(), panel
            assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
            assert panel["datasource"]["uid"] == "prometheus"
            assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
            assert not any("$" in t["expr"] for t in panel["targets"]), "no variables in queries"
    assert {t.removeprefix("booking-rush: ") for t in titles} == {
        "Drop overview",
        "Queue",
        "Saga & Kafka",
        "Infrastructure",
    }


def test_a_query_on_a_metric_nobody_exports_is_caught() -> None:
    exposition = (
        "# HELP booking_rush_things_total Things.\n"
        "# TYPE booking_rush_things_total counter\n"
        "# HELP booking_rush_wait_seconds Waits.\n"
        "# TYPE booking_rush_wait_seconds histogram\n"
    )
    exported = set(exported_series_names(exposition))
    assert "booking_rush_wait_seconds_bucket" in exported
    good = ["rate(booking_rush_things_total[1m])", "booking_rush_wait_seconds_bucket"]
    assert unknown_metrics(good, exported) == set()
    assert unknown_metrics(["sum(booking_rush_thing_total)"], exported) == {
        "booking_rush_thing_total"
    }


async def _exported_by_every_process(live_stack: LiveStack) -> set[str]:
    exported: set[str] = set()
    async with httpx.AsyncClient(timeout=10) as client:
        for targets in scrape_jobs(live_stack.stack.specs).values():
            for target, _ in targets:
                exported |= set(exported_series_names(await _metrics_text(client, target)))
    return exported


async def _metrics_text(client: httpx.AsyncClient, target: str) -> str:
    """A process's /metrics (a worker the supervisor is restarting gets a few seconds)."""
    for _ in range(20):
        try:
            answer = await client.get(f"http://{target}/metrics")
        except httpx.TransportError:
            await asyncio.sleep(0.5)
            continue
        assert answer.status_code == 200, target
        return answer.text
    raise AssertionError(f"{target} serves no metrics")


async def _panels_without_data(prom: httpx.AsyncClient, queries: list[PanelQuery]) -> list[str]:
    empty = []
    for panel in queries:
        if not await query(prom, panel.expr):
            empty.append(f"{panel.dashboard} / {panel.panel}: {panel.expr}")
    return empty


async def _rules(prom: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    body = (await prom.get("/api/v1/rules")).json()
    return {rule["name"]: rule for group in body["data"]["groups"] for rule in group["rules"]}


@pytest.mark.e2e
async def test_every_panel_and_alert_against_a_real_prometheus(
    live_stack: LiveStack, gateway: httpx.AsyncClient, e2e_user: Any, prom: httpx.AsyncClient
) -> None:
    await drive_drop(live_stack, gateway, e2e_user)
    queries = panel_queries()
    rules = alert_rules()

    exported = await _exported_by_every_process(live_stack)
    every_expr = [panel.expr for panel in queries] + [rule.expr for rule in rules]
    assert unknown_metrics(every_expr, exported) == set()

    targets = sum(len(t) for t in scrape_jobs(live_stack.stack.specs).values())
    empty: list[str] = []
    async with asyncio.timeout(DATA_DEADLINE_S + 10):
        for _ in range(DATA_DEADLINE_S):
            up = await query(prom, "up == 1")
            empty = await _panels_without_data(prom, queries)
            if len(up) == targets and not empty:
                break
            await asyncio.sleep(1)
    assert len(await query(prom, "up == 1")) == targets, await query(prom, "up")
    assert empty == [], "panels without data:\n" + "\n".join(empty)

    for rule in rules:
        await query(prom, rule.expr)  # Prometheus accepts and evaluates it
    evaluated = await _rules(prom)
    assert {rule.name for rule in rules} <= set(evaluated)
    for rule in rules:
        state = evaluated[rule.name]
        assert state["health"] == "ok", (rule.name, state.get("lastError"))
    for alert, metric in INVARIANT_ALERTS.items():
        assert evaluated[alert]["state"] != "firing", evaluated[alert]
        values = await query(prom, f"max({metric})")
        assert values and float(values[0]["value"][1]) == 0, (metric, values)
