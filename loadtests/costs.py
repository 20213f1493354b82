"""`python -m loadtests.costs`: the unit costs the capacity model (docs/scaling.md,
`loadtests/simulate.py`) is driven by, measured on this machine, written to loadtests/costs.json.

It starts its OWN Redis, PostgreSQL and broker (`start_infra(own_servers=True)`, free loopback
ports), so Redis's INFO counters, its SLOWLOG and PostgreSQL's statistics count only this run,
not other users of a shared server; then one gateway + one booking process (the bench's set-up,
`stack_setup.py`: rate limits raised but in the path, LOG_LEVEL=WARNING). Per request kind, one
short window with the processes' CPU counters (psutil, like `make bench`), Redis's INFO cpu and
commandstats, a SLOWLOG at threshold 0 (every command with its duration and arguments: what
touches a `{ev:<id>}` key runs on the event's shard, the rest spreads) and PostgreSQL's
pg_stat_database (commits and rows written) read before and after:

  join     POST /queue/join through the gateway, one distinct user per request (wrk)
  stream   GET /queue/position/{id}/stream opened through the gateway (the streams tool's lean
           client); RSS of the gateway and the booking process before and after: bytes/stream
  pass     admission ticks (queue-release's `tick`, in this process) until every open stream got
           its pass: CPU per pass delivered, passes/s per booking core, pass delay
  reserve  POST /bookings/reserve through the gateway, GA quantity 1, 2,000 rotating users (wrk)
  pay      POST /payments (mock provider, `succeed`) through the gateway for bookings reserved
           before the window, until the mock's webhook for each was taken (the saga's confirm
           runs in workers, not started here: not counted)

wrk is closed-loop (`--connections` at once), so the processes run near saturation: the CPU per
request is what a busy process pays (batching included), the figure a capacity model needs.
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import psutil

from loadtests.bench import Bench
from loadtests.costs_kinds import Costs
from loadtests.costs_window import Window, script_names
from loadtests.stack_setup import (
    cpu_model,
    new_secrets,
    prepare_stores,
    quiet_stack,
    redis_db_url,
    say,
    service_env,
    token_keys,
)
from stack.infra import Endpoints, start_infra
from stack.probes import with_database
from stack.processes import free_port
from stack.specs import StackSettings

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run" / "costs"
OUT = ROOT / "loadtests" / "costs.json"
DATABASE = "booking_rush_costs"
REDIS_DB = 0  # our own Redis server: nobody else's data


async def run_costs(
    endpoints: Endpoints,
    pids: dict[str, int],
    *,
    duration_s: int,
    connections: int,
    streams: int,
    payments: int,
    kinds: str,
) -> dict[str, Any]:
    database_url = with_database(endpoints.database_url, DATABASE)
    await prepare_stores(database_url)  # our own Redis server, fresh: nothing to flush
    secret, internal = new_secrets("costs")
    env = service_env(secret, internal)
    settings = StackSettings(
        gateway_port=free_port(),
        booking_port=free_port(),
        database_name=DATABASE,
        booking_replicas=1,
    )
    ours = Endpoints(endpoints.redis_url, database_url, endpoints.kafka_bootstrap)
    stack = quiet_stack(RUN_DIR / "stack", env, settings, ours, ["gateway", "booking"])
    bench = Bench(settings.gateway_url, settings.booking_url, endpoints.redis_url, database_url)
    stack.start()
    try:
        processes = stack.pids()
        bench.pids = processes
        roots = {**processes, **pids}
        scripts = script_names()

        def window(slowlog: bool = False) -> Window:
            return Window(roots, endpoints.redis_url, database_url, scripts, slowlog)

        await bench.prepare(token_keys(secret))
        costs = Costs(bench, window, processes, connections)
        if "j" in kinds:
            say("join")
            await costs.join(duration_s, 4000)
        if "s" in kinds:
            say(f"streams: {streams} through the gateway, then every pass")
            await costs.streams(streams, internal)
        if "r" in kinds:
            say("reserve")
            await costs.reserve(duration_s)
        if "p" in kinds:
            say(f"pay: {payments} payments")
            await costs.pay(payments)
    finally:
        stack.stop()
    return costs.results


def _machine() -> dict[str, Any]:
    memory = psutil.virtual_memory().total / 2**30
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "node": platform.node(),
    }


@click.command()
@click.option("--duration", default=8, show_default=True, help="seconds per wrk window")
@click.option("--connections", default=32, show_default=True, help="wrk connections")
@click.option("--streams", default=3000, show_default=True, help="position streams to open")
@click.option("--payments", default=1500, show_default=True, help="payments in the pay window")
@click.option("--kinds", default="jsrp", show_default=True, help="j join s streams r reserve p pay")
@click.option("--out", type=click.Path(path_type=Path), default=OUT, show_default=True)
def main(
    duration: int, connections: int, streams: int, payments: int, kinds: str, out: Path
) -> None:
    """Measure the unit costs per request kind and write them to --out (costs.json)."""
    import uvloop

    from common.limits import raise_open_files_limit

    raise_open_files_limit()
    started, started_at = time.monotonic(), datetime.now(UTC)
    load_before = os.getloadavg()
    handle = start_infra(
        RUN_DIR, dict(os.environ), database_name=DATABASE, log=lambda _: None, own_servers=True
    )
    try:
        pids = {
            kind: pid
            for kind in ("redis", "postgres")
            if (pid := handle.server_pid(kind)) is not None
        }
        endpoints = Endpoints(
            redis_db_url(handle.endpoints.redis_url, REDIS_DB),
            handle.endpoints.database_url,
            handle.endpoints.kafka_bootstrap,
        )
        results = uvloop.run(
            run_costs(
                endpoints,
                pids,
                duration_s=duration,
                connections=connections,
                streams=streams,
                payments=payments,
                kinds=kinds,
            )
        )
    finally:
        handle.stop()
    document = {
        "measured_at": started_at.isoformat(timespec="seconds"),
        "command": (
            f"python -m loadtests.costs --duration {duration} --connections {connections}"
            f" --streams {streams} --payments {payments} --kinds {kinds}"
        ),
        "machine": _machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(time.monotonic() - started, 1),
        "notes": (
            "own Redis/PostgreSQL/broker on loopback, one gateway and one booking process; "
            "cpu_us_per_request from psutil process times over the window; redis.* from a "
            "SLOWLOG at threshold 0 (execution time only, not network I/O); postgres from "
            "pg_stat_database deltas; wrk closed-loop, so processes run near saturation"
        ),
        "kinds": results,
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    click.echo(json.dumps(document, indent=2))
    click.echo(f"written {out}", err=True)


if __name__ == "__main__":
    main()
