"""The bench's limit phases really do what they claim, on the real Redis: the bare endpoint
(c) and redis-benchmark (d) each write one hold per request through the shipped reserve
script, and wrk's report is read back right."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from booking.inventory.records import EventSpec, ZoneSpec
from booking.inventory.scripts import Scripts
from loadtests.bench_limits import bare_server, run_redis_benchmark
from loadtests.wrk import run_wrk


@pytest.fixture
async def event(redis_url: str) -> AsyncIterator[tuple[str, str, Scripts]]:
    client = aioredis.Redis.from_url(redis_url)
    scripts = Scripts(client)
    await scripts.load()
    event_id, zone_id = str(uuid.uuid4()), str(uuid.uuid4())
    zone = ZoneSpec(zone_id=zone_id, price_minor=1000, capacity=100_000)
    await scripts.load_event(EventSpec(event_id=event_id, zones=(zone,), max_per_user=4))
    try:
        yield event_id, zone_id, scripts
    finally:
        from booking.inventory.keys import event_keys

        await client.delete(*event_keys(event_id).stored())
        await scripts.aclose()
        await client.aclose()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
async def test_bare_endpoint_holds_once_per_answer(
    redis_url: str, event: tuple[str, str, Scripts]
) -> None:
    event_id, zone_id, scripts = event
    body = f'{{"event_id": "{event_id}", "zone_id": "{zone_id}", "quantity": 1}}'
    with bare_server(redis_url) as bare:
        result = run_wrk(
            bare.url + "/api/v1/bookings/reserve",
            method="POST",
            bodies=[body],
            connections=8,
            threads=1,
            duration_s=2,
        )
    assert result.requests > 50, result
    assert result.statuses == {"201": result.requests}, result
    held = (await scripts.availability(event_id))[zone_id].held
    assert result.requests <= held <= result.requests + 8


@pytest.mark.skipif(shutil.which("redis-benchmark") is None, reason="no redis-benchmark")
async def test_redis_benchmark_writes_a_distinct_hold_per_call(
    redis_url: str, event: tuple[str, str, Scripts]
) -> None:
    event_id, zone_id, scripts = event
    row = run_redis_benchmark(
        redis_url, event_id, zone_id, connections=8, duration_s=1, requests=3000
    )
    assert float(row["rps"]) > 0
    zone = (await scripts.availability(event_id))[zone_id]
    assert zone.held == 3000
    assert zone.available == 100_000 - 3000
