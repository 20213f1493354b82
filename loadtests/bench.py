"""`make bench`: the engine measured against the limits of its own parts, in one run.

Starts its own gateway + booking service (free loopback ports, rate limits raised but still in
the path) on the same servers `make run` uses, in a separate database, then drives each phase
with wrk at 64 connections and prints a table (and writes JSON to loadtests/results/).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import click

from booking.db import create_pool, migrate
from common.tokens import TokenKeys, issue_access_token
from loadtests.wrk import run_wrk
from stack.infra import start_infra
from stack.probes import ensure_database, with_database
from stack.processes import free_port
from stack.specs import StackSettings
from stack.supervisor import Stack

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run" / "bench"
DATABASE = "booking_rush_bench"
USERS = 2000


async def _make_users(database_url: str, count: int, role: str = "customer") -> list[str]:
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        ids = [uuid.uuid4() for _ in range(count)]
        await pool.executemany(
            """INSERT INTO users (user_id, email, name, role, password_hash)
               VALUES ($1, $2, 'bench', $3, 'not-a-real-hash')""",
            [(i, f"{i.hex}@bench.local", role) for i in ids],
        )
        return [str(i) for i in ids]
    finally:
        await pool.close()


def _token(keys: TokenKeys, user_id: str, role: str = "customer") -> str:
    return issue_access_token(keys, user_id=user_id, role=role, ttl_s=3600, now=datetime.now(UTC))


async def _create_event(base: str, organizer: str, capacity: int, max_per_user: int) -> Any:
    headers = {"Authorization": f"Bearer {organizer}"}
    body = {
        "name": f"bench-{uuid.uuid4().hex[:6]}",
        "venue": "Loopback",
        "starts_at": "2031-01-01T20:00:00Z",
        "sale_starts_at": "2021-01-01T10:00:00Z",
        "max_per_user": max_per_user,
        "currency": "EUR",
        "zones": [{"name": "Floor", "capacity": capacity, "price_minor": 1000}],
    }
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{base}/events", json=body) as created:
            event = await created.json()
            assert created.status == 201, event
        async with http.post(f"{base}/events/{event['event_id']}/publish") as published:
            assert published.status == 200, await published.text()
            return await published.json()


async def _stats(base: str, admin: str, event_id: str) -> dict[str, Any]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin}"}) as http:
        async with http.get(f"{base}/admin/events/{event_id}/stats") as answer:
            return await answer.json()


def _no_oversell(stats: dict[str, Any]) -> bool:
    return all(
        zone["available"] >= 0
        and zone["available"] + zone["held"] + zone["sold"] == zone["capacity"]
        and zone["postgres"]["held"] + zone["postgres"]["sold"] <= zone["capacity"]
        for zone in stats["zones"]
    )


def _reserve_bodies(event: dict[str, Any]) -> list[str]:
    body = {"event_id": event["event_id"], "zone_id": event["zones"][0]["zone_id"], "quantity": 1}
    return [json.dumps(body)]


async def run_bench(
    handle: Any, database_url: str, duration_s: int, connections: int
) -> dict[str, Any]:
    env = dict(os.environ)
    await migrate(database_url)
    secret = "bench-" + uuid.uuid4().hex * 2
    env.update(
        {
            "JWT_SECRET": secret,
            "INTERNAL_SECRET": "bench-internal-" + uuid.uuid4().hex * 2,
            "RATE_LIMIT_PER_IP": "1000000",
            "RATE_LIMIT_PER_USER": "1000000",
            "LOG_LEVEL": "WARNING",
            "DB_POOL_MAX": "10",
        }
    )
    settings = StackSettings(
        gateway_port=free_port(), booking_port=free_port(), database_name=DATABASE
    )
    endpoints = type(handle.endpoints)(
        handle.endpoints.redis_url, database_url, handle.endpoints.kafka_bootstrap
    )
    stack = Stack(
        RUN_DIR,
        env,
        settings=settings,
        endpoints=endpoints,
        names=["gateway", "booking"],
        run_setup=False,
        console=io.StringIO(),
    )
    keys = TokenKeys.from_env({"JWT_SECRET": secret}, need_signing=True)
    results: dict[str, Any] = {"phases": {}, "started_at": datetime.now(UTC).isoformat()}
    stack.start()
    try:
        gateway = settings.gateway_url + "/api/v1"
        direct = settings.booking_url + "/api/v1"
        (organizer_id,) = await _make_users(database_url, 1, "organizer")
        (admin_id,) = await _make_users(database_url, 1, "admin")
        organizer, admin = _token(keys, organizer_id, "organizer"), _token(keys, admin_id, "admin")
        tokens = [_token(keys, user) for user in await _make_users(database_url, USERS)]

        phases = [("a_reserve_gateway", gateway), ("b_reserve_direct", direct)]
        for name, base in phases:
            event = await _create_event(gateway, organizer, 1_000_000, 100)
            result = await asyncio.to_thread(
                run_wrk,
                f"{base}/bookings/reserve",
                method="POST",
                tokens=tokens,
                bodies=_reserve_bodies(event),
                connections=connections,
                duration_s=duration_s,
            )
            stats = await _stats(gateway, admin, event["event_id"])
            results["phases"][name] = {
                **result.row(),
                "no_oversell": _no_oversell(stats),
                "held": stats["held"],
            }

        sold_out = await _create_event(gateway, organizer, 1, 1)
        run_wrk(  # take the only seat
            f"{gateway}/bookings/reserve",
            method="POST",
            tokens=tokens[:1],
            bodies=_reserve_bodies(sold_out),
            connections=1,
            threads=1,
            duration_s=1,
        )
        result = run_wrk(
            f"{gateway}/bookings/reserve",
            method="POST",
            tokens=tokens,
            bodies=_reserve_bodies(sold_out),
            connections=connections,
            duration_s=duration_s,
        )
        stats = await _stats(gateway, admin, sold_out["event_id"])
        results["phases"]["e_sold_out_gateway"] = {
            **result.row(),
            "no_oversell": _no_oversell(stats),
            "held": stats["held"],
        }
    finally:
        stack.stop()
    phases_out = results["phases"]
    a, b = phases_out.get("a_reserve_gateway"), phases_out.get("b_reserve_direct")
    if a and b and b["rps"]:
        results["ratio_a_over_b"] = round(a["rps"] / b["rps"], 2)
    return results


def _print_table(results: dict[str, Any]) -> None:
    click.echo(f"{'phase':<22}{'rps':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'ok':>5}")
    for name, row in results["phases"].items():
        click.echo(
            f"{name:<22}{row['rps']:>9}{row['p50_ms']:>9}{row['p99_ms']:>9}"
            f"{row['non_2xx']:>9}{'yes' if row['no_oversell'] else 'NO':>5}"
        )
    for key, value in results.items():
        if key.startswith("ratio"):
            click.echo(f"{key}: {value}")


@click.command()
@click.option("--duration", default=10, show_default=True, help="seconds per phase")
@click.option("--connections", default=64, show_default=True)
def main(duration: int, connections: int) -> None:
    """Run every bench phase once and print the table."""
    started = time.monotonic()
    handle = start_infra(RUN_DIR, dict(os.environ), database_name=DATABASE)
    try:
        database_url = with_database(handle.endpoints.database_url, DATABASE)
        ensure_database(database_url)
        results = asyncio.run(run_bench(handle, database_url, duration, connections))
    finally:
        handle.stop()
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    out_dir = ROOT / "loadtests" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(results, indent=2))
    _print_table(results)
    click.echo(f"written {out}")


if __name__ == "__main__":
    main()
