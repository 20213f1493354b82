"""`make chaos`: a small ticket drop per scenario, one fault injected mid-drop, then an audit.

    python -m loadtests.chaos [--scenarios booking-kill,redis-wipe] [--users 60] [--seats 40]
                              [--duration 20] [--out loadtests/results/chaos.json]

For each scenario: a stack of its own (`stack.supervisor.Stack` with its own Redis, PostgreSQL and
broker, under `.run/chaos/<scenario>/`, so the faults may kill them), short hold and saga timeouts
(HOLD_TTL_S 20, SAGA_TIMEOUT_S 8) so it settles fast, a published event with the queue on, and a
lean asyncio buyer loop (no locust): each buyer joins the queue, polls for its pass, reserves
with an `Idempotency-Key`, pays with the mock provider (mostly `succeed`, some `decline` and
`no_answer`, some let the hold lapse) and polls its booking; like a real client it retries a
request (same key) on 429/502/503/504 and connection errors, honouring `Retry-After`.
The buyers arrive over `--duration` seconds; the fault hits at 40 % of it. Then the auditor
(`loadtests/audit.py`) lets things settle (bounded), measures, the stack is stopped, and one row
per scenario is printed. Exit 1 on any violation (see `violations()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import click

from loadtests.audit import Audit, audit_event, settle
from loadtests.chaos_buyers import Buyers
from loadtests.chaos_report import Row, table, violations
from loadtests.chaos_scenarios import RESULTS, SCENARIOS, ChaosConfig, Fault, say
from loadtests.chaos_stack import (
    _hook,
    build_stack,
    chaos_env,
    inject,
    ready_urls,
    stop_figures,
    time_to_ready,
)
from loadtests.drop_setup import DropSettings, create_plan
from loadtests.target import Target


async def _drive(stack: Any, row: Row, fault: Fault, config: ChaosConfig) -> None:
    """Plan, buyers, the fault mid-drop, settlement and the audit."""
    endpoints = stack.endpoints
    gateway_url = stack.settings.gateway_url
    target = Target(gateway_url, endpoints.database_url, stack.env["JWT_SECRET"])
    queue_outflow = max(10, config.users // 3)
    drop = DropSettings(
        users=config.users,
        seats=config.seats,
        max_concurrent=queue_outflow,
        release_per_tick=queue_outflow,
        pass_ttl_s=30,
        login_share=0.0,
    )
    plan = await create_plan(target, drop)
    event_id = plan["event"]["event_id"]
    say(row.scenario, f"event {event_id[:8]}: {config.users} buyers over {config.duration_s:.0f} s")
    buyers = Buyers(gateway_url, plan, config, random.Random(config.seed))
    started = time.monotonic()
    drop_task = asyncio.create_task(buyers.run())
    urls = ready_urls(stack)
    copies: list[str] = []
    try:
        await asyncio.sleep(config.duration_s * config.fault_at)
        fault_time = time.monotonic()
        row.fault_at_s = round(fault_time - started, 2)
        copies = await asyncio.to_thread(inject, stack, fault)
        say(row.scenario, f"fault injected at {row.fault_at_s:.1f} s: {fault.describe()}")
        ready_task = asyncio.create_task(time_to_ready(urls, fault_time))
        if copies:
            await asyncio.sleep(max(3.0, config.duration_s * 0.3))
            for copy in copies:
                await asyncio.to_thread(_hook(stack, "stop_copy"), copy)
            say(row.scenario, "copies stopped: " + ", ".join(copies))
        row.ready_s = await ready_task
        say(row.scenario, f"ready again after {row.ready_s} s")
        stats = await drop_task
    finally:
        if not drop_task.done():
            drop_task.cancel()
            with contextlib.suppress(BaseException):
                await drop_task
    row.drop = {
        "outcomes": dict(stats.outcomes),
        "confirmed": stats.confirmed,
        "reserve_failed": stats.reserve_failed,
        "reserve_retried_errors": stats.reserve_retried_errors,
        "retried_answers": dict(stats.answers),
        "seconds": round(time.monotonic() - started, 1),
    }
    say(row.scenario, f"drop done in {row.drop['seconds']} s: {dict(stats.outcomes)}; settling")
    row.settled, settle_s, row.still_moving = await settle(
        endpoints.database_url,
        endpoints.redis_url,
        event_id,
        bound_s=config.settle_bound_s,
        progress=lambda text: say(row.scenario, text),
    )
    row.settle_s = round(settle_s, 1)
    audit: Audit = await audit_event(endpoints.database_url, endpoints.redis_url, event_id)
    row.audit = audit.as_dict()


def fresh_servers(run_dir: Path) -> None:
    """Delete the data of the scenario's previous servers (unless one still runs): each run
    starts from an empty database and Redis, whatever earlier runs or migrations left."""
    from stack.servers.base import ServerRecord

    for kind in ("redis", "postgres", "kafka"):
        server_dir = run_dir / kind
        record = ServerRecord.read(server_dir)
        if record is not None and record.is_running_ours():
            continue  # a crashed run's server: the stack adopts it
        shutil.rmtree(server_dir, ignore_errors=True)


def run_scenario(name: str, config: ChaosConfig) -> Row:
    """One scenario on a stack of its own, start to stop; never raises (errors go in the row)."""
    fault = SCENARIOS[name]
    row = Row(scenario=name, fault=fault.describe(), users=config.users, seats=config.seats)
    started = time.monotonic()
    run_dir = config.run_root / name
    run_dir.mkdir(parents=True, exist_ok=True)
    fresh_servers(run_dir)
    say(name, f"starting its stack in {run_dir}")
    stack = None
    with open(run_dir / "console.log", "w") as console:
        try:
            stack = build_stack(run_dir, chaos_env(config, name), console)
            stack.start()
            say(name, "stack up")
            asyncio.run(_drive(stack, row, fault, config))
        except Exception as error:
            row.error = f"{type(error).__name__}: {error}"[:500]
            (run_dir / "error.txt").write_text(traceback.format_exc())
            say(name, f"ERROR {row.error}")
        finally:
            if stack is not None:
                say(name, "stopping the stack")
                stack.stop()
                row.stop_s, row.sigterm_ignored, row.stop_problem = stop_figures(stack)
    row.violations = violations(row)
    row.wall_s = round(time.monotonic() - started, 1)
    verdict = "ok" if not row.violations else "VIOLATIONS: " + "; ".join(row.violations)
    say(name, f"done in {row.wall_s} s: {verdict}")
    return row


@click.command()
@click.option(
    "--scenarios",
    default="all",
    show_default=True,
    help="comma-separated subset of: " + ", ".join(SCENARIOS),
)
@click.option("--users", type=int, default=ChaosConfig.users, show_default=True)
@click.option("--seats", type=int, default=ChaosConfig.seats, show_default=True)
@click.option(
    "--duration", type=float, default=ChaosConfig.duration_s, show_default=True,
    help="seconds over which the buyers arrive (the fault hits at 40 %)",
)  # fmt: skip
@click.option(
    "--out", type=click.Path(dir_okay=False), default=str(RESULTS / "chaos.json"),
    show_default=True,
)  # fmt: skip
@click.option(
    "--run-root", type=click.Path(file_okay=False), default=str(ChaosConfig.run_root),
    show_default=True, help="each scenario's stack runs in <run-root>/<scenario>",
)  # fmt: skip
@click.option(
    "--settle", "settle_s", type=float, default=0.0,
    help="bound of the settlement wait in seconds (default 2 x SAGA_TIMEOUT_S + 20 = 36)",
)  # fmt: skip
def main(
    scenarios: str,
    users: int,
    seats: int,
    duration: float,
    out: str,
    run_root: str,
    settle_s: float,
) -> None:
    """One small drop per scenario with one fault mid-drop; exit 1 on any violation."""
    names = list(SCENARIOS) if scenarios == "all" else [s.strip() for s in scenarios.split(",")]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise click.BadParameter(f"unknown: {', '.join(unknown)}", param_hint="--scenarios")
    config = ChaosConfig(
        users=users, seats=seats, duration_s=duration, run_root=Path(run_root), settle_s=settle_s
    )
    started = time.monotonic()
    rows = []
    for index, name in enumerate(names, 1):
        print(
            f"== scenario {index}/{len(names)}: {name} ({SCENARIOS[name].describe()})", flush=True
        )
        rows.append(run_scenario(name, config))
    report = table(rows)
    print("\n" + report, flush=True)
    failed = [row.scenario for row in rows if row.violations]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(
        json.dumps(
            {
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "config": {
                    "users": users,
                    "seats": seats,
                    "duration_s": duration,
                    "settle_bound_s": config.settle_bound_s,
                },
                "wall_s": round(time.monotonic() - started, 1),
                "ok": not failed,
                "rows": [row.as_dict() for row in rows],
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nwritten: {out}; {len(rows) - len(failed)}/{len(rows)} scenarios ok", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
