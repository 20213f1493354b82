"""workers/resources.py on the real servers: the factory hands out ready clients and closes them
on exit; `Provisioned` opens them in start(), builds the worker from them, and closes them after
stop(), also when the worker's own start() failed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from workers.resources import Provisioned, Resources, open_pool, open_queue, open_resources
from workers.settings import WorkerSettings


@pytest.fixture
def settings(redis_url: str, migrated_database: str) -> WorkerSettings:
    return WorkerSettings(redis_url=redis_url, database_url=migrated_database)


async def test_open_resources_hands_out_ready_clients_and_closes_them(
    settings: WorkerSettings,
) -> None:
    async with open_resources(settings, pool_size=3) as resources:
        assert await resources.pool.fetchval("SELECT 1") == 1
        assert resources.pool.get_max_size() == 3
        assert await resources.redis.ping()
        # The scripts are loaded: an event Redis has never seen answers "nothing", not NOSCRIPT.
        assert await resources.scripts.availability(str(uuid.uuid4())) == {}
        pool = resources.pool
    assert pool.is_closing()


async def test_open_pool_and_open_queue(settings: WorkerSettings) -> None:
    async with open_pool(settings, max_size=2, close_timeout_s=2.0) as pool:
        assert await pool.fetchval("SELECT 2") == 2
    assert pool.is_closing()
    async with open_queue(settings) as store:
        assert isinstance(await store.open_queue_ids(), list)


class _Worker:
    name = "test-provisioned"
    idle_interval_s = 0.0

    def __init__(self, resources: Resources, *, fail_start: bool = False) -> None:
        self.resources = resources
        self.fail_start = fail_start
        self.events: list[str] = []

    async def start(self) -> None:
        self.events.append("start")
        if self.fail_start:
            raise RuntimeError("start failed")

    async def tick(self) -> int:
        self.events.append("tick")
        return int(await self.resources.pool.fetchval("SELECT 1"))

    async def stop(self) -> None:
        self.events.append("stop")


async def test_provisioned_opens_in_start_and_closes_after_stop(settings: WorkerSettings) -> None:
    built: list[_Worker] = []

    def build(resources: Resources) -> _Worker:
        built.append(_Worker(resources))
        return built[-1]

    worker = Provisioned(_Worker, lambda: open_resources(settings), build)
    assert (worker.name, worker.idle_interval_s) == ("test-provisioned", 0.0)
    with pytest.raises(RuntimeError, match="before start"):
        await worker.tick()
    assert built == []  # nothing opened before start()
    await worker.start()
    try:
        assert await worker.tick() == 1
    finally:
        await worker.stop()
    assert built[0].events == ["start", "tick", "stop"]
    assert built[0].resources.pool.is_closing()


async def test_provisioned_closes_what_it_opened_when_the_start_fails(
    settings: WorkerSettings,
) -> None:
    built: list[Any] = []

    def build(resources: Resources) -> _Worker:
        built.append(_Worker(resources, fail_start=True))
        return built[-1]

    worker = Provisioned(_Worker, lambda: open_resources(settings), build)
    with pytest.raises(RuntimeError, match="start failed"):
        await worker.start()
    await worker.stop()  # what run_periodic does after a failed start
    assert built[0].events == ["start", "stop"]
    assert built[0].resources.pool.is_closing()
