"""`make bench`: the engine measured against the limits of its own parts, in one run.

Starts its own gateway + booking service (free loopback ports; rate limits raised but still in
the path; LOG_LEVEL=WARNING) on the servers `make run` uses (or starts them), with its own
PostgreSQL database (dropped and re-created each run) and its own Redis db (BENCH_REDIS_DB,
flushed before and after). Then one wrk (or redis-benchmark) run per phase at 64 connections:

  a  reserve through the gateway          d  redis-benchmark: EVALSHA reserve (the Redis limit)
  b  reserve directly at the booking svc  e  sold-out rejections through the gateway
  c  bare Starlette + one EVALSHA         f  queue joins through the gateway, one user each
     (the Python-stack limit)

After each phase the admin stats are checked (no oversell; available + held + sold = capacity;
holds written = 201s answered). Prints a table, writes JSON to loadtests/results/, and exits 1
if an invariant broke (missing the performance bar is reported, not an error).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import click
import redis.asyncio as aioredis

from loadtests.bench_limits import bare_server, run_redis_benchmark
from loadtests.bench_report import bar_checks, print_table
from loadtests.cpu import CpuMeter, per_request_us
from loadtests.stack_setup import (
    cpu_model,
    flush_close,
    new_secrets,
    prepare_stores,
    quiet_stack,
    redis_db_url,
    service_env,
    token_keys,
)
from loadtests.target import insert_users, mint_token, zone_breaks
from loadtests.wrk import run_wrk
from stack.infra import Endpoints, start_infra
from stack.probes import with_database
from stack.processes import free_port
from stack.specs import StackSettings

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run" / "bench"
DATABASE = "booking_rush_bench"
BENCH_REDIS_DB = 8
ROTATING_USERS = 2000
PHASES = "abcdef"
# (c) and (e) run right before and after (a): the ratios of the bar then compare phases measured
# within seconds of each other, as the speed of a shared VM drifts over a run.
RUN_ORDER = "caebdf"
JOINS_PER_S_BUDGET = 5000  # distinct users minted for phase (f) per second of it


class Bench:
    """One bench run against a started gateway + booking service."""

    def __init__(self, gateway: str, direct: str, redis_url: str, database_url: str) -> None:
        self.gateway, self.direct = gateway + "/api/v1", direct + "/api/v1"
        self.redis_url, self.database_url = redis_url, database_url
        self.phases: dict[str, dict[str, Any]] = {}
        self.keys: Any = None
        self.admin = self.organizer = ""
        self.tokens: list[str] = []
        self.pids: dict[str, int] = {}  # the stack's processes, for the CPU split of each phase

    async def prepare(self, keys: Any) -> None:
        self.keys = keys
        ((organizer_id, _),) = await insert_users(self.database_url, 1, role="organizer")
        ((admin_id, _),) = await insert_users(self.database_url, 1, role="admin")
        self.organizer = mint_token(keys, organizer_id, "organizer")
        self.admin = mint_token(keys, admin_id, "admin")
        users = await insert_users(self.database_url, ROTATING_USERS, label="bench")
        self.tokens = [mint_token(keys, user_id) for user_id, _ in users]

    async def event(self, capacity: int, max_per_user: int, queue: bool = False) -> Any:
        body = {
            "name": f"bench-{uuid.uuid4().hex[:6]}",
            "venue": "Loopback",
            "starts_at": "2031-01-01T20:00:00Z",
            "sale_starts_at": "2021-01-01T10:00:00Z",
            "max_per_user": max_per_user,
            "currency": "EUR",
            "zones": [{"name": "Floor", "capacity": capacity, "price_minor": 1000}],
            "queue": {"enabled": queue, "max_concurrent": 100, "pass_ttl_s": 60},
        }
        async with aiohttp.ClientSession(headers=self._auth(self.organizer)) as http:
            async with http.post(f"{self.gateway}/events", json=body) as created:
                event = await created.json()
                assert created.status == 201, event
            async with http.post(f"{self.gateway}/events/{event['event_id']}/publish") as done:
                assert done.status == 200, await done.text()
                return await done.json()

    def _auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def stats(self, event_id: str) -> dict[str, Any]:
        async with aiohttp.ClientSession(headers=self._auth(self.admin)) as http:
            async with http.get(f"{self.gateway}/admin/events/{event_id}/stats") as answer:
                return dict(await answer.json())

    def meter(self, **extra_pids: int) -> CpuMeter:
        meter = CpuMeter({**self.pids, **extra_pids})
        meter.start()
        return meter

    async def record(
        self,
        name: str,
        row: dict[str, Any],
        event_id: str,
        answered: int,
        in_flight: int = 0,
        cpu: CpuMeter | None = None,
    ) -> None:
        """Check the event after a phase: the inventory invariants, and the holds written match
        the 201s answered (plus at most `in_flight`: requests wrk sent but stopped waiting for)."""
        if cpu is not None:
            spent = cpu.stop()
            row |= {"cpu_s": spent, "cpu_us_per_request": per_request_us(spent, row["requests"])}
        stats = await self.stats(event_id)
        problems = zone_breaks(stats)
        if not answered <= stats["held"] <= answered + in_flight:
            problems.append(f"held {stats['held']} for {answered} holds answered (+{in_flight})")
        self.phases[name] = {
            **row,
            "held": stats["held"],
            "no_oversell": not problems,
            "problems": problems,
        }

    async def wrk_phase(
        self,
        name: str,
        url: str,
        event: Any,
        *,
        duration_s: int,
        warmup_s: int,
        extra_pids: dict[str, int] | None = None,
        **kw: Any,
    ) -> None:
        body = json.dumps(
            {"event_id": event["event_id"], "zone_id": event["zones"][0]["zone_id"], "quantity": 1}
        )
        options = {"method": "POST", "tokens": self.tokens, "bodies": [body], **kw}
        warmup = None
        if warmup_s:
            warmup = await asyncio.to_thread(run_wrk, url, duration_s=warmup_s, **options)
        cpu = self.meter(**(extra_pids or {}))
        result = await asyncio.to_thread(run_wrk, url, duration_s=duration_s, **options)
        created = result.statuses.get("201", 0) + (warmup.statuses.get("201", 0) if warmup else 0)
        runs = 2 if warmup else 1
        in_flight = kw.get("connections", 64) * runs
        await self.record(name, result.row(), event["event_id"], created, in_flight, cpu)

    async def run(
        self, duration_s: int, connections: int, warmup_s: int, phases: str = PHASES
    ) -> None:
        common: dict[str, Any] = {
            "duration_s": duration_s,
            "warmup_s": warmup_s,
            "connections": connections,
        }
        url = "/bookings/reserve"

        async def reserve_phase(name: str, base: str, **extra: Any) -> None:
            event = await self.event(1_000_000, 100)
            await self.wrk_phase(name, base + url, event, **common, **extra)

        async def bare_phase() -> None:
            with bare_server(self.redis_url) as bare:
                await reserve_phase(
                    "c_bare_evalsha", bare.url + "/api/v1", extra_pids={"bare": bare.pid}
                )

        run: dict[str, Callable[[], Awaitable[None]]] = {
            "a": lambda: reserve_phase("a_reserve_gateway", self.gateway),
            "b": lambda: reserve_phase("b_reserve_direct", self.direct),
            "c": bare_phase,
            "d": lambda: self.redis_phase(duration_s, connections),
            "e": lambda: self.sold_out_phase(duration_s, connections),
            "f": lambda: self.join_phase(duration_s, connections),
        }
        for letter in RUN_ORDER:
            if letter in phases:
                await run[letter]()

    async def redis_phase(self, duration_s: int, connections: int) -> None:
        if shutil.which("redis-benchmark") is None:
            self.phases["d_redis_evalsha"] = {"skipped": "redis-benchmark is not installed"}
            return
        event = await self.event(1_000_000, 100)
        zone_id = event["zones"][0]["zone_id"]
        cpu = self.meter()
        row = await asyncio.to_thread(
            run_redis_benchmark,
            self.redis_url,
            event["event_id"],
            zone_id,
            connections=connections,
            duration_s=duration_s,
        )
        held = (await self.stats(event["event_id"]))["held"]
        row |= {"non_2xx": row["requests"] - held, "socket_errors": 0}
        await self.record("d_redis_evalsha", row, event["event_id"], held, cpu=cpu)

    async def sold_out_phase(self, duration_s: int, connections: int) -> None:
        event = await self.event(1, 1)
        body = {"event_id": event["event_id"], "zone_id": event["zones"][0]["zone_id"]}
        headers = {**self._auth(self.tokens[0]), "Idempotency-Key": uuid.uuid4().hex}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(
                f"{self.gateway}/bookings/reserve", json={**body, "quantity": 1}
            ) as taken:
                assert taken.status == 201, await taken.text()
        cpu = self.meter()
        result = await asyncio.to_thread(
            run_wrk,
            self.gateway + "/bookings/reserve",
            method="POST",
            tokens=self.tokens[1:],
            bodies=[json.dumps({**body, "quantity": 1})],
            connections=connections,
            duration_s=duration_s,
        )
        row = result.row()
        row["non_2xx"] = sum(n for s, n in result.statuses.items() if s != "409")  # 409 is the ok
        await self.record("e_sold_out_gateway", row, event["event_id"], 1, cpu=cpu)

    async def join_phase(self, duration_s: int, connections: int) -> None:
        from booking.inventory.keys import queue_keys

        event = await self.event(1000, 4, queue=True)
        count = JOINS_PER_S_BUDGET * duration_s
        users = await insert_users(self.database_url, count, label="bench-join")
        tokens = [mint_token(self.keys, user_id) for user_id, _ in users]
        cpu = self.meter()
        result = await asyncio.to_thread(
            run_wrk,
            self.gateway + "/queue/join",
            method="POST",
            tokens=tokens,
            bodies=[json.dumps({"event_id": event["event_id"]})],
            connections=connections,
            duration_s=duration_s,
            distinct_tokens=True,
        )
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            waiting = int(await client.zcard(queue_keys(event["event_id"]).waiting))
        finally:
            await client.aclose()
        row = result.row()
        repeats = max(0, result.requests - count)
        row |= {
            "queued": waiting,
            "users_minted": count,
            "repeats": repeats,
        }
        await self.record("f_queue_join_gateway", row, event["event_id"], 0, cpu=cpu)
        joined = result.statuses.get("202", 0)
        if repeats == 0 and not joined <= waiting <= joined + connections:
            self.phases["f_queue_join_gateway"]["problems"].append(
                f"{waiting} queued for {result.statuses.get('202', 0)} joins answered"
            )
            self.phases["f_queue_join_gateway"]["no_oversell"] = False


async def run_bench(
    endpoints: Endpoints,
    database_url: str,
    duration_s: int,
    connections: int,
    warmup_s: int,
    phases: str = PHASES,
) -> dict[str, Any]:
    redis_url = redis_db_url(endpoints.redis_url, BENCH_REDIS_DB)
    flusher = await prepare_stores(database_url, redis_url, recreate=DATABASE)
    assert flusher is not None
    secret, internal = new_secrets("bench")
    env = service_env(secret, internal)
    # One booking service behind the gateway unless BOOKING_REPLICAS says otherwise: the bar
    # and the history compare the gateway's hop with one service (make run starts two).
    settings = StackSettings(
        gateway_port=free_port(),
        booking_port=free_port(),
        database_name=DATABASE,
        booking_replicas=int(os.environ.get("BOOKING_REPLICAS") or 1),
    )
    ours = Endpoints(redis_url, database_url, endpoints.kafka_bootstrap)
    stack = quiet_stack(RUN_DIR, env, settings, ours, ["gateway", "booking"])
    bench = Bench(settings.gateway_url, settings.booking_url, redis_url, database_url)
    stack.start()
    bench.pids = stack.pids()
    try:
        await bench.prepare(token_keys(secret))
        await bench.run(duration_s, connections, warmup_s, phases)
    finally:
        stack.stop()
        await flush_close(flusher)
    return {"phases": bench.phases}


def _machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version()}


@click.command()
@click.option("--duration", default=10, show_default=True, help="seconds per phase (10-20)")
@click.option("--connections", default=64, show_default=True)
@click.option("--warmup", default=2, show_default=True, help="seconds of warm-up for a, b, c")
@click.option(
    "--phases",
    default=PHASES,
    show_default=True,
    help="which phases to run, e.g. abc (ratios need both of their phases)",
)
def main(duration: int, connections: int, warmup: int, phases: str) -> None:
    """Run the bench phases once each, print the table, write the JSON result."""
    unknown = set(phases) - set(PHASES)
    if unknown or not phases:
        raise click.BadParameter(f"phases are letters of {PHASES!r}", param_hint="--phases")
    if shutil.which("wrk") is None:
        raise click.ClickException("wrk is not installed (observability/ensure-tools.sh)")
    started, started_at = time.monotonic(), datetime.now(UTC).isoformat()
    load_before = os.getloadavg()
    handle = start_infra(RUN_DIR, dict(os.environ), database_name=DATABASE, log=lambda _: None)
    try:
        database_url = with_database(handle.endpoints.database_url, DATABASE)
        results = asyncio.run(
            run_bench(handle.endpoints, database_url, duration, connections, warmup, phases)
        )
    finally:
        handle.stop()
    results |= {
        "started_at": started_at,
        "command": (
            f"python -m loadtests.bench --duration {duration} --connections {connections}"
            f" --phases {phases}"
        ),
        "machine": _machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    results |= bar_checks(results["phases"])
    out_dir = ROOT / "loadtests" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(results, indent=2))
    print_table(results)
    click.echo(f"written {out}")
    if any(phase.get("problems") for phase in results["phases"].values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
