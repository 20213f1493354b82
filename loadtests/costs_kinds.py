"""The request kinds `python -m loadtests.costs` (`loadtests/costs.py`) measures: join, stream,
pass, reserve and pay, each driven through the gateway while a window is open."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from typing import Any

import aiohttp
import asyncpg
import redis

from booking.inventory.keys import queue_keys
from loadtests.bench import Bench
from loadtests.costs_window import SPLIT_S, tree_rss_mb
from loadtests.streams import StreamsRun
from loadtests.streams_client import PositionWatch, percentile, to_ms, watch_summary
from loadtests.target import insert_users, mint_token
from loadtests.wrk import run_wrk

PAY_CONCURRENCY = 32
REFRESH_TICKS = 5  # admission ticks that move every open stream's place
REFRESH_PER_TICK = 100


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
        rss_before = {name: tree_rss_mb(pid) for name, pid in self.pids.items()}
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
        rss_open = {name: tree_rss_mb(pid) for name, pid in self.pids.items()}
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
