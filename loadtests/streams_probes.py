"""What `make streams` (`loadtests/streams.py`) reads of the booking process under test: its RSS
and CPU, its Redis (pub/sub) connections and its own gauge of open streams."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import psutil
import redis.asyncio as aioredis

SAMPLE_S = 0.5


@dataclass
class ProcessMeter:
    """RSS and CPU of one process, sampled while the run goes on."""

    pid: int
    peak_rss_mb: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._process = psutil.Process(self.pid)

    def cpu_s(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def rss_mb(self) -> float:
        rss = self._process.memory_info().rss / 2**20
        self.peak_rss_mb = max(self.peak_rss_mb, rss)
        return round(rss, 1)

    def mark(self, name: str) -> None:
        self.marks[name] = self.cpu_s()

    async def sample_forever(self) -> None:
        while True:
            self.rss_mb()
            await asyncio.sleep(SAMPLE_S)


async def pubsub_connections(redis_url: str, pid: int) -> dict[str, Any]:
    """The process's Redis connections (matched by local port in CLIENT LIST): how many, and
    which of them subscribe (flag `P`, or channels or patterns), with their channel count."""
    ports = {
        f"127.0.0.1:{conn.laddr.port}"
        for conn in psutil.Process(pid).net_connections(kind="tcp")
        if conn.raddr and conn.status == psutil.CONN_ESTABLISHED
    }
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        mine = [entry for entry in await client.client_list() if entry["addr"] in ports]
    finally:
        await client.aclose()
    subscribers = [
        entry
        for entry in mine
        if "P" in entry["flags"] or int(entry.get("sub", 0)) or int(entry.get("psub", 0))
    ]
    return {
        "redis_connections": len(mine),
        "pubsub_connections": len(subscribers),
        "pubsub_client_names": sorted(entry.get("name", "") for entry in subscribers),
        "pubsub_channels": sum(int(entry.get("sub", 0)) for entry in subscribers),
    }


async def streams_gauge(booking_url: str) -> float | None:
    """The booking process's own count of open position streams (its /metrics)."""
    async with aiohttp.ClientSession() as http, http.get(f"{booking_url}/metrics") as answer:
        text = await answer.text()
    for line in text.splitlines():
        if line.startswith("booking_rush_queue_sse_connections "):
            return float(line.split()[1])
    return None
