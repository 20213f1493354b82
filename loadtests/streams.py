"""`python -m loadtests.streams --streams 10000`: how many queue position streams (SSE) ONE
booking process holds, and how fast each admitted user gets its pass.

It starts its own booking service (one process, free loopback port, LOG_LEVEL=WARNING) with the
set-up the bench shares (`stack_setup.py`), on the servers `make run` uses (or starts them), with
its own PostgreSQL database and Redis db. Then:

1. a queued event (max_concurrent = every user, so only `release_per_tick` paces admission);
2. N users written straight into PostgreSQL, one token each, all joined (`POST /queue/join`);
3. N position streams opened (at most `--open-concurrency` opening at once) by a lean client:
   one asyncio Protocol per connection, no task per stream, parsing only what it needs;
4. the queue-release admission (`workers.queue_release.QueueRelease`, in this process) ticks
   until every stream got its `pass` (or failed, or `--max-seconds` passed).

It reports streams opened, time to the response headers (p50/p99), errors by kind, pass delivery
delay from admission (the tick's clock, `pass_expires_at - pass_ttl_s`) to receipt (p50/p99),
the booking process's RSS and CPU per phase, its Redis pub/sub connections (CLIENT LIST entries
of that process flagged `P`), and the wall time; writes JSON to loadtests/results/, and exits 1
when a stream failed or missed its pass.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import click

from common.limits import raise_open_files_limit
from loadtests.stack_setup import (
    flush_close,
    new_secrets,
    prepare_stores,
    quiet_stack,
    redis_db_url,
    say,
    service_env,
    token_keys,
)
from loadtests.streams_client import PositionWatch, watch_summary
from loadtests.streams_probes import ProcessMeter, pubsub_connections, streams_gauge
from loadtests.target import insert_users, mint_token
from stack.infra import Endpoints, start_infra
from stack.probes import with_database
from stack.processes import free_port
from stack.specs import StackSettings

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run" / "streams"
RESULTS_DIR = ROOT / "loadtests" / "results"
DATABASE = "booking_rush_streams"
REDIS_DB = 9
PASS_TTL_S = 1800  # longer than any run: no pass lapses while streams wait
JOIN_CONCURRENCY = 64


class StreamsRun:
    """One run against a started booking process."""

    def __init__(self, api: str, redis_url: str, database_url: str, keys: Any) -> None:
        self.api = api  # http://127.0.0.1:<port>/api/v1
        self.redis_url = redis_url
        self.database_url = database_url
        self.keys = keys

    async def queued_event(self, users: int, release_per_tick: int) -> str:
        ((organizer_id, _),) = await insert_users(self.database_url, 1, role="organizer")
        headers = {"Authorization": f"Bearer {mint_token(self.keys, organizer_id, 'organizer')}"}
        body = {
            "name": f"streams-{uuid.uuid4().hex[:6]}",
            "venue": "Loopback",
            "starts_at": "2031-01-01T20:00:00Z",
            "sale_starts_at": "2021-01-01T10:00:00Z",
            "max_per_user": 4,
            "currency": "EUR",
            "zones": [{"name": "Floor", "capacity": max(users, 1), "price_minor": 1000}],
            "queue": {
                "enabled": True,
                "max_concurrent": max(users, 1),
                "release_per_tick": release_per_tick,
                "pass_ttl_s": PASS_TTL_S,
            },
        }
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(f"{self.api}/events", json=body) as created:
                event = await created.json()
                assert created.status == 201, event
            async with http.post(f"{self.api}/events/{event['event_id']}/publish") as done:
                assert done.status == 200, await done.text()
        return str(event["event_id"])

    async def join_all(self, event_id: str, tokens: Sequence[str]) -> Counter[int]:
        statuses: Counter[int] = Counter()
        pending = iter(tokens)
        connector = aiohttp.TCPConnector(limit=JOIN_CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def joiner() -> None:
                for token in pending:
                    async with http.post(
                        f"{self.api}/queue/join",
                        json={"event_id": event_id},
                        headers={"Authorization": f"Bearer {token}"},
                    ) as answer:
                        statuses[answer.status] += 1
                        await answer.read()

            await asyncio.gather(*(joiner() for _ in range(JOIN_CONCURRENCY)))
        return statuses

    async def open_streams(
        self, event_id: str, tokens: Sequence[str], concurrency: int, watches: list[PositionWatch]
    ) -> None:
        """Opens one stream per token into `watches`; returns once each answered or failed."""
        loop = asyncio.get_running_loop()
        host_port = self.api.split("//", 1)[1].split("/", 1)[0]
        host, port = host_port.rsplit(":", 1)
        path = f"/api/v1/queue/position/{event_id}/stream"
        slots = asyncio.Semaphore(concurrency)

        async def open_one(token: str) -> None:
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {host_port}\r\nAccept: text/event-stream\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            ).encode()
            async with slots:
                watch = PositionWatch(request, PASS_TTL_S)
                watches.append(watch)
                try:
                    await loop.create_connection(lambda: watch, host, int(port))
                except OSError as exc:
                    watch.fail(f"connect: {exc.strerror or exc}")
                await watch.opened

        await asyncio.gather(*(open_one(token) for token in tokens))

    async def release_until_delivered(
        self, watches: Sequence[PositionWatch], tick_s: float, secret: str
    ) -> int:
        """Admission ticks until every stream got its pass or failed; the ticks run."""
        from workers.queue_release import QueueRelease
        from workers.settings import WorkerSettings

        release = QueueRelease.provisioned(
            WorkerSettings(redis_url=self.redis_url, interval_s=tick_s), secret=secret
        )
        await release.start()
        ticks = 0
        try:
            while not all(watch.finished for watch in watches):
                started = time.monotonic()
                await release.tick()
                ticks += 1
                await asyncio.sleep(max(0.0, tick_s - (time.monotonic() - started)))
        finally:
            await release.stop()
        return ticks


async def run_streams(
    endpoints: Endpoints,
    *,
    streams: int,
    release_per_tick: int,
    tick_s: float,
    open_concurrency: int,
    max_seconds: float,
    database: str,
    redis_db: int,
    via_gateway: bool = False,
) -> dict[str, Any]:
    database_url = with_database(endpoints.database_url, database)
    redis_url = redis_db_url(endpoints.redis_url, redis_db)
    flusher = await prepare_stores(database_url, redis_url)
    assert flusher is not None
    secret, internal = new_secrets("streams")
    # Through the gateway its rate limits are raised (in the path, never hit); alone, the booking
    # process has no limiter.
    env = service_env(secret, internal, raise_limits=via_gateway)
    settings = StackSettings(
        booking_port=free_port(),
        booking_replicas=1,  # one booking process: every stream on the process measured
        gateway_port=free_port(),
        database_name=database,
    )
    ours = Endpoints(redis_url, database_url, endpoints.kafka_bootstrap)
    names = ["booking", "gateway"] if via_gateway else ["booking"]
    stack = quiet_stack(RUN_DIR, env, settings, ours, names)
    keys = token_keys(secret)
    front = settings.gateway_url if via_gateway else settings.booking_url
    run = StreamsRun(front + "/api/v1", redis_url, database_url, keys)
    result: dict[str, Any] = {"timed_out": False, "via_gateway": via_gateway}
    watches: list[PositionWatch] = []
    stack.start()
    meter = ProcessMeter(stack.pids()["booking"])
    sampler = asyncio.create_task(meter.sample_forever())
    gateway_meter = ProcessMeter(stack.pids()["gateway"]) if via_gateway else None
    gateway_sampler = asyncio.create_task(gateway_meter.sample_forever()) if gateway_meter else None
    try:
        async with asyncio.timeout(max_seconds):
            event_id = await run.queued_event(streams, release_per_tick)
            users = await insert_users(database_url, streams, label="streams")
            tokens = [mint_token(keys, user_id) for user_id, _ in users]
            say(f"joining {streams} users")
            started = time.monotonic()
            joins = await run.join_all(event_id, tokens)
            result["join_seconds"] = round(time.monotonic() - started, 1)
            result["join_statuses"] = dict(joins)
            result["rss_mb_before_streams"] = meter.rss_mb()
            meter.mark("open")
            say(f"opening {streams} streams")
            started = time.monotonic()
            await run.open_streams(event_id, tokens, open_concurrency, watches)
            result["open_seconds"] = round(time.monotonic() - started, 1)
            meter.mark("opened")
            await asyncio.sleep(1)  # settled: the RSS with every stream open
            result["rss_mb_streams_open"] = meter.rss_mb()
            result |= await pubsub_connections(redis_url, meter.pid)
            result["streams_open_in_booking"] = await streams_gauge(settings.booking_url)
            meter.mark("release")
            say("admitting everyone")
            started = time.monotonic()
            result["ticks"] = await run.release_until_delivered(watches, tick_s, internal)
            result["release_seconds"] = round(time.monotonic() - started, 1)
            meter.mark("end")
            if gateway_meter is not None:
                result["gateway_cpu_s"] = round(gateway_meter.cpu_s(), 2)
    except TimeoutError:
        result["timed_out"] = True
    finally:
        sampler.cancel()
        if gateway_sampler is not None:
            gateway_sampler.cancel()
        for watch in watches:
            watch.close()
        stack.stop()
        await flush_close(flusher)
    result["rss_mb_peak"] = round(meter.peak_rss_mb, 1)
    if gateway_meter is not None:
        result["gateway_rss_mb_peak"] = round(gateway_meter.peak_rss_mb, 1)
    marks = meter.marks
    if "opened" in marks:
        result["cpu_s_open"] = round(marks["opened"] - marks["open"], 2)
    if "end" in marks:
        result["cpu_s_release"] = round(marks["end"] - marks["release"], 2)
        result["cpu_share_release"] = round(
            result["cpu_s_release"] / max(result["release_seconds"], 0.001), 2
        )
    return result | watch_summary(watches)


def _raise_open_files_limit(streams: int) -> None:
    """This process and the booking process it starts each hold one socket per stream."""
    wanted = streams + 1024
    allowed = raise_open_files_limit()
    if wanted > allowed:
        raise click.ClickException(f"ulimit -n allows {allowed} open files; {wanted} are needed")


@click.command()
@click.option("--streams", default=1000, show_default=True, help="position streams to open")
@click.option("--release-per-tick", default=500, show_default=True, help="admissions per tick")
@click.option("--tick", "tick_s", default=1.0, show_default=True, help="seconds per tick")
@click.option("--open-concurrency", default=500, show_default=True, help="streams opening at once")
@click.option("--max-seconds", default=300.0, show_default=True, help="the whole run's bound")
@click.option("--database", default=DATABASE, show_default=True, help="PostgreSQL database")
@click.option("--redis-db", default=REDIS_DB, show_default=True, help="Redis db (flushed)")
@click.option("--results-dir", type=click.Path(path_type=Path), default=RESULTS_DIR)
@click.option(
    "--via-gateway",
    is_flag=True,
    help="join and open the streams through a gateway in front of the booking process",
)
def main(
    streams: int,
    release_per_tick: int,
    tick_s: float,
    open_concurrency: int,
    max_seconds: float,
    database: str,
    redis_db: int,
    results_dir: Path,
    via_gateway: bool,
) -> None:
    """Open STREAMS queue position streams on one booking process and admit every user."""
    import uvloop

    _raise_open_files_limit(streams)
    started, started_at = time.monotonic(), datetime.now(UTC)
    load_before = os.getloadavg()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    handle = start_infra(RUN_DIR, dict(os.environ), database_name=database, log=lambda _: None)
    try:
        result = uvloop.run(
            run_streams(
                handle.endpoints,
                streams=streams,
                release_per_tick=release_per_tick,
                tick_s=tick_s,
                open_concurrency=open_concurrency,
                max_seconds=max_seconds,
                database=database,
                redis_db=redis_db,
                via_gateway=via_gateway,
            )
        )
    finally:
        handle.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = usage.ru_utime + usage.ru_stime - usage_before.ru_utime - usage_before.ru_stime
    result = {
        "started_at": started_at.isoformat(),
        "command": (
            f"python -m loadtests.streams --streams {streams} --release-per-tick "
            f"{release_per_tick} --tick {tick_s} --open-concurrency {open_concurrency}"
            + (" --via-gateway" if via_gateway else "")
        ),
        "streams": streams,
        **result,
        "client_cpu_s": round(client_cpu, 2),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(time.monotonic() - started, 1),
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"streams-{started_at:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2))
    click.echo(json.dumps(result, indent=2))
    click.echo(f"written {out}")
    if result["errors"] or result["passes_received"] < streams:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
