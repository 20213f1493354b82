"""The cluster's live stack: `make run`'s processes, two gateways x two booking processes x two
copies of every worker, all on the session's Redis Cluster (REDIS_CLUSTER=1), emptied first."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis

from stack.infra import Endpoints
from tests.live import LIVE_STACK_FIXTURES, LiveStack, Shape, insert_user, run_live_stack

SHAPE = Shape(gateways=2, bookings=2, worker_copies=2)


def flush_cluster(seed_url: str) -> None:
    """FLUSHALL on every master: a cluster has one db, shared with the Lua tests."""
    seed = redis.RedisCluster.from_url(seed_url)
    try:
        seed.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
    finally:
        seed.close()


@pytest.fixture(scope="package")
def cluster_stack(
    infra: Endpoints, service_env: dict[str, str], redis_cluster: Any
) -> Iterator[LiveStack]:
    flush_cluster(redis_cluster.url)
    with run_live_stack(
        infra,
        service_env,
        name="cluster_e2e",
        cluster_url=redis_cluster.url,
        shape=SHAPE,
        env={"HOLD_TTL_S": "20"},
    ) as live:
        yield live


LIVE_STACK_FIXTURES.add("cluster_stack")


@pytest.fixture
async def gateways(cluster_stack: LiveStack) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One HTTP client per gateway (base URL /api/v1)."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    clients = [
        httpx.AsyncClient(base_url=url + "/api/v1", timeout=30, limits=limits)
        for url in cluster_stack.gateway_urls
    ]
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


@pytest.fixture
async def cluster_pool(cluster_stack: LiveStack) -> AsyncIterator[Any]:
    async with cluster_stack.database() as pool:
        yield pool


@pytest.fixture
def cluster_user(cluster_stack: LiveStack, cluster_pool: Any) -> Any:
    async def make(role: str = "customer") -> tuple[str, dict[str, str]]:
        return await insert_user(cluster_pool, cluster_stack, role)

    return make
