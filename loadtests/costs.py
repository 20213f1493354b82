"""`python -m loadtests.costs`: the unit costs the capacity model (docs/scaling.md,
`loadtests/simulate.py`) is driven by, measured on this machine, written to loadtests/costs.json.

It starts its OWN Redis, PostgreSQL and broker (`start_infra(own_servers=True)`, free loopback
ports), so Redis's INFO counters, its SLOWLOG and PostgreSQL's statistics count only this run,
not other users of a shared server; then one gateway + one booking process (the bench's `Stack`
set-up, rate limits raised but in the path, LOG_LEVEL=WARNING). Per request kind, one short
window with the processes' CPU counters (psutil, like `make bench`), Redis's INFO cpu and
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

import asyncio
import hashlib
import json
import os
import platform
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import click
import psutil
import redis

from booking.inventory.keys import queue_keys
from loadtests.bench import Bench
from loadtests.cpu import CpuMeter
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
from loadtests.streams import StreamsRun
from loadtests.streams_client import PositionWatch, percentile, to_ms, watch_summary
from loadtests.target import insert_users, mint_token
from loadtests.wrk import run_wrk
from stack.infra import Endpoints, start_infra
from stack.probes import with_database
from stack.processes import free_port
from stack.specs import StackSettings

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run" / "costs"
OUT = ROOT / "loadtests" / "costs.json"
DATABASE = "booking_rush_costs"
REDIS_DB = 0  # our own Redis server: nobody else's data
PAY_CONCURRENCY = 32
REFRESH_TICKS = 5  # admission ticks that move every open stream's place
REFRESH_PER_TICK = 100
PG_SETTLE_S = 11.0
SPLIT_S = 3  # seconds of the SLOWLOG window after each CPU window
EVENT_TAG = b"{ev:"


def _script_names() -> dict[str, str]:
    import lua

    return {hashlib.sha1(lua.source(name).encode()).hexdigest(): name for name in lua.names()}


def _redis_cpu_s(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


class RootsMeter(CpuMeter):
    """CpuMeter over the given process trees only (our Redis and PostgreSQL are roots here, so
    another user's servers on the machine are never counted)."""

    def _scan(self) -> dict[int, tuple[str, float]]:
        found: dict[int, tuple[str, float]] = {}
        for group, pid in self.roots.items():
            try:
                root = psutil.Process(pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for process in tree:
                try:
                    times = process.cpu_times()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                found[process.pid] = (group, float(times.user + times.system))
        return found


@dataclass
class Window:
    """One measured window: CPU by process, Redis counters and commands, PostgreSQL writes."""

    roots: dict[str, int]
    redis_url: str
    database_url: str
    scripts: dict[str, str]
    slowlog: bool = False  # on, it costs Redis CPU: a split window is not a CPU window
    _cpu: RootsMeter | None = None
    _redis_before: float = 0.0
    _calls_before: dict[str, int] = field(default_factory=dict)
    _pg_before: dict[str, int] = field(default_factory=dict)
    _started: float = 0.0

    async def start(self, *, settle: bool = False) -> None:
        """`settle`: first wait until PostgreSQL reported what ran before (set-up, warm-up)."""
        if settle:
            await asyncio.sleep(PG_SETTLE_S)
        self._pg_before = await self._pg()
        client = redis.Redis.from_url(self.redis_url)
        try:
            client.slowlog_reset()
            if self.slowlog:
                client.config_set("slowlog-max-len", 2_000_000)
                client.config_set("slowlog-log-slower-than", 0)
            self._calls_before = self._calls(client)
            self._redis_before = _redis_cpu_s(client)
        finally:
            client.close()
        self._cpu = RootsMeter(self.roots)
        self._cpu.start()
        self._started = time.monotonic()

    async def stop(self, requests: int) -> dict[str, Any]:
        assert self._cpu is not None
        cpu = self._cpu.stop()
        elapsed = time.monotonic() - self._started
        client = redis.Redis.from_url(self.redis_url)
        try:
            redis_cpu = _redis_cpu_s(client) - self._redis_before
            calls = self._calls(client)
            log: list[dict[str, Any]] = []
            if self.slowlog:
                client.config_set("slowlog-log-slower-than", 10_000)
                log = client.slowlog_get(-1)
                client.slowlog_reset()
        finally:
            client.close()
        # A busy PostgreSQL backend reports its statistics at most once a second, an idle one
        # up to 10 s later: wait that out so this window's writes are all counted here.
        await asyncio.sleep(PG_SETTLE_S)
        pg_after = await self._pg()
        pg = {k: pg_after[k] - self._pg_before.get(k, 0) for k in pg_after}
        pg = {k: v for k, v in pg.items() if v or not k.startswith("rows:")}
        n = max(requests, 1)
        commands = {
            name: count - self._calls_before.get(name, 0)
            for name, count in calls.items()
            if count - self._calls_before.get(name, 0) > 0
        }
        return {
            "requests": requests,
            "elapsed_s": round(elapsed, 2),
            "requests_per_s": round(requests / max(elapsed, 1e-9), 1),
            "cpu_us_per_request": {g: round(s * 1e6 / n, 1) for g, s in cpu.items()},
            "redis_cpu_us_per_request_info": round(redis_cpu * 1e6 / n, 1),
            "redis_commands_per_request": {k: round(v / n, 3) for k, v in sorted(commands.items())},
            **({"redis": self._split(log, n)} if self.slowlog else {}),
            "postgres_per_request": {k: round(v / n, 3) for k, v in pg.items()},
        }

    @staticmethod
    def _calls(client: redis.Redis) -> dict[str, int]:
        stats = client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}

    def _split(self, log: list[dict[str, Any]], n: int) -> dict[str, Any]:
        """Per request: the commands clients sent (scripts by name) and their execution µs, on
        the event's shard (an argument carries the `{ev:` hash tag) or spread over shards (the
        rest); commands run inside a script (client `?:0`) are counted apart, their time is
        already in the script's."""
        event: Counter[str] = Counter()
        spread: Counter[str] = Counter()
        inner: Counter[str] = Counter()
        exec_us: Counter[str] = Counter()
        event_us = spread_us = 0
        for entry in log:
            command = entry["command"]
            words = command.split(b" ")
            name = words[0].decode(errors="replace").lower()
            if name in {"config", "slowlog", "info", "client", "ping"}:
                continue
            if entry.get("client_address") in (b"?:0", "?:0"):
                inner[name] += 1
                continue
            if name == "evalsha" and len(words) > 1:
                name = self.scripts.get(words[1].decode(errors="replace").lower(), "evalsha:?")
            exec_us[name] += int(entry["duration"])
            if EVENT_TAG in command:
                event[name] += 1
                event_us += int(entry["duration"])
            else:
                spread[name] += 1
                spread_us += int(entry["duration"])
        return {
            "event_shard_calls": {k: round(v / n, 3) for k, v in sorted(event.items())},
            "spread_calls": {k: round(v / n, 3) for k, v in sorted(spread.items())},
            "event_shard_calls_total": round(sum(event.values()) / n, 3),
            "spread_calls_total": round(sum(spread.values()) / n, 3),
            "event_shard_exec_us": round(event_us / n, 1),
            "spread_exec_us": round(spread_us / n, 1),
            "exec_us_by_call": {k: round(v / n, 1) for k, v in sorted(exec_us.items())},
            "commands_inside_scripts": round(sum(inner.values()) / n, 3),
            "slowlog_entries": len(log),
        }

    async def _pg(self) -> dict[str, int]:
        """Commits and rows written in our database, and rows written per table (`rows:<t>`;
        outbox inserts are the messages the relay will publish to the broker)."""
        conn = await asyncpg.connect(self.database_url)
        try:
            row = await conn.fetchrow(
                """SELECT xact_commit, tup_inserted, tup_updated, tup_deleted
                   FROM pg_stat_database WHERE datname = current_database()"""
            )
            tables = await conn.fetch(
                """SELECT relname, n_tup_ins + n_tup_upd + n_tup_del AS written,
                          n_tup_ins AS inserted
                   FROM pg_stat_user_tables"""
            )
        finally:
            await conn.close()
        assert row is not None
        counts = {
            "commits": int(row["xact_commit"]),
            "rows_inserted": int(row["tup_inserted"]),
            "rows_updated": int(row["tup_updated"]),
            "rows_deleted": int(row["tup_deleted"]),
        }
        for table in tables:
            counts[f"rows:{table['relname']}"] = int(table["written"])
            if table["relname"] == "outbox":
                counts["outbox_messages"] = int(table["inserted"])
        return counts


def _rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        total += child.memory_info().rss
    return total / 2**20


class Costs:
    def __init__(self, bench: Bench, window: Any, pids: dict[str, int], connections: int) -> None:
        self.bench, self.window, self.pids, self.connections = bench, window, pids, connections
        self.results: dict[str, Any] = {}

    async def _wrk(self, url: str, tokens: list[str], body: str, seconds: int, **kw: Any) -> Any:
        return await asyncio.to_thread(
            run_wrk,
            url,
            method="POST",
            tokens=tokens,
            bodies=[body],
            connections=self.connections,
            duration_s=seconds,
            **kw,
        )

    async def _windows(
        self, name: str, url: str, tokens: list[str], body: str, duration_s: int, **kw: Any
    ) -> None:
        """A CPU window of `duration_s`, then a SPLIT_S window with the SLOWLOG on (the Redis
        calls per request, by shard); tokens are used in order when `distinct_tokens`."""
        window = self.window()
        await window.start(settle=name == "reserve")  # after its warm-up
        result = await self._wrk(url, tokens, body, duration_s, **kw)
        row = await window.stop(result.requests)
        row |= {"statuses": result.statuses, "wrk_p99_ms": result.row().get("p99_ms")}
        rest = tokens[result.requests :] if kw.get("distinct_tokens") else tokens
        split = self.window(slowlog=True)
        await split.start()
        split_result = await self._wrk(url, rest, body, SPLIT_S, **kw)
        split_row = await split.stop(split_result.requests)
        row["redis"] = split_row["redis"] | {
            "window_requests": split_result.requests,
            "window_redis_cpu_us_per_request_info": split_row["redis_cpu_us_per_request_info"],
        }
        self.results[name] = row

    async def join(self, duration_s: int, joins_per_s: int) -> None:
        event = await self.bench.event(1000, 4, queue=True)
        count = joins_per_s * (duration_s + SPLIT_S)
        users = await insert_users(self.bench.database_url, count, label="j")
        tokens = [mint_token(self.bench.keys, user_id) for user_id, _ in users]
        body = json.dumps({"event_id": event["event_id"]})
        url = self.bench.gateway + "/queue/join"
        await self._windows("join", url, tokens, body, duration_s, distinct_tokens=True)

    async def reserve(self, duration_s: int) -> None:
        event = await self.bench.event(1_000_000, 100)
        body = json.dumps(
            {"event_id": event["event_id"], "zone_id": event["zones"][0]["zone_id"], "quantity": 1}
        )
        url = self.bench.gateway + "/bookings/reserve"
        await self._wrk(url, self.bench.tokens, body, 2)  # warm-up
        await self._windows("reserve", url, self.bench.tokens, body, duration_s)

    async def pay(self, count: int) -> None:
        row = await self._pay_round(count, slowlog=False)
        split = await self._pay_round(max(1, count // 3), slowlog=True)
        row["redis"] = split["redis"] | {
            "window_requests": split["requests"],
            "window_redis_cpu_us_per_request_info": split["redis_cpu_us_per_request_info"],
        }
        self.results["pay"] = row

    async def _pay_round(self, count: int, *, slowlog: bool) -> dict[str, Any]:
        event = await self.bench.event(count, 4)
        zone_id = event["zones"][0]["zone_id"]
        users = await insert_users(self.bench.database_url, count, label="p")
        tokens = [mint_token(self.bench.keys, user_id) for user_id, _ in users]
        api = self.bench.gateway
        bookings: list[tuple[str, str]] = []
        lookup: dict[str, str] = {}
        statuses: Counter[int] = Counter()
        connector = aiohttp.TCPConnector(limit=PAY_CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def each(items: list[str], send: Any) -> None:
                pending = iter(items)

                async def worker() -> None:
                    for item in pending:
                        await send(item)

                await asyncio.gather(*(worker() for _ in range(PAY_CONCURRENCY)))

            async def reserve_one(token: str) -> None:
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
                body = {"event_id": event["event_id"], "zone_id": zone_id, "quantity": 1}
                async with http.post(f"{api}/bookings/reserve", json=body, headers=headers) as r:
                    answer = await r.json()
                    assert r.status == 201, answer
                    bookings.append((token, answer["booking_id"]))

            async def pay_one(token: str) -> None:
                booking_id = lookup[token]
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
                body = {"booking_id": booking_id, "test_outcome": "succeed"}
                async with http.post(f"{api}/payments", json=body, headers=headers) as r:
                    statuses[r.status] += 1
                    await r.read()

            await each(tokens, reserve_one)
            already = await self._webhooks_delivered(0, 0.0)
            lookup.update(bookings)
            window = self.window(slowlog=slowlog)
            await window.start(settle=True)  # after the reserves it pays for
            started = time.monotonic()
            await each(tokens, pay_one)
            delivered = await self._webhooks_delivered(already + count, started + 60) - already
            row = await window.stop(count)
        return row | {"statuses": dict(statuses), "webhooks_delivered": delivered}

    async def _webhooks_delivered(self, count: int, deadline: float) -> int:
        conn = await asyncpg.connect(self.bench.database_url)
        try:
            while True:
                done = int(
                    await conn.fetchval(
                        "SELECT count(*) FROM mock_webhooks WHERE delivered_at IS NOT NULL"
                    )
                )
                if done >= count or time.monotonic() > deadline:
                    return done
                await asyncio.sleep(0.1)
        finally:
            await conn.close()

    async def streams(self, count: int, internal_secret: str) -> None:
        """`count` streams through the gateway behind REFRESH_TICKS x REFRESH_PER_TICK users
        who joined first: the refresh window admits only those, so every open stream's place
        moves (a `position` event each) at every tick; then everyone is admitted."""
        run = StreamsRun(
            self.bench.gateway, self.bench.redis_url, self.bench.database_url, self.bench.keys
        )
        front = REFRESH_TICKS * REFRESH_PER_TICK
        event_id = await run.queued_event(count + front, REFRESH_PER_TICK)
        users = await insert_users(self.bench.database_url, front + count, label="s")
        tokens = [mint_token(self.bench.keys, user_id) for user_id, _ in users]
        joins = await run.join_all(event_id, tokens[:front])
        joins += await run.join_all(event_id, tokens[front:])
        tokens = tokens[front:]
        await asyncio.sleep(1)
        rss_before = {name: _rss_mb(pid) for name, pid in self.pids.items()}
        watches: list[PositionWatch] = []
        first = count * 3 // 4  # the CPU window; the rest open with the SLOWLOG on
        window = self.window()
        await window.start()
        started = time.monotonic()
        await run.open_streams(event_id, tokens[:first], 500, watches)
        open_s = time.monotonic() - started
        row = await window.stop(first)
        split = self.window(slowlog=True)
        await split.start()
        await run.open_streams(event_id, tokens[first:], 500, watches)
        split_row = await split.stop(count - first)
        row["redis"] = split_row["redis"] | {
            "window_requests": count - first,
            "window_redis_cpu_us_per_request_info": split_row["redis_cpu_us_per_request_info"],
        }
        await asyncio.sleep(2)
        rss_open = {name: _rss_mb(pid) for name, pid in self.pids.items()}
        opened = sum(1 for w in watches if w.status == 200)
        open_times = [w.open_s for w in watches if w.open_s is not None]
        row |= {
            "join_statuses": dict(joins),
            "streams_opened": opened,
            "open_seconds_cpu_window": round(open_s, 2),
            "open_ms_p50": to_ms(percentile(open_times, 0.5)),
            "open_ms_p99": to_ms(percentile(open_times, 0.99)),
            "rss_mb_before": {k: round(v, 1) for k, v in rss_before.items()},
            "rss_mb_open": {k: round(v, 1) for k, v in rss_open.items()},
            "bytes_per_stream": {
                k: round((rss_open[k] - rss_before[k]) * 2**20 / max(opened, 1)) for k in rss_before
            },
        }
        self.results["stream"] = row
        # refresh: REFRESH_TICKS ticks that admit only front users
        events_before = sum(w.events for w in watches)
        window = self.window()
        await window.start()
        await self._ticks(REFRESH_TICKS, internal_secret)
        await asyncio.sleep(0.5)  # the last tick's refresh reaches the clients
        updates = sum(w.events for w in watches) - events_before
        row = await window.stop(max(updates, 1))
        row |= {
            "ticks": REFRESH_TICKS,
            "streams_waiting": opened,
            "position_events_received": updates,
            "position_events_per_stream_per_tick": round(
                updates / max(opened * REFRESH_TICKS, 1), 3
            ),
        }
        self.results["refresh"] = row
        # pass: everyone admitted, count / 5 per tick
        client = redis.Redis.from_url(self.bench.redis_url)
        try:
            client.hset(queue_keys(event_id).queue, "release_per_tick", max(1, count // 5))
        finally:
            client.close()
        events_before = sum(w.events for w in watches)
        window = self.window()
        await window.start()
        started = time.monotonic()
        ticks = await run.release_until_delivered(watches, 1.0, internal_secret)
        release_s = time.monotonic() - started
        summary = watch_summary(watches)
        passes = summary["passes_received"]
        row = await window.stop(passes)
        booking_cpu_s = row["cpu_us_per_request"].get("booking", 0.0) * passes / 1e6
        gateway_cpu_s = row["cpu_us_per_request"].get("gateway", 0.0) * passes / 1e6
        row |= {
            "ticks": ticks,
            "release_per_tick": max(1, count // 5),
            "release_seconds": round(release_s, 2),
            "passes_received": passes,
            "errors": summary["errors"],
            "errors_by_kind": summary["errors_by_kind"],
            "events_received_in_window": summary["events_received"] - events_before,
            "pass_delay_ms": summary["pass_delay_ms"],
            "passes_per_booking_cpu_s": round(passes / max(booking_cpu_s, 1e-9)),
            "passes_per_gateway_cpu_s": round(passes / max(gateway_cpu_s, 1e-9)),
        }
        for watch in watches:
            watch.close()
        self.results["pass"] = row

    async def _ticks(self, count: int, secret: str) -> None:
        from workers.queue_release import QueueRelease
        from workers.settings import WorkerSettings

        release = QueueRelease.provisioned(
            WorkerSettings(redis_url=self.bench.redis_url, interval_s=1.0), secret=secret
        )
        await release.start()
        try:
            for _ in range(count):
                started = time.monotonic()
                await release.tick()
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        finally:
            await release.stop()


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
        scripts = _script_names()

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
