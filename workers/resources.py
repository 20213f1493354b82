"""The clients a worker works with, opened in one place and handed to it ready.

A worker class takes its clients in its constructor (`SeatRelease(settings, resources)`) and
never opens or closes them. What opens them:
- `open_resources(settings)`: PostgreSQL pool + Redis client + the inventory scripts loaded
  (reconciler, seat-release, saga-step); `open_pool` (outbox-relay, saga-orchestrator) and
  `open_queue` (queue-release) for the workers that need one side only. Each is an async
  context manager that closes what it opened, in reverse order.
- `Provisioned`: the `PeriodicWorker` the entry point (and tests) run. Its `start()` opens the
  clients, builds the worker from them and starts it, so connecting happens under
  `run_periodic`'s signal handling and watchdog exactly as a worker's own `start()` did; its
  `stop()` stops the worker, then closes the clients. Each worker class has a `provisioned()`
  class method returning one.

Redis is always opened with `common.redis_client.connect` (cluster-aware, checked against the
server), PostgreSQL with `booking.db.create_pool`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg

from booking.db import create_pool
from booking.inventory import Scripts
from booking.queue import QueueStore
from common.redis_client import RedisClient, connect
from workers.runtime import PeriodicWorker
from workers.settings import WorkerSettings

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Resources:
    """Ready clients: a PostgreSQL pool, a Redis client and the inventory scripts loaded on it."""

    pool: asyncpg.Pool
    redis: RedisClient
    scripts: Scripts


@asynccontextmanager
async def open_pool(
    settings: WorkerSettings, *, max_size: int = 2, close_timeout_s: float | None = None
) -> AsyncIterator[asyncpg.Pool]:
    """A pool of 1..`max_size` connections; closed on exit, terminated when the close takes
    longer than `close_timeout_s` (None: waits for it)."""
    pool = await create_pool(settings.database_url, min_size=1, max_size=max_size)
    try:
        yield pool
    finally:
        if close_timeout_s is None:
            await pool.close()
        else:
            try:
                await asyncio.wait_for(pool.close(), close_timeout_s)
            except TimeoutError:
                pool.terminate()


@asynccontextmanager
async def open_redis(settings: WorkerSettings) -> AsyncIterator[RedisClient]:
    redis = await connect(settings.redis_url, cluster=settings.redis_cluster)
    try:
        yield redis
    finally:
        await redis.aclose()


@asynccontextmanager
async def open_resources(
    settings: WorkerSettings, *, pool_size: int = 2, pool_close_timeout_s: float | None = None
) -> AsyncIterator[Resources]:
    """Redis, the inventory scripts (SCRIPT LOAD: a broken script fails here), then the pool."""
    async with AsyncExitStack() as stack:
        redis = await stack.enter_async_context(open_redis(settings))
        scripts = Scripts(redis)
        stack.push_async_callback(scripts.aclose)
        await scripts.load()
        pool = await stack.enter_async_context(
            open_pool(settings, max_size=pool_size, close_timeout_s=pool_close_timeout_s)
        )
        yield Resources(pool=pool, redis=redis, scripts=scripts)


@asynccontextmanager
async def open_queue(settings: WorkerSettings) -> AsyncIterator[QueueStore]:
    """Redis and the queue scripts loaded on it."""
    async with open_redis(settings) as redis:
        store = QueueStore(redis)
        try:
            await store.load()
            yield store
        finally:
            await store.aclose()


class Provisioned(Generic[R]):
    """A `PeriodicWorker` that opens the clients (`open`), builds the worker from them (`build`)
    in `start()`, delegates `tick()`, and closes the clients after the worker's `stop()`.

    `name` (and `idle_interval_s`, when the worker class sets one) come from `kind`."""

    def __init__(
        self,
        kind: type[Any],
        open: Callable[[], AbstractAsyncContextManager[R]],
        build: Callable[[R], PeriodicWorker],
    ) -> None:
        self.name: str = kind.name
        if hasattr(kind, "idle_interval_s"):
            self.idle_interval_s: float = kind.idle_interval_s
        self._open = open
        self._build = build
        self._stack = AsyncExitStack()
        self._worker: PeriodicWorker | None = None  # built by start()

    async def start(self) -> None:
        resources = await self._stack.enter_async_context(self._open())
        self._worker = self._build(resources)
        await self._worker.start()

    async def tick(self) -> int:
        if self._worker is None:
            raise RuntimeError(f"{self.name}: tick() before start()")
        return await self._worker.tick()

    async def stop(self) -> None:
        worker, self._worker = self._worker, None
        try:
            if worker is not None:
                await worker.stop()
        finally:
            await self._stack.aclose()
