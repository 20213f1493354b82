"""lua/rate_limit.lua on real Redis, with an explicit clock so refills are exact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

import lua


@pytest.fixture
async def keys(redis: aioredis.Redis, unique: str) -> AsyncIterator[tuple[str, str]]:
    pair = (f"test:rls:{unique}:ip", f"test:rls:{unique}:user")
    yield pair
    await redis.delete(*pair)


@pytest.fixture(scope="module")
def script(redis: aioredis.Redis) -> Any:
    return redis.register_script(lua.source("rate_limit"))


async def run(
    script: Any, keys: list[str], now: int | str, *budgets: tuple[float, int]
) -> list[Any]:
    args: list[Any] = [now, 1]
    for rate, burst in budgets:
        args += [rate, burst]
    return await script(keys=keys, args=args)


async def test_a_fresh_bucket_allows_its_burst_then_refuses(script: Any, keys: Any) -> None:
    now = 1_000_000
    answers = [await run(script, [keys[0]], now, (5, 10)) for _ in range(10)]
    assert [a[0] for a in answers] == [1] * 10
    assert [a[2] for a in answers] == list(range(9, -1, -1))  # remaining counts down
    assert answers[0][1] == 10  # limit = burst
    refused = await run(script, [keys[0]], now, (5, 10))
    assert refused[:3] == [0, "RATE_LIMITED", 1]
    assert refused[6] == 200  # one token at 5/s comes back in 200 ms
    assert refused[5] == 2000  # a full refill takes 2 s


async def test_buckets_refill_with_time_and_cap_at_burst(script: Any, keys: Any) -> None:
    now = 5_000_000
    for _ in range(10):
        await run(script, [keys[0]], now, (5, 10))
    assert (await run(script, [keys[0]], now + 199, (5, 10)))[0] == 0
    allowed = await run(script, [keys[0]], now + 200, (5, 10))
    assert allowed[0] == 1 and allowed[2] == 0
    much_later = await run(script, [keys[0]], now + 3_600_000, (5, 10))
    assert much_later[2] == 9  # capped at the burst of 10, minus this request


async def test_a_refusal_by_one_bucket_charges_neither(
    script: Any, keys: Any, redis: aioredis.Redis
) -> None:
    now = 9_000_000
    for _ in range(2):
        assert (await run(script, list(keys), now, (100, 100), (1, 2)))[0] == 1
    refused = await run(script, list(keys), now, (100, 100), (1, 2))
    assert refused[:3] == [0, "RATE_LIMITED", 2]  # the user bucket refused
    assert float(str(await redis.hget(keys[0], "t"))) == 98  # the IP bucket kept its tokens


async def test_idle_buckets_expire(script: Any, keys: Any, redis: aioredis.Redis) -> None:
    await run(script, [keys[0]], 1_000, (5, 10))
    ttl = await redis.pttl(keys[0])
    assert 1_000 < ttl <= 1_200  # 200 ms to refill one token, plus 1 s margin


async def test_server_clock_is_used_when_no_time_is_given(script: Any, keys: Any) -> None:
    answers = [await run(script, [keys[0]], "", (1, 2)) for _ in range(3)]
    assert [a[0] for a in answers] == [1, 1, 0]
