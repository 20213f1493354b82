"""Queue fairness across instances, on the cluster: buyers join through two gateways (so two
booking processes), wait on streams spread over both, and two queue-release copies admit them.
Passes are minted in join order, tick by tick; never more than max_concurrent are outstanding;
no user is admitted twice; every pass works once; then every invariant of the sale holds."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import httpx
from redis.asyncio.cluster import RedisCluster

from booking.inventory.keys import queue_keys
from common.redis_client import connect
from tests.e2e.queue_sse import (
    await_pass,
    epoch_ms_of,
    patch_queue,
    queued_event,
    reserve_with_pass,
)
from tests.live import LiveStack

BUYERS, MOST, PER_TICK, TTL_S = 240, 40, 30, 60


async def test_passes_in_join_order_across_two_gateways_and_two_releasers(
    cluster_stack: LiveStack, gateways: list[httpx.AsyncClient], cluster_user: Any
) -> None:
    first = gateways[0]
    _, organizer = await cluster_user("organizer")
    _, admin = await cluster_user("admin")
    event = await queued_event(
        first,
        organizer,
        capacity=BUYERS,
        max_concurrent=MOST,
        release_per_tick=PER_TICK,
        pass_ttl_s=TTL_S,
    )
    event_id = event["event_id"]
    await patch_queue(first, organizer, event_id, paused=True)
    buyers = [(await cluster_user())[1] for _ in range(BUYERS)]

    limit = asyncio.Semaphore(40)

    async def join(n: int) -> int:
        async with limit:
            answer = await gateways[n % 2].post(
                "/queue/join", json={"event_id": event_id}, headers=buyers[n]
            )
        assert answer.status_code == 202, answer.text
        return int(answer.json()["position"])

    positions = list(await asyncio.gather(*(join(n) for n in range(BUYERS))))
    assert sorted(positions) == list(range(1, BUYERS + 1))  # one sequence across instances

    redis = await connect(cluster_stack.endpoints.redis_url, cluster=True, decode_responses=True)
    assert isinstance(redis, RedisCluster)
    keys = queue_keys(event_id)
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, await redis.zcard(keys.passes_active))
            await asyncio.sleep(0.02)

    sessions = [
        aiohttp.ClientSession(
            base_url=url,
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=120),
        )
        for url in cluster_stack.gateway_urls
    ]
    opened = asyncio.Semaphore(0)

    async def buyer(n: int) -> tuple[int, Any, float, str]:
        url = f"/api/v1/queue/position/{event_id}/stream"
        frame, arrived, before = await await_pass(sessions[(n + 1) % 2], url, buyers[n], opened)
        assert before[0].data["position"] == positions[n]
        booked = await reserve_with_pass(
            gateways[n % 2], buyers[n], event, frame.data["queue_pass"]
        )
        assert booked.status_code == 201, booked.text
        return n, frame, arrived, booked.json()["booking_id"]

    sampler = asyncio.create_task(sample())
    streams = [asyncio.create_task(buyer(n)) for n in range(BUYERS)]
    try:
        try:
            async with asyncio.timeout(60):
                for _ in range(BUYERS):
                    await opened.acquire()
        except TimeoutError:
            broken = [task.exception() for task in streams if task.done()]
            raise AssertionError(f"streams did not all open: {broken[:3]}") from None
        started = time.time()
        await patch_queue(first, organizer, event_id, paused=False)
        async with asyncio.timeout(90):
            results = await asyncio.gather(*streams)
        admitted_total = int(await redis.hget(keys.queue, "admitted_total") or 0)
    finally:
        sampler.cancel()
        for task in streams:
            task.cancel()
        for session in sessions:
            await session.close()
        await redis.aclose()

    assert peak <= MOST
    by_join = sorted(results, key=lambda item: positions[item[0]])
    admitted_ms = [
        epoch_ms_of(frame.data["pass_expires_at"]) - TTL_S * 1000 for _, frame, _, _ in by_join
    ]
    assert admitted_ms == sorted(admitted_ms)  # join order, tick by tick, whichever copy ticked
    batches = [admitted_ms.count(value) for value in sorted(set(admitted_ms))]
    assert max(batches) <= PER_TICK
    passes = [frame.data["queue_pass"] for _, frame, _, _ in results]
    assert len(set(passes)) == BUYERS  # one pass each
    assert admitted_total == BUYERS  # nobody admitted twice
    print(f"\n{BUYERS} buyers admitted across 2 x 2 x 2 in {time.time() - started:.1f} s")

    # a used pass is refused on the other gateway too
    n, frame, _, _ = by_join[0]
    again = await reserve_with_pass(gateways[1], buyers[n], event, frame.data["queue_pass"])
    assert (again.status_code, again.json()["code"]) == (403, "queue_pass_invalid")

    stats = (await first.get(f"/admin/events/{event_id}/stats", headers=admin)).json()
    zone = stats["zones"][0]
    assert zone["held"] == BUYERS and zone["available"] == 0
    assert zone["postgres"] == {"held": zone["held"], "sold": zone["sold"]}
    assert zone["drift"] == 0
