"""The limits the engine is measured against: (c) the bare Starlette endpoint (the Python stack
doing one EVALSHA per request) and (d) redis-benchmark running the shipped reserve script
(Redis itself). Both reserve on events the bench created, so their holds count in the same
inventory checks as the service's."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import urlsplit

import redis

import lua
from booking.inventory.keys import script_keys
from booking.inventory.scripts import rfc3339_of_ms
from stack.processes import free_port, stop_pid

REDIS_BENCH_REQUESTS_PER_S = 15_000  # a budget guess to keep (d) near the phase length


class BareServer(NamedTuple):
    url: str
    pid: int


@contextmanager
def bare_server(redis_url: str, *, workers: int = 1) -> Iterator[BareServer]:
    """loadtests.bare_reserve under uvicorn (uvloop, httptools); yields its base URL and PID."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "loadtests.bare_reserve:app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    env = {**os.environ, "BARE_REDIS_URL": redis_url}
    process = subprocess.Popen(command, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base + "/api/v1/health", process)
        yield BareServer(base, process.pid)
    finally:
        stop_pid(process.pid, process=process, group=True)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the bare endpoint exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the bare endpoint did not answer at {url}")


def reserve_command(sha: str, event_id: str, zone_id: str, now_ms: int) -> list[str]:
    """EVALSHA of reserve with the event's keys; ids and keys randomised per call (-r is an
    int in redis-benchmark, so each id joins two 9-digit draws to keep collisions away)."""
    keys = list(script_keys(event_id))
    args = [
        "bench-__rand_int__-__rand_int__",  # booking_id (each placeholder drawn apart)
        "user-__rand_int__-__rand_int__",  # user_id
        zone_id,
        "1",  # quantity
        "",  # seats (general admission)
        "idem-__rand_int__-__rand_int__",
        "0123456789abcdef0123456789abcdef",  # fingerprint
        "",  # queue pass
        str(now_ms),
        "600000",  # ttl_ms
        rfc3339_of_ms(now_ms),
    ]
    return ["EVALSHA", sha, str(len(keys)), *keys, *args]


def run_redis_benchmark(
    redis_url: str,
    event_id: str,
    zone_id: str,
    *,
    connections: int,
    duration_s: int,
    requests: int | None = None,
) -> dict[str, float | int | str]:
    """redis-benchmark at `connections` clients; a request count sized to ~duration_s.

    The script's refusals are replies, not Redis errors: the caller counts the holds written."""
    client = redis.Redis.from_url(redis_url)
    try:
        sha = client.script_load(lua.source("reserve"))
        parts = urlsplit(redis_url)
        requests = requests or REDIS_BENCH_REQUESTS_PER_S * duration_s
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        db = parts.path.strip("/") or "0"
        command = [
            "redis-benchmark", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379),
            "--dbnum", db, "-c", str(connections), "-n", str(requests), "-r", "1000000000",
            "--csv", *reserve_command(sha, event_id, zone_id, now_ms),
        ]  # fmt: skip
        if parts.password:
            command[1:1] = ["-a", parts.password]
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=duration_s * 6 + 60, check=True
        )
    finally:
        client.close()
    return {**parse_redis_benchmark(completed.stdout), "requests": requests}


def parse_redis_benchmark(output: str) -> dict[str, float | int | str]:
    """The CSV line redis-benchmark --csv prints for a custom command."""
    rows = list(csv.reader(io.StringIO(output.strip())))
    header, values = rows[0], rows[-1]
    row = dict(zip(header, values, strict=True))
    return {
        "rps": round(float(row["rps"]), 1),
        "p50_ms": float(row["p50_latency_ms"]),
        "p99_ms": float(row["p99_latency_ms"]),
        "avg_ms": float(row["avg_latency_ms"]),
    }
