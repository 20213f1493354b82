"""The measured window of `python -m loadtests.costs` (`loadtests/costs.py`): CPU by process
(our own servers' trees only), Redis's INFO counters and a SLOWLOG split by shard, PostgreSQL's
writes (pg_stat_database) read before and after."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import psutil
import redis

from loadtests.cpu import CpuMeter

PG_SETTLE_S = 11.0
SPLIT_S = 3  # seconds of the SLOWLOG window after each CPU window
EVENT_TAG = b"{ev:"


def script_names() -> dict[str, str]:
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


def tree_rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        total += child.memory_info().rss
    return total / 2**20
